// What an HTTP mail provider's answer means for the delivery, decided in
// one place for every provider:
//   2xx                     sent, with the provider's message id;
//   408, 429 and 5xx        retryable, honouring Retry-After;
//   any other status        permanent;
//   no answer at all        retryable (refused, dropped, timed out, or a
//                           certificate that does not verify, which an
//                           operator can fix while the job waits).
// A failure's text carries the provider's own reason, cut short, on one
// line, with any configured secret masked.
//
// Thread safety: pure functions.
#ifndef AUTHCODE_PROVIDERS_HTTP_HTTP_RESPONSE_H_
#define AUTHCODE_PROVIDERS_HTTP_HTTP_RESPONSE_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "providers/http/http_client.h"
#include "providers/provider.h"

namespace authcode::providers::http {

// The longest wait a Retry-After may ask for; longer ones are cut to it
// so a confused provider cannot park a login code for days.
inline constexpr absl::Duration kMaxRetryAfter = absl::Hours(1);

// Retry-After as delta-seconds or an HTTP date (RFC 9110), as a wait from
// `now`, at most kMaxRetryAfter; nullopt when unreadable.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                              absl::Time now);

// One line, at most ~300 characters, saying why the provider refused: the
// reason fields of a JSON error body (message, error, errors[].message,
// errors[].field, ...) or the start of a text one. Control characters
// become spaces and each of `secrets` is replaced by "[redacted]".
std::string SummarizeErrorBody(std::string_view body,
                               const std::vector<std::string>& secrets);

using MessageIdReader = std::function<std::string(const HttpResponse&)>;

// The delivery result of one exchange with `provider` (its registered
// name, which prefixes every error). `message_id` reads the id out of a
// 2xx response.
SendResult ToSendResult(std::string_view provider,
                        const absl::StatusOr<HttpResponse>& response,
                        const MessageIdReader& message_id,
                        const std::vector<std::string>& secrets,
                        absl::Time now = absl::Now());

}  // namespace authcode::providers::http

#endif  // AUTHCODE_PROVIDERS_HTTP_HTTP_RESPONSE_H_
