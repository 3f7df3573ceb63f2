// Amazon SES (API v2) over HTTPS: one SendEmail call per message, signed
// with our own SigV4 signer (sigv4.h) on the shared HTTP layer.
//
// Registered as "ses". Settings, under the provider's config section:
//   region             required, e.g. "eu-west-1"; also the signing region.
//   endpoint           default https://email.<region>.amazonaws.com (set it
//                      for a VPC endpoint or a test server).
//   access_key_id, secret_access_key, session_token
//                      each as the value, a *_file or an *_env (see
//                      ProviderSettings::GetSecret); or
//   credentials_file, profile
//                      an AWS shared credentials file (INI: [profile] with
//                      aws_access_key_id, aws_secret_access_key and
//                      aws_session_token), read again whenever it changes,
//                      so rotated temporary credentials are picked up; or
//                      neither: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//                      and AWS_SESSION_TOKEN from the environment.
//   configuration_set  ConfigurationSetName, for event publishing.
//   from_identity_arn  FromEmailAddressIdentityArn (sending authorisation).
//   content            "auto" (default): raw MIME when the message has extra
//                      headers or DKIM is configured here, else the simple
//                      form; "simple" or "raw" to force one.
//   dkim_domain, dkim_selector, dkim_key_file
//                      sign raw mail ourselves (SES Easy DKIM needs none).
// and the HTTP settings of HttpSettings (timeouts, ca_file, proxy, pools).
//
// Results: 200 with a MessageId is sent; throttling (429) and server
// errors retry, honouring Retry-After; other refusals (unverified sender,
// suspended account, bad signature) are permanent. SES has no idempotency
// key, so a send whose answer is lost may, after its retry, arrive twice.
//
// Thread safety: Send() may be called from several threads at once.
#ifndef AUTHCODE_PROVIDERS_SES_SES_PROVIDER_H_
#define AUTHCODE_PROVIDERS_SES_SES_PROVIDER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "providers/http/http_client.h"
#include "providers/message/dkim.h"
#include "providers/provider.h"
#include "providers/registry.h"
#include "providers/ses/sigv4.h"

namespace authcode::providers {

class AwsCredentialSource;

struct SesProviderConfig {
  std::string region;
  std::string configuration_set;
  std::string from_identity_arn;
  enum class Content { kAuto, kSimple, kRaw };
  Content content = Content::kAuto;
  std::shared_ptr<const DkimSigner> dkim;  // May be null.
  std::shared_ptr<AwsCredentialSource> credentials;
  http::HttpSettings http;
};

absl::StatusOr<SesProviderConfig> ParseSesConfig(
    const ProviderSettings& settings);

class SesProvider : public Provider {
 public:
  explicit SesProvider(SesProviderConfig config);
  ~SesProvider() override;

  std::string_view name() const override { return "ses"; }
  SendResult Send(const Message& message) override;
  // A verified TLS connection to the endpoint, no request: the
  // credentials are not tried.
  absl::Status CheckReachable() override { return client_.CheckReachable(); }
  std::vector<std::string> IdentityDomains() const override;
  // include:amazonses.com, the record SES documents for a custom MAIL
  // FROM domain.
  std::optional<std::vector<std::string>> SpfIncludes() const override {
    return std::vector<std::string>{"amazonses.com"};
  }
  std::optional<DkimPublicKey> DkimKey() const override {
    if (config_.dkim == nullptr) return std::nullopt;
    return config_.dkim->public_key();
  }

  // The SendEmail request body for `message`, as sent (for tests).
  absl::StatusOr<std::string> RequestBody(const Message& message) const;

 private:
  SesProviderConfig config_;
  http::HttpClient client_;
  std::string host_;  // The Host header: the endpoint's host[:port].
};

void RegisterSesProvider(ProviderRegistry& registry);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_SES_SES_PROVIDER_H_
