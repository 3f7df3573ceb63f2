#include "providers/ses/ses_provider.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "providers/http/http_response.h"
#include "providers/message/mime.h"
#include "providers/ses/aws_credentials.h"
#include "server/log.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "ses";
constexpr char kPath[] = "/v2/email/outbound-emails";

const std::set<std::string>& ValidKeys() {
  static const auto* keys = [] {
    auto* valid = new std::set<std::string>{
        "region",      "configuration_set", "from_identity_arn", "content",
        "dkim_domain", "dkim_selector",     "dkim_key_file"};
    valid->insert(AwsCredentialKeys().begin(), AwsCredentialKeys().end());
    valid->insert(http::HttpSettings::Keys().begin(),
                  http::HttpSettings::Keys().end());
    return valid;
  }();
  return *keys;
}

// An AWS region name: lower-case letters, digits and dashes, such as
// "eu-west-1" or "us-gov-west-1". It is also part of the endpoint's host.
bool IsRegion(const std::string& region) {
  if (region.empty() || region.size() > 32) return false;
  for (char c : region) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<SesProviderConfig::Content> ParseContent(
    const ProviderSettings& settings) {
  const std::string content = settings.GetString("content", "auto");
  if (content == "auto") return SesProviderConfig::Content::kAuto;
  if (content == "simple") return SesProviderConfig::Content::kSimple;
  if (content == "raw") return SesProviderConfig::Content::kRaw;
  return settings.Error(
      "content", absl::StrCat("must be \"auto\", \"simple\" or \"raw\", got \"",
                              absl::CHexEscape(content), "\""));
}

nlohmann::json Utf8Text(const std::string& text) {
  return {{"Data", text}, {"Charset", "UTF-8"}};
}

std::string ReadMessageId(const http::HttpResponse& response) {
  const nlohmann::json body =
      nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("MessageId") &&
      body["MessageId"].is_string()) {
    return body["MessageId"].get<std::string>();
  }
  return "";
}

// The endpoint's host[:port], as the Host header and the signature carry
// it.
std::string HostOf(const std::string& base_url) {
  const size_t start = base_url.find("://");
  return base_url.substr(start == std::string::npos ? 0 : start + 3);
}

// "AKIA...MPLE": enough to tell which key is in use, not the whole id.
std::string MaskedKeyId(const std::string& id) {
  if (id.size() < 12) return "****";
  return absl::StrCat(id.substr(0, 4), "...", id.substr(id.size() - 4));
}

}  // namespace

absl::StatusOr<SesProviderConfig> ParseSesConfig(
    const ProviderSettings& settings) {
  if (absl::Status s = settings.CheckKeys(ValidKeys()); !s.ok()) return s;
  SesProviderConfig config;
  absl::StatusOr<std::string> region = settings.GetRequiredString("region");
  if (!region.ok()) return region.status();
  if (!IsRegion(*region)) {
    return settings.Error("region", "must look like \"eu-west-1\"");
  }
  config.region = *region;
  config.configuration_set = settings.GetString("configuration_set", "");
  config.from_identity_arn = settings.GetString("from_identity_arn", "");

  absl::StatusOr<SesProviderConfig::Content> content = ParseContent(settings);
  if (!content.ok()) return content.status();
  config.content = *content;
  absl::StatusOr<std::shared_ptr<const DkimSigner>> dkim =
      DkimSignerFromSettings(settings);
  if (!dkim.ok()) return dkim.status();
  config.dkim = *std::move(dkim);
  if (config.dkim != nullptr &&
      config.content == SesProviderConfig::Content::kSimple) {
    return settings.Error("content",
                          "\"simple\" cannot carry our DKIM signature; use "
                          "\"auto\" or \"raw\", or drop the dkim_* settings");
  }

  absl::StatusOr<std::shared_ptr<AwsCredentialSource>> credentials =
      AwsCredentialSource::FromSettings(settings);
  if (!credentials.ok()) return credentials.status();
  config.credentials = *std::move(credentials);

  absl::StatusOr<http::HttpSettings> http = http::HttpSettings::Parse(
      settings,
      absl::StrCat("https://email.", config.region, ".amazonaws.com"));
  if (!http.ok()) return http.status();
  config.http = *std::move(http);
  return config;
}

SesProvider::SesProvider(SesProviderConfig config)
    : config_(std::move(config)),
      client_(config_.http),
      host_(HostOf(config_.http.base_url)) {}

SesProvider::~SesProvider() = default;

absl::StatusOr<std::string> SesProvider::RequestBody(
    const Message& message) const {
  if (absl::Status s = CheckMessage(message); !s.ok()) return s;

  nlohmann::json body = {
      {"FromEmailAddress",
       FormatMailbox(message.from_name, message.from_address)},
      {"Destination", {{"ToAddresses", {message.to_address}}}}};
  const bool raw = config_.content == SesProviderConfig::Content::kRaw ||
                   (config_.content == SesProviderConfig::Content::kAuto &&
                    (!message.headers.empty() || config_.dkim != nullptr));
  if (raw) {
    absl::StatusOr<MimeMessage> mime = BuildMime(message);
    if (!mime.ok()) return mime.status();
    std::string data = std::move(mime->data);
    if (config_.dkim != nullptr) {
      absl::StatusOr<std::string> signature = config_.dkim->Sign(data);
      if (!signature.ok()) return signature.status();
      data = *signature + data;
    }
    body["Content"] = {{"Raw", {{"Data", absl::Base64Escape(data)}}}};
  } else {
    body["Content"] = {{"Simple",
                        {{"Subject", Utf8Text(message.subject)},
                         {"Body",
                          {{"Text", Utf8Text(message.text)},
                           {"Html", Utf8Text(message.html)}}}}}};
  }
  if (!config_.configuration_set.empty()) {
    body["ConfigurationSetName"] = config_.configuration_set;
  }
  if (!config_.from_identity_arn.empty()) {
    body["FromEmailAddressIdentityArn"] = config_.from_identity_arn;
  }
  return body.dump();
}

SendResult SesProvider::Send(const Message& message) {
  absl::StatusOr<std::string> body = RequestBody(message);
  if (!body.ok()) {
    return SendResult::Permanent(absl::StrCat(
        kName, ": ", body.status().message(), "; nothing was sent"));
  }
  absl::StatusOr<sigv4::Credentials> credentials = config_.credentials->Get();
  if (!credentials.ok()) {
    return SendResult::Retryable(
        absl::StrCat(kName, ": ", credentials.status().message()));
  }

  http::HttpRequest request;
  request.url = absl::StrCat(config_.http.base_url, kPath);
  request.headers = {{"Host", host_}, {"Content-Type", "application/json"}};
  request.body = *std::move(body);

  sigv4::Request to_sign;
  to_sign.method = request.method;
  to_sign.path = kPath;
  to_sign.headers = request.headers;
  to_sign.payload = request.body;
  sigv4::Options options;
  options.region = config_.region;
  options.service = "ses";
  sigv4::Signature signature =
      sigv4::Sign(to_sign, *credentials, options, absl::Now());
  for (auto& header : signature.headers) {
    request.headers.push_back(std::move(header));
  }

  return http::ToSendResult(
      kName, client_.Send(request), ReadMessageId,
      {credentials->secret_access_key, credentials->session_token});
}

std::vector<std::string> SesProvider::IdentityDomains() const {
  if (config_.dkim == nullptr) return {};
  return {config_.dkim->domain()};
}

void RegisterSesProvider(ProviderRegistry& registry) {
  registry.Register(
      kName,
      [](const ProviderSettings& settings)
          -> absl::StatusOr<std::unique_ptr<Provider>> {
        absl::StatusOr<SesProviderConfig> config = ParseSesConfig(settings);
        if (!config.ok()) return config.status();
        log::Info("provider.ses_ready",
                  {{"section", settings.section()},
                   {"region", config->region},
                   {"endpoint", config->http.base_url},
                   {"access_key_id",
                    MaskedKeyId(config->credentials->AccessKeyId())}});
        return std::make_unique<SesProvider>(*std::move(config));
      });
}

}  // namespace authcode::providers
