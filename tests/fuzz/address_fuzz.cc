// libFuzzer target: the recipient address parser fed hostile input. It
// must never crash; what it accepts must be a bare ASCII address within
// RFC 5321's lengths that parses again to itself (the key codes are stored
// under is stable); what it refuses gets a message without CR, LF or NUL.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "server/address.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> parsed = authcode::ParseRecipient(input);
  if (!parsed.ok()) {
    const absl::string_view message = parsed.status().message();
    Check(!message.empty());
    Check(message.find_first_of(absl::string_view("\r\n\0", 3)) ==
          absl::string_view::npos);
    return 0;
  }
  const std::string& address = *parsed;
  Check(address.size() <= 254);
  const size_t at = address.rfind('@');
  Check(at != std::string::npos && at > 0 && at <= 64);
  for (char c : address) {
    const auto byte = static_cast<unsigned char>(c);
    Check(byte > 0x20 && byte < 0x7F && c != '<' && c != '>' && c != '"');
  }
  absl::StatusOr<std::string> again = authcode::ParseRecipient(address);
  Check(again.ok() && *again == address);
  return 0;
}
