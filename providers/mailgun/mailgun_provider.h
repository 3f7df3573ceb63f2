// Mailgun's Messages API (POST /v3/<domain>/messages) on the shared HTTP
// layer, with HTTP Basic authentication as "api" and the API key.
//
// Registered as "mailgun". Settings, under the provider's config section:
//   domain             required: the sending domain as set up at Mailgun,
//                      such as "mg.example.com" (a DNS name).
//   api_key            required, as the value, api_key_file or api_key_env.
//   region             "us" (default, api.mailgun.net) or "eu"
//                      (api.eu.mailgun.net), where the domain was created.
//   endpoint           overrides the region's URL (tests, proxies).
//   tag                optional, for Mailgun's statistics: printable ASCII,
//                      at most 128 characters.
// and the HTTP settings of HttpSettings (timeouts, ca_file, proxy, pools).
//
// The request is a form (application/x-www-form-urlencoded, which Mailgun
// takes for mail without attachments): from as "name <address>", to,
// subject, text, html, "h:<name>" for each extra header of the message,
// the delivery id as the variable "v:authcode_delivery_id", which Mailgun
// hands back in its webhooks (and writes into the X-Mailgun-Variables
// header, so the recipient can see it), and "o:tag". The message id is the
// answer's "id" without its angle brackets, as Mailgun's events name it.
// 429 and 5xx retry; any other refusal is permanent, including 401 for a
// bad key and 404 for a domain the account does not have. Mailgun takes no
// idempotency key, so a send whose answer is lost may, after its retry,
// arrive twice.
//
// IdentityDomains() is the sending domain, which Mailgun signs with DKIM.
//
// Thread safety: Send() may be called from several threads at once.
#ifndef AUTHCODE_PROVIDERS_MAILGUN_MAILGUN_PROVIDER_H_
#define AUTHCODE_PROVIDERS_MAILGUN_MAILGUN_PROVIDER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "providers/http/http_client.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace authcode::providers {

struct MailgunProviderConfig {
  std::string domain;  // Lower case.
  std::string api_key;
  std::string tag;  // Empty: none.
  http::HttpSettings http;
};

absl::StatusOr<MailgunProviderConfig> ParseMailgunConfig(
    const ProviderSettings& settings);

class MailgunProvider : public Provider {
 public:
  explicit MailgunProvider(MailgunProviderConfig config);

  std::string_view name() const override { return "mailgun"; }
  SendResult Send(const Message& message) override;
  // A verified TLS connection to the endpoint, no request: the
  // credentials are not tried.
  absl::Status CheckReachable() override { return client_.CheckReachable(); }
  std::vector<std::string> IdentityDomains() const override {
    return {config_.domain};
  }
  std::optional<std::vector<std::string>> SpfIncludes() const override {
    return std::vector<std::string>{"mailgun.org"};
  }

 private:
  absl::StatusOr<std::string> RequestBody(const Message& message) const;

  MailgunProviderConfig config_;
  http::HttpClient client_;
};

// `fields` as an application/x-www-form-urlencoded body, the way browsers
// write one: ASCII letters, digits and "*-._" as they are, a space as '+',
// every other byte as %XX.
std::string FormUrlEncode(
    const std::vector<std::pair<std::string, std::string>>& fields);

void RegisterMailgunProvider(ProviderRegistry& registry);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_MAILGUN_MAILGUN_PROVIDER_H_
