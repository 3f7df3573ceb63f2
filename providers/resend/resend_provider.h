// Resend's Email API (POST /emails) on the shared HTTP layer, with a
// Bearer API key.
//
// Registered as "resend". Settings, under the provider's config section:
//   api_key            required, as the value, api_key_file or api_key_env.
//   endpoint           overrides https://api.resend.com (tests, proxies).
// and the HTTP settings of HttpSettings (timeouts, ca_file, proxy, pools).
//
// The mail goes to its one recipient, from as "name <address>", with its
// text and HTML bodies and the message's extra headers in "headers". The
// delivery id goes twice: as the tag authcode_delivery_id, which Resend
// hands back in its webhooks (tag values allow only ASCII letters, digits,
// '_' and '-', so any other character becomes '_'), and in the
// Idempotency-Key "authcode-<delivery id>", so that a retry of a send
// whose answer was lost is not delivered again. Resend keeps a key for 24
// hours: a retry later than that may deliver twice. An id that is not
// printable ASCII, or too long for a key (256 characters), sends no key.
//
// The message id is the answer's "id". Errors come as {"statusCode",
// "message", "name"}; 429 and 5xx retry, and so does 409
// concurrent_idempotent_requests (the first send with the key is still in
// progress at Resend); any other refusal is permanent.
//
// Thread safety: Send() may be called from several threads at once.
#ifndef AUTHCODE_PROVIDERS_RESEND_RESEND_PROVIDER_H_
#define AUTHCODE_PROVIDERS_RESEND_RESEND_PROVIDER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "providers/http/http_client.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace authcode::providers {

struct ResendProviderConfig {
  std::string api_key;
  http::HttpSettings http;
};

absl::StatusOr<ResendProviderConfig> ParseResendConfig(
    const ProviderSettings& settings);

class ResendProvider : public Provider {
 public:
  explicit ResendProvider(ResendProviderConfig config);

  std::string_view name() const override { return "resend"; }
  SendResult Send(const Message& message) override;
  // Resend sends through Amazon SES.
  std::optional<std::vector<std::string>> SpfIncludes() const override {
    return std::vector<std::string>{"amazonses.com"};
  }
  // A verified TLS connection to the endpoint, no request: the
  // credentials are not tried.
  absl::Status CheckReachable() override { return client_.CheckReachable(); }

 private:
  absl::StatusOr<std::string> RequestBody(const Message& message) const;

  ResendProviderConfig config_;
  http::HttpClient client_;
};

void RegisterResendProvider(ProviderRegistry& registry);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_RESEND_RESEND_PROVIDER_H_
