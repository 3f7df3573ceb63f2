// Twilio SendGrid's v3 Mail Send API (POST /v3/mail/send) on the shared
// HTTP layer, with a Bearer API key.
//
// Registered as "sendgrid". Settings, under the provider's config section:
//   api_key            required, as the value, api_key_file or api_key_env.
//   region             "global" (default, api.sendgrid.com) or "eu"
//                      (api.eu.sendgrid.com, for EU-pinned subusers).
//   endpoint           overrides the region's URL (tests, proxies).
//   categories         comma-separated, at most 10, for SendGrid's stats.
//   custom_args        "key=value,key=value", echoed in event webhooks;
//                      the delivery id is always added as
//                      authcode_delivery_id so events can be matched to a
//                      job.
//   sandbox_mode       true: SendGrid validates and drops the mail.
// and the HTTP settings of HttpSettings (timeouts, ca_file, proxy, pools).
//
// The mail goes as one personalization to the recipient, from with its
// name, the subject, and text/plain then text/html content; the message's
// extra headers go in "headers". The message id is the X-Message-Id
// response header. 429 and 5xx retry (honouring Retry-After), any other
// refusal is permanent. SendGrid has no idempotency key, so a send whose
// answer is lost may, after its retry, arrive twice.
//
// Thread safety: Send() may be called from several threads at once.
#ifndef AUTHCODE_PROVIDERS_SENDGRID_SENDGRID_PROVIDER_H_
#define AUTHCODE_PROVIDERS_SENDGRID_SENDGRID_PROVIDER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "providers/http/http_client.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace authcode::providers {

struct SendGridProviderConfig {
  std::string api_key;
  std::vector<std::string> categories;
  std::map<std::string, std::string> custom_args;
  bool sandbox_mode = false;
  http::HttpSettings http;
};

absl::StatusOr<SendGridProviderConfig> ParseSendGridConfig(
    const ProviderSettings& settings);

class SendGridProvider : public Provider {
 public:
  explicit SendGridProvider(SendGridProviderConfig config);

  std::string_view name() const override { return "sendgrid"; }
  SendResult Send(const Message& message) override;
  std::optional<std::vector<std::string>> SpfIncludes() const override {
    return std::vector<std::string>{"sendgrid.net"};
  }
  // A verified TLS connection to the endpoint, no request: the
  // credentials are not tried.
  absl::Status CheckReachable() override { return client_.CheckReachable(); }

  // The mail/send request body for `message`, as sent (for tests).
  absl::StatusOr<std::string> RequestBody(const Message& message) const;

 private:
  SendGridProviderConfig config_;
  http::HttpClient client_;
};

void RegisterSendGridProvider(ProviderRegistry& registry);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_SENDGRID_SENDGRID_PROVIDER_H_
