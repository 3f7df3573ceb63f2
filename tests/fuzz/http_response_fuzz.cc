// libFuzzer target: what an HTTP mail provider answers, fed hostile. The
// error summary and the Retry-After reader must never crash, and the
// summary, which ends up in logs and in GetDelivery, must be one bounded
// line of valid UTF-8 with the configured secret masked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "providers/http/http_response.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// The length of the valid UTF-8 sequence at the front of `text`, 0 when
// it is not one (checked independently of the code under test).
size_t SequenceLength(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  const size_t n = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  if (n > text.size()) return 0;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string secret = "SG.fuzz-secret";

  const std::string summary =
      authcode::providers::http::SummarizeErrorBody(input, {secret});
  Check(summary.size() <= 310);
  Check(summary.find(secret) == std::string::npos);
  for (std::string_view rest = summary; !rest.empty();) {
    const auto c = static_cast<unsigned char>(rest[0]);
    Check(c >= 0x20 && c != 0x7F);
    const size_t n = SequenceLength(rest);
    Check(n > 0);
    rest.remove_prefix(n);
  }

  const auto wait = authcode::providers::http::ParseRetryAfter(
      input, absl::FromUnixSeconds(1700000000));
  if (wait.has_value()) {
    Check(*wait >= absl::ZeroDuration());
    Check(*wait <= authcode::providers::http::kMaxRetryAfter);
  }
  return 0;
}
