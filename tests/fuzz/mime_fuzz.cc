// libFuzzer target: BuildMime with hostile field values. Whatever the
// input, the builder either refuses it or writes a message whose header
// section holds only the fields it means to write, with CRLF line ends and
// no line over 998 octets.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "providers/message/mime.h"

namespace {

// Splits the input at NUL-free separators into the message's fields, so
// the fuzzer can steer each one.
std::vector<std::string> Fields(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields = absl::StrSplit(text, "\x1f");
  fields.resize(8);
  return fields;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> f = Fields(data, size);
  authcode::providers::Message message;
  message.from_address = f[0];
  message.from_name = f[1];
  message.to_address = f[2];
  message.subject = f[3];
  message.text = f[4];
  message.html = f[5];
  if (!f[6].empty()) message.headers.push_back({f[6], f[7]});

  authcode::providers::MimeOptions options;
  options.date = absl::FromUnixSeconds(1700000000);
  options.encoding =
      size % 2 == 0
          ? authcode::providers::MimeOptions::Encoding::kBase64
          : authcode::providers::MimeOptions::Encoding::kQuotedPrintable;
  const auto built = authcode::providers::BuildMime(message, options);
  if (!built.ok()) return 0;

  const std::string& out = built->data;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n') Check(i > 0 && out[i - 1] == '\r');
    if (out[i] == '\r') Check(i + 1 < out.size() && out[i + 1] == '\n');
  }
  const std::set<std::string> allowed = {
      "from",         "to",
      "subject",      "date",
      "message-id",   "mime-version",
      "content-type", absl::AsciiStrToLower(f[6])};
  bool in_headers = true;
  for (absl::string_view line : absl::StrSplit(out, "\r\n")) {
    Check(line.size() <= 998);
    if (!in_headers) continue;
    if (line.empty()) {
      in_headers = false;
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') continue;  // A folded line.
    const size_t colon = line.find(':');
    Check(colon != absl::string_view::npos);
    Check(allowed.count(absl::AsciiStrToLower(line.substr(0, colon))) > 0);
  }
  return 0;
}
