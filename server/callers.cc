#include "server/callers.h"

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/auth_context.h"

namespace authcode {
namespace {

// The names gRPC reports for a verified client certificate: every subject
// alternative name, the DNS and URI ones again by kind, and the subject's
// common name.
constexpr const char* kCertificateNameProperties[] = {
    "x509_subject_alternative_name", "peer_dns", "peer_uri",
    "x509_common_name"};

std::vector<std::string> CertificateNames(
    const grpc::ServerContextBase& context) {
  std::vector<std::string> names;
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return names;
  for (const char* property : kCertificateNameProperties) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
      names.emplace_back(value.data(), value.size());
    }
  }
  return names;
}

}  // namespace

std::string TokenDigest(absl::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

absl::Status Caller::CheckPurpose(absl::string_view purpose) const {
  if (policy->purposes.empty()) return absl::OkStatus();
  for (const std::string& allowed : policy->purposes) {
    if (allowed == purpose) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("tenant \"", tenant, "\" may not use purpose \"", purpose,
                   "\" (tenants.", tenant, ".purposes)"));
}

Callers::Callers(const Config& config) : config_(config) {
  anonymous_.issue = config.limits.issue;
  anonymous_.ip_issue = config.limits.ip_issue;
  anonymous_.ceiling = config.limits.ceiling;
  for (const auto& [name, tenant] : config.tenants) {
    for (const std::string& digest : tenant.token_digests) {
      tenant_by_digest_[digest] = name;
    }
    for (const std::string& client : tenant.client_names) {
      tenant_by_name_[client] = name;
    }
  }
}

Caller Callers::Make(const std::string& tenant) const {
  return Caller{tenant, &config_.tenants.at(tenant)};
}

absl::StatusOr<Caller> Callers::Identify(
    const grpc::ServerContextBase& context) const {
  std::vector<absl::string_view> authorization;
  const auto [begin, end] =
      context.client_metadata().equal_range(grpc::string_ref("authorization"));
  for (auto it = begin; it != end; ++it) {
    authorization.emplace_back(it->second.data(), it->second.size());
  }
  return Identify(authorization, CertificateNames(context));
}

absl::StatusOr<Caller> Callers::Identify(
    const std::vector<absl::string_view>& authorization,
    const std::vector<std::string>& certificate_names) const {
  if (config_.tenants.empty()) {
    return Caller{config_.default_tenant, &anonymous_};
  }

  // Messages never quote what the caller sent: it may be a real token.
  std::optional<std::string> by_token;
  if (authorization.size() > 1) {
    return absl::UnauthenticatedError(
        "more than one authorization entry in the metadata; send one");
  }
  if (authorization.size() == 1) {
    const absl::string_view value = authorization.front();
    constexpr absl::string_view kScheme = "bearer ";
    if (value.size() <= kScheme.size() ||
        !absl::StartsWithIgnoreCase(value, kScheme)) {
      return absl::UnauthenticatedError(
          "the authorization metadata must be \"Bearer TOKEN\"");
    }
    const absl::string_view token =
        absl::StripAsciiWhitespace(value.substr(kScheme.size()));
    const auto it = tenant_by_digest_.find(TokenDigest(token));
    if (it == tenant_by_digest_.end()) {
      return absl::UnauthenticatedError(
          "the bearer token is not one this server accepts");
    }
    by_token = it->second;
  }

  std::optional<std::string> by_certificate;
  for (const std::string& name : certificate_names) {
    const auto it = tenant_by_name_.find(name);
    if (it == tenant_by_name_.end()) continue;
    if (by_certificate.has_value() && *by_certificate != it->second) {
      return absl::UnauthenticatedError(
          "the client certificate carries names of two tenants");
    }
    by_certificate = it->second;
  }

  if (by_token.has_value() && by_certificate.has_value() &&
      *by_token != *by_certificate) {
    return absl::UnauthenticatedError(
        "the bearer token and the client certificate belong to different "
        "tenants");
  }
  if (by_token.has_value()) return Make(*by_token);
  if (by_certificate.has_value()) return Make(*by_certificate);
  if (!certificate_names.empty()) {
    return absl::UnauthenticatedError(
        "the client certificate names no tenant (tenants.*.client_names) "
        "and no bearer token was sent");
  }
  return absl::UnauthenticatedError(
      "this server needs credentials: send \"authorization: Bearer TOKEN\" "
      "metadata or a client certificate");
}

}  // namespace authcode
