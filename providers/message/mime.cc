#include "providers/message/mime.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "server/status_macros.h"

namespace authcode::providers {
namespace {

constexpr char kEncodedWordStart[] = "=?UTF-8?B?";
constexpr char kEncodedWordEnd[] = "?=";
// 39 bytes make 52 base64 characters: with its markers an encoded word is
// 64 characters, so "Subject: " and the first word still fit in 78.
constexpr size_t kEncodedWordBytes = 39;
// Longer plain values go out as encoded words, which fold safely, so no
// header line nears the limit of 998.
constexpr size_t kMaxPlainHeaderValue = 900;
// RFC 5322: lines SHOULD stay within 78 characters and MUST within 998.
constexpr size_t kFoldWidth = 78;
constexpr size_t kMaxLineLength = 998;
// RFC 2045: encoded lines of at most 76 characters, for both encodings.
constexpr size_t kEncodedLineLength = 76;
// RFC 5321's limit on a path, less its angle brackets.
constexpr size_t kMaxAddressLength = 254;
constexpr size_t kMaxBoundaryLength = 70;
// Longer names are no real header's; the limit keeps "Name: " and an
// encoded word far within 998.
constexpr size_t kMaxFieldName = 76;

// Headers the builder writes itself; an extra header of the same name would
// make a second From or a Content-Type that breaks the MIME structure.
constexpr const char* kOwnHeaders[] = {
    "from",       "to",           "subject",      "date",
    "message-id", "mime-version", "content-type", "content-transfer-encoding"};

// Debian's Abseil has its own string_view, not std::string_view.
absl::string_view ToAbsl(std::string_view value) {
  return absl::string_view(value.data(), value.size());
}

// --- Checks --------------------------------------------------------------

// Header names appear in errors: escaped, so an injected line break shows
// as \r\n, and cut, so an error stays one short line.
std::string QuotedName(std::string_view name) {
  return absl::StrCat("\"", absl::CHexEscape(ToAbsl(name.substr(0, 64))), "\"");
}

// Why `value` cannot go into a header: a line break or another control
// character (HTAB, which is whitespace, is allowed); "" when it can.
std::string ControlProblem(std::string_view value) {
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r' || c == '\n') return "holds a line break (CR or LF)";
    if (c == 0) return "holds a NUL";
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return absl::StrCat("holds the control character 0x",
                          absl::Hex(c, absl::kZeroPad2));
    }
  }
  return "";
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view value) {
  size_t i = 0;
  while (i < value.size()) {
    const auto c = static_cast<unsigned char>(value[i]);
    size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      length = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      if (c == 0xe0) low = 0xa0;
      if (c == 0xed) high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      if (c == 0xf0) low = 0x90;
      if (c == 0xf4) high = 0x8f;
    } else {
      return false;
    }
    if (i + length > value.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(value[i + k]);
      if (next < (k == 1 ? low : 0x80) || next > (k == 1 ? high : 0xbf)) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

bool IsAscii(std::string_view value) {
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return (c & 0x80) == 0; });
}

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("the ", ToAbsl(field), " header ", ToAbsl(problem)));
}

// Subjects, display names and extra header values.
absl::Status CheckText(std::string_view field, std::string_view value) {
  if (std::string problem = ControlProblem(value); !problem.empty()) {
    return Invalid(field, problem);
  }
  if (!IsValidUtf8(value)) return Invalid(field, "is not valid UTF-8");
  return absl::OkStatus();
}

// A dot-atom (RFC 5322 3.2.3): atext in non-empty atoms between dots, and
// UTF-8 octets too when `allow_utf8` (RFC 6532).
bool IsDotAtom(std::string_view value, bool allow_utf8) {
  if (value.empty() || value.front() == '.' || value.back() == '.') {
    return false;
  }
  if (value.find("..") != std::string_view::npos) return false;
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    const bool atext = absl::ascii_isalnum(c) ||
                       (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~.", c));
    if (!atext && !(allow_utf8 && c >= 0x80)) return false;
  }
  return true;
}

// "local@domain", both dot-atoms; UTF-8 is allowed (SMTPUTF8).
absl::Status CheckAddress(std::string_view field, std::string_view address) {
  RETURN_IF_ERROR(CheckText(field, address));
  if (address.empty()) return Invalid(field, "is empty");
  if (address.size() > kMaxAddressLength) {
    return Invalid(
        field, absl::StrCat("is longer than ", kMaxAddressLength, " octets"));
  }
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos ||
      !IsDotAtom(address.substr(0, at), /*allow_utf8=*/true) ||
      !IsDotAtom(address.substr(at + 1), /*allow_utf8=*/true)) {
    return Invalid(field, "is not a plain address (local@domain)");
  }
  return absl::OkStatus();
}

// Where `name` stops being a field name (printable ASCII but ':'), or
// npos when it is one throughout.
size_t BadFieldNameChar(std::string_view name) {
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] < 33 || name[i] > 126 || name[i] == ':') return i;
  }
  return std::string_view::npos;
}

absl::Status CheckExtraHeader(std::string_view name, std::string_view value) {
  // A bad name is quoted only up to its first bad character, so an
  // injected line never reaches an error message either.
  if (const size_t bad = BadFieldNameChar(name);
      bad != std::string_view::npos) {
    return Invalid(
        absl::StrCat("extra ", QuotedName(name.substr(0, bad))),
        absl::StrCat(
            "has a name with the character 0x",
            absl::Hex(static_cast<unsigned char>(name[bad]), absl::kZeroPad2),
            " at offset ", bad,
            "; a name is printable ASCII without ':' or space"));
  }
  const std::string field = absl::StrCat("extra ", QuotedName(name));
  if (name.empty()) return Invalid(field, "has an empty name");
  if (name.size() > kMaxFieldName) {
    return Invalid(field, absl::StrCat("has a name longer than ", kMaxFieldName,
                                       " characters"));
  }
  for (const char* own : kOwnHeaders) {
    if (absl::EqualsIgnoreCase(ToAbsl(name), own)) {
      return Invalid(field, "would duplicate a header the builder writes");
    }
  }
  return CheckText(field, value);
}

}  // namespace

absl::Status CheckMessage(const Message& message) {
  RETURN_IF_ERROR(CheckAddress("From (address)", message.from_address));
  RETURN_IF_ERROR(CheckText("From (display name)", message.from_name));
  RETURN_IF_ERROR(CheckAddress("To", message.to_address));
  RETURN_IF_ERROR(CheckText("Subject", message.subject));
  for (const auto& [name, value] : message.headers) {
    RETURN_IF_ERROR(CheckExtraHeader(name, value));
  }
  return absl::OkStatus();
}

namespace {

// RFC 2046 bcharsnospace, plus space inside.
bool IsBoundary(std::string_view boundary) {
  if (boundary.empty() || boundary.size() > kMaxBoundaryLength ||
      boundary.back() == ' ') {
    return false;
  }
  for (char c : boundary) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        (c == 0 || std::strchr("'()+_,-./:=? ", c) == nullptr)) {
      return false;
    }
  }
  return true;
}

// --- Headers -------------------------------------------------------------

// Plain printable ASCII can go out as is; anything else, text a reader
// could mistake for an encoded word, or whitespace at either end (which a
// parser would drop), is encoded.
bool NeedsEncoding(std::string_view value) {
  if (value.size() > kMaxPlainHeaderValue) return true;
  if (value.find("=?") != std::string_view::npos) return true;
  if (!value.empty() && (value.front() == ' ' || value.back() == ' ')) {
    return true;
  }
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return true;
  }
  return false;
}

// RFC 2047 "B" encoded words, folded onto continuation lines. Each word
// holds whole UTF-8 characters, as RFC 2047 requires.
std::string EncodeWords(std::string_view value) {
  std::string out;
  size_t start = 0;
  while (start < value.size()) {
    size_t end = std::min(value.size(), start + kEncodedWordBytes);
    size_t cut = end;
    while (cut > start && cut < value.size() &&
           (static_cast<unsigned char>(value[cut]) & 0xc0) == 0x80) {
      --cut;
    }
    if (cut > start) end = cut;  // Else not UTF-8: cut anywhere.

    if (!out.empty()) out += "\r\n ";
    absl::StrAppend(
        &out, kEncodedWordStart,
        absl::Base64Escape(ToAbsl(value.substr(start, end - start))),
        kEncodedWordEnd);
    start = end;
  }
  return out;
}

// Folds "Name: value" before single spaces so lines stay within 78 where
// the words allow it; unfolding gives the value back exactly. Fails when a
// word is too long for a line of 998; `field` names the header in errors.
absl::StatusOr<std::string> FoldedField(std::string_view name,
                                        std::string_view value,
                                        std::string_view field) {
  std::string out = absl::StrCat(ToAbsl(name), ": ");
  size_t line_start = 0;
  size_t pos = 0;
  while (pos < value.size()) {
    // The next word runs to a space that has a non-space on both sides.
    size_t next = pos + 1;
    while (next < value.size() &&
           !(value[next] == ' ' && value[next - 1] != ' ' &&
             next + 1 < value.size() && value[next + 1] != ' ')) {
      ++next;
    }
    const std::string_view word = value.substr(pos, next - pos);
    if (pos > 0 && out.size() - line_start + word.size() > kFoldWidth) {
      out += "\r\n";
      line_start = out.size();
    }
    if (out.size() - line_start + word.size() > kMaxLineLength) {
      return Invalid(field, absl::StrCat("has a word too long for a line of ",
                                         kMaxLineLength, " octets"));
    }
    absl::StrAppend(&out, ToAbsl(word));
    pos = next;
  }
  out += "\r\n";
  return out;
}

// An unstructured value (RFC 5322 3.2.5): folded plain text, or encoded
// words when it is not plain ASCII.
absl::StatusOr<std::string> UnstructuredField(std::string_view name,
                                              std::string_view value) {
  if (!NeedsEncoding(value)) return FoldedField(name, value, name);
  return absl::StrCat(ToAbsl(name), ": ", EncodeWords(value), "\r\n");
}

// An extra header: as is when it is printable ASCII (it may be structured,
// such as List-Unsubscribe), encoded words when it is not ASCII.
absl::StatusOr<std::string> ExtraField(std::string_view name,
                                       std::string_view value) {
  if (IsAscii(value)) {
    return FoldedField(name, value, absl::StrCat("extra ", QuotedName(name)));
  }
  return absl::StrCat(ToAbsl(name), ": ", EncodeWords(value), "\r\n");
}

bool IsAtomText(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~ ", c) != nullptr);
}

// A display name as an RFC 5322 phrase: as is when it is atoms and spaces,
// quoted when it holds specials such as ',' or '.', encoded words when it
// is not plain ASCII or would be too long once quoted.
std::string DisplayName(std::string_view name) {
  if (NeedsEncoding(name)) return EncodeWords(name);

  if (std::all_of(name.begin(), name.end(), IsAtomText)) {
    return std::string(name);
  }
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  return quoted.size() > kMaxPlainHeaderValue ? EncodeWords(name) : quoted;
}

// "From: name <address>", folded before the address when the line would
// pass 78 characters.
std::string FromField(const Message& message) {
  if (message.from_name.empty()) {
    return absl::StrCat("From: ", message.from_address, "\r\n");
  }
  std::string out = absl::StrCat("From: ", DisplayName(message.from_name));
  const size_t last_line = out.rfind("\r\n");
  const size_t line_length =
      out.size() - (last_line == std::string::npos ? 0 : last_line + 2);
  const std::string address = absl::StrCat("<", message.from_address, ">");
  absl::StrAppend(&out,
                  line_length + 1 + address.size() > kFoldWidth ? "\r\n " : " ",
                  address, "\r\n");
  return out;
}

// --- Bodies --------------------------------------------------------------

// CRLF, bare LF and bare CR all become CRLF.
std::string NormalizeLineBreaks(std::string_view body) {
  std::string out;
  out.reserve(body.size() + body.size() / 32);
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r') {
      if (i + 1 < body.size() && body[i + 1] == '\n') ++i;
      out += "\r\n";
    } else if (body[i] == '\n') {
      out += "\r\n";
    } else {
      out += body[i];
    }
  }
  return out;
}

// One line (no line break in it) of RFC 2045 6.7 quoted-printable: '=',
// controls and non-ASCII as =XX, whitespace at the end of the line too (a
// transport may strip it), soft line breaks so that no line passes 76.
void AppendQuotedPrintableLine(std::string_view line, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  size_t length = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    const bool last = i + 1 == line.size();
    char token[3] = {static_cast<char>(c), 0, 0};
    size_t token_length = 1;
    const bool literal =
        (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
    if (!literal) {
      token[0] = '=';
      token[1] = kHex[c >> 4];
      token[2] = kHex[c & 0xf];
      token_length = 3;
    }
    // A line that goes on needs room for the '=' of its soft break.
    const size_t limit = last ? kEncodedLineLength : kEncodedLineLength - 1;
    if (length + token_length > limit) {
      out += "=\r\n";
      length = 0;
    }
    out.append(token, token_length);
    length += token_length;
  }
}

// `body` must have CRLF line breaks.
std::string QuotedPrintable(std::string_view body) {
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t end = body.find("\r\n", start);
    AppendQuotedPrintableLine(body.substr(start, end - start), out);
    if (end == std::string_view::npos) break;
    out += "\r\n";
    start = end + 2;
  }
  return out;
}

std::string Base64Lines(std::string_view body) {
  const std::string encoded = absl::Base64Escape(ToAbsl(body));
  std::string out;
  for (size_t i = 0; i < encoded.size(); i += kEncodedLineLength) {
    if (i > 0) out += "\r\n";
    out += encoded.substr(i, kEncodedLineLength);
  }
  return out;
}

std::string EncodeBody(std::string_view body, MimeOptions::Encoding encoding) {
  if (encoding == MimeOptions::Encoding::kBase64) return Base64Lines(body);
  return QuotedPrintable(NormalizeLineBreaks(body));
}

void AppendPart(std::string& out, const std::string& boundary, const char* type,
                const std::string& encoded, MimeOptions::Encoding encoding) {
  const char* transfer = encoding == MimeOptions::Encoding::kBase64
                             ? "base64"
                             : "quoted-printable";
  // The line break before a boundary belongs to the boundary, so the part
  // ends exactly where the encoded body does.
  absl::StrAppend(&out, "--", boundary, "\r\n", "Content-Type: ", type,
                  "; charset=utf-8\r\n",
                  "Content-Transfer-Encoding: ", transfer, "\r\n\r\n", encoded,
                  "\r\n");
}

// --- Envelope ------------------------------------------------------------

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::string random(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(random.data()),
                 static_cast<int>(random.size())) != 1) {
    return absl::InternalError("OpenSSL could not draw random bytes");
  }
  return absl::BytesToHexString(random);
}

// "Tue, 05 Mar 2024 14:03:07 +0000", in English whatever the locale.
std::string FormatDate(absl::Time time) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu",
                                          "Fri", "Sat", "Sun"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr",
                                            "May", "Jun", "Jul", "Aug",
                                            "Sep", "Oct", "Nov", "Dec"};
  const absl::CivilSecond t = absl::ToCivilSecond(time, absl::UTCTimeZone());
  return absl::StrCat(kDays[static_cast<int>(absl::GetWeekday(t))], ", ",
                      absl::Dec(t.day(), absl::kZeroPad2), " ",
                      kMonths[t.month() - 1], " ", t.year(), " ",
                      absl::Dec(t.hour(), absl::kZeroPad2), ":",
                      absl::Dec(t.minute(), absl::kZeroPad2), ":",
                      absl::Dec(t.second(), absl::kZeroPad2), " +0000");
}

absl::StatusOr<std::string> MakeMessageId(const Message& message,
                                          const MimeOptions& options) {
  std::string local = options.message_id_local;
  if (local.empty()) {
    ASSIGN_OR_RETURN(local, RandomHex(16));
  }
  std::string domain = options.message_id_domain;
  if (domain.empty()) {
    domain = message.from_address.substr(message.from_address.rfind('@') + 1);
  }
  if (!IsDotAtom(local, /*allow_utf8=*/false)) {
    return Invalid("Message-ID",
                   "local part (message_id_local) is not an "
                   "ASCII dot-atom");
  }
  if (!IsDotAtom(domain, /*allow_utf8=*/false)) {
    return Invalid("Message-ID",
                   "domain is not an ASCII dot-atom; set message_id_domain "
                   "for a From address on an internationalized domain");
  }
  return absl::StrCat(local, "@", domain);
}

absl::StatusOr<std::string> MakeBoundary(const MimeOptions& options) {
  if (!options.boundary.empty()) {
    if (!IsBoundary(options.boundary)) {
      return Invalid("Content-Type", "boundary is not a valid MIME boundary");
    }
    return options.boundary;
  }
  // "=_" never occurs in base64 or quoted-printable text.
  ASSIGN_OR_RETURN(const std::string random, RandomHex(16));
  return absl::StrCat("=_authcode_", random);
}

}  // namespace

std::string FormatMailbox(absl::string_view name, absl::string_view address) {
  if (name.empty()) return std::string(address);
  // Encoded words fold onto continuation lines; one line unfolds them.
  return absl::StrCat(absl::StrReplaceAll(DisplayName(std::string_view(
                                              name.data(), name.size())),
                                          {{"\r\n ", " "}}),
                      " <", address, ">");
}

absl::StatusOr<MimeMessage> BuildMime(const Message& message,
                                      const MimeOptions& options) {
  RETURN_IF_ERROR(CheckMessage(message));
  ASSIGN_OR_RETURN(std::string message_id, MakeMessageId(message, options));
  ASSIGN_OR_RETURN(const std::string boundary, MakeBoundary(options));

  const std::string text = EncodeBody(message.text, options.encoding);
  const std::string html = EncodeBody(message.html, options.encoding);
  if (absl::StrContains(text, boundary) || absl::StrContains(html, boundary)) {
    return Invalid("Content-Type", "boundary occurs in a body");
  }

  std::string out = FromField(message);
  absl::StrAppend(&out, "To: ", message.to_address, "\r\n");
  ASSIGN_OR_RETURN(const std::string subject,
                   UnstructuredField("Subject", message.subject));
  absl::StrAppend(&out, subject, "Date: ", FormatDate(options.date), "\r\n",
                  "Message-ID: <", message_id, ">\r\n",
                  "MIME-Version: 1.0\r\n");
  for (const auto& [name, value] : message.headers) {
    ASSIGN_OR_RETURN(const std::string field, ExtraField(name, value));
    out += field;
  }
  absl::StrAppend(&out, "Content-Type: multipart/alternative;\r\n",
                  " boundary=\"", boundary, "\"\r\n\r\n");

  AppendPart(out, boundary, "text/plain", text, options.encoding);
  AppendPart(out, boundary, "text/html", html, options.encoding);
  absl::StrAppend(&out, "--", boundary, "--\r\n");
  return MimeMessage{std::move(out), std::move(message_id)};
}

bool NeedsSmtpUtf8(absl::string_view address) {
  return !IsAscii(std::string_view(address.data(), address.size()));
}

}  // namespace authcode::providers
