// Postmark's Email API (POST /email, one message a request) on the shared
// HTTP layer, authenticated by a server token.
//
// Registered as "postmark". Settings, under the provider's config section:
//   server_token       required, as the value, server_token_file or
//                      server_token_env. The token POSTMARK_API_TEST makes
//                      Postmark check each mail and deliver none.
//   message_stream     the transactional stream to send through (default
//                      "outbound", every server's default one); ASCII
//                      letters, digits, '-' and '_'.
//   tag                optional, one per mail, for Postmark's statistics;
//                      at most 1000 characters, no control characters.
//   endpoint           overrides https://api.postmarkapp.com (tests,
//                      proxies).
// and the HTTP settings of HttpSettings (timeouts, ca_file, proxy, pools).
//
// The mail goes to its one recipient, From as "name <address>", with its
// text and HTML bodies; the message's extra headers go in "Headers" and
// the delivery id in "Metadata" as authcode_delivery_id, which Postmark
// hands back in its webhooks. The message id is the answer's MessageID.
// Postmark refuses a bad mail with 422 and {"ErrorCode": n, "Message":
// ...} and a bad token with 401, both permanent; 429 and 5xx retry.
// Postmark takes no idempotency key, so a send whose answer is lost may,
// after its retry, arrive twice.
//
// Thread safety: Send() may be called from several threads at once.
#ifndef AUTHCODE_PROVIDERS_POSTMARK_POSTMARK_PROVIDER_H_
#define AUTHCODE_PROVIDERS_POSTMARK_POSTMARK_PROVIDER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "providers/http/http_client.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace authcode::providers {

struct PostmarkProviderConfig {
  std::string server_token;
  std::string message_stream = "outbound";
  std::string tag;  // Empty: none.
  http::HttpSettings http;
};

absl::StatusOr<PostmarkProviderConfig> ParsePostmarkConfig(
    const ProviderSettings& settings);

class PostmarkProvider : public Provider {
 public:
  explicit PostmarkProvider(PostmarkProviderConfig config);

  std::string_view name() const override { return "postmark"; }
  SendResult Send(const Message& message) override;
  std::optional<std::vector<std::string>> SpfIncludes() const override {
    return std::vector<std::string>{"spf.mtasv.net"};
  }
  // A verified TLS connection to the endpoint, no request: the
  // credentials are not tried.
  absl::Status CheckReachable() override { return client_.CheckReachable(); }

 private:
  absl::StatusOr<std::string> RequestBody(const Message& message) const;

  PostmarkProviderConfig config_;
  http::HttpClient client_;
};

void RegisterPostmarkProvider(ProviderRegistry& registry);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_POSTMARK_POSTMARK_PROVIDER_H_
