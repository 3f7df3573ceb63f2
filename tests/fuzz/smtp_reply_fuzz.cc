// libFuzzer target: the SMTP reply parser fed hostile server output, in
// chunks the fuzzer also picks. It must never crash or grow past its
// limits, every reply it returns must be well-formed, and Summary() must
// be safe to log (no control characters, bounded).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "providers/smtp/smtp_reply.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size, as a network read would.
  const size_t chunk = 1 + data[0] % 64;
  absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  authcode::providers::SmtpReplyLimits limits;
  limits.max_line_length = 512;
  limits.max_lines = 20;
  authcode::providers::SmtpReplyParser parser(limits);
  while (!rest.empty()) {
    absl::string_view piece = rest.substr(0, chunk);
    rest.remove_prefix(piece.size());
    while (!piece.empty()) {
      const size_t before = piece.size();
      auto reply = parser.Feed(&piece);
      if (!reply.ok()) return 0;  // Malformed: the caller drops it.
      Check(piece.size() <= before);
      if (!reply->has_value()) {
        Check(piece.empty());
        break;
      }
      const auto& r = **reply;
      Check(r.code >= 200 && r.code <= 599);
      Check(!r.lines.empty() && r.lines.size() <= limits.max_lines);
      const std::string summary = r.Summary(100);
      Check(summary.size() <= 100);
      for (char c : summary) {
        Check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
      }
    }
  }
  return 0;
}
