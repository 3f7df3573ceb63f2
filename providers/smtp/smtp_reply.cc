#include "providers/smtp/smtp_reply.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace authcode::providers {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Up to `max` digits at the front of `*text`, at least one; consumed.
bool TakeDigits(absl::string_view* text, size_t max) {
  size_t n = 0;
  while (n < text->size() && n < max && IsDigit((*text)[n])) ++n;
  if (n == 0) return false;
  text->remove_prefix(n);
  return true;
}

// A reply line's text goes into errors and logs: no control characters.
void AppendPrintable(std::string* out, absl::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    *out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
}

}  // namespace

std::string TakeEnhancedCode(char klass, absl::string_view* text) {
  // class "." subject "." detail, subject and detail of 1 to 3 digits,
  // then a space or the end of the line.
  absl::string_view rest = *text;
  if (rest.size() < 5 || rest[0] != klass || rest[1] != '.') return "";
  rest.remove_prefix(2);
  if (!TakeDigits(&rest, 3) || rest.empty() || rest[0] != '.') return "";
  rest.remove_prefix(1);
  if (!TakeDigits(&rest, 3)) return "";
  if (!rest.empty() && rest[0] != ' ') return "";

  std::string code(text->substr(0, text->size() - rest.size()));
  if (!rest.empty()) rest.remove_prefix(1);
  *text = rest;
  return code;
}

std::string SmtpReply::Summary(size_t max_chars) const {
  std::string out = absl::StrCat(code);
  if (!enhanced.empty()) absl::StrAppend(&out, " ", enhanced);
  for (const std::string& line : lines) {
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty()) continue;
    out += ' ';
    AppendPrintable(&out, text);
  }
  if (out.size() > max_chars && max_chars > 3) {
    out.resize(max_chars - 3);
    out += "...";
  }
  return out;
}

absl::StatusOr<std::optional<SmtpReply>> SmtpReplyParser::Feed(
    absl::string_view* input) {
  if (failed_) {
    return absl::FailedPreconditionError(
        "SMTP reply parser used after an error");
  }
  while (!input->empty()) {
    const size_t eol = input->find('\n');
    const size_t take = eol == absl::string_view::npos ? input->size() : eol;
    if (line_.size() + take > limits_.max_line_length) {
      failed_ = true;
      return absl::ResourceExhaustedError(absl::StrCat(
          "SMTP reply line longer than ", limits_.max_line_length, " bytes"));
    }
    line_.append(input->data(), take);
    input->remove_prefix(take);
    if (eol == absl::string_view::npos) break;
    input->remove_prefix(1);  // The LF.

    std::string line = std::move(line_);
    line_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    absl::StatusOr<bool> done = AddLine(line);
    if (!done.ok()) {
      failed_ = true;
      return done.status();
    }
    if (*done) {
      SmtpReply reply = std::move(reply_);
      reply_ = SmtpReply();
      return std::optional<SmtpReply>(std::move(reply));
    }
  }
  return std::optional<SmtpReply>();
}

absl::StatusOr<bool> SmtpReplyParser::AddLine(absl::string_view line) {
  if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
      line[1] > '5' || !IsDigit(line[2]) ||
      (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
    return absl::InvalidArgumentError("malformed SMTP reply line");
  }
  const int code =
      (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (!reply_.lines.empty() && code != reply_.code) {
    return absl::InvalidArgumentError(
        absl::StrCat("SMTP reply mixes codes ", reply_.code, " and ", code));
  }
  if (reply_.lines.size() >= limits_.max_lines) {
    return absl::ResourceExhaustedError(
        absl::StrCat("SMTP reply longer than ", limits_.max_lines, " lines"));
  }

  const bool last = line.size() == 3 || line[3] == ' ';
  absl::string_view text = line.size() > 4 ? line.substr(4) : "";
  if (reply_.lines.empty()) {
    reply_.code = code;
    reply_.enhanced = TakeEnhancedCode(line[0], &text);
  } else if (!reply_.enhanced.empty()) {
    absl::string_view rest = text;
    if (TakeEnhancedCode(line[0], &rest) == reply_.enhanced) text = rest;
  }
  reply_.lines.emplace_back(text);
  return last;
}

void SmtpReplyParser::Reset() {
  line_.clear();
  reply_ = SmtpReply();
  failed_ = false;
}

}  // namespace authcode::providers
