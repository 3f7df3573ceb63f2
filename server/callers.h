// Who is calling: every RPC acts for one tenant, found from the caller's
// bearer token or client certificate, and that tenant's policy applies.
//
//   authorization: Bearer TOKEN   the token's SHA-256 is looked up among
//                                 tenants.*.token_sha256
//   client certificate            (mutual TLS, already verified by the
//                                 handshake) its DNS and URI subject
//                                 alternative names and common name are
//                                 looked up among tenants.*.client_names
//
// A call that presents neither, an unknown token, or a certificate and a
// token naming two different tenants is UNAUTHENTICATED. With no
// [tenants] configured every call acts as default_tenant, credentials or
// not (clients may be given tokens before the server checks them).
//
// Thread safety: immutable after construction; Identify() may be called
// from any thread.
#ifndef AUTHCODE_SERVER_CALLERS_H_
#define AUTHCODE_SERVER_CALLERS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "server/config.h"

namespace authcode {

// A tenant and the policy that binds its calls.
struct Caller {
  std::string tenant;
  const Config::Tenant* policy = nullptr;  // Owned by the Callers.

  // PermissionDenied naming the tenant and the purpose when the policy
  // does not allow `purpose`.
  absl::Status CheckPurpose(absl::string_view purpose) const;
};

class Callers {
 public:
  // `config` must outlive the Callers.
  explicit Callers(const Config& config);

  // The caller of an RPC, from its metadata and its peer's certificate.
  absl::StatusOr<Caller> Identify(const grpc::ServerContextBase& context) const;

  // The same from what Identify() reads: the values of every
  // "authorization" metadata entry, and the certificate's names (empty
  // without one).
  absl::StatusOr<Caller> Identify(
      const std::vector<absl::string_view>& authorization,
      const std::vector<std::string>& certificate_names) const;

 private:
  Caller Make(const std::string& tenant) const;

  const Config& config_;
  // Without [tenants]: default_tenant under [limits].
  Config::Tenant anonymous_;
  std::map<std::string, std::string> tenant_by_digest_;
  std::map<std::string, std::string> tenant_by_name_;
};

// SHA-256 of a bearer token, as tenants.*.token_sha256 holds it (raw).
std::string TokenDigest(absl::string_view token);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_CALLERS_H_
