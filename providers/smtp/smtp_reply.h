// SMTP replies (RFC 5321 section 4.2) and an incremental parser for them.
//
// A reply is one or more lines sharing a three-digit code: "250-..." lines
// continue it, a "250 ..." (or bare "250") line ends it. When the server
// uses enhanced status codes (RFC 3463, "5.1.1"), the parser takes the one
// on the first line and strips it from every line that repeats it.
//
// The parser is pure: it owns only the bytes of the reply in progress, and
// those are bounded (SmtpReplyLimits), so a hostile server cannot make it
// grow without end. Anything malformed is an error, after which the
// connection should be dropped.
//
// Thread safety: a parser belongs to one connection and one thread.
#ifndef AUTHCODE_PROVIDERS_SMTP_SMTP_REPLY_H_
#define AUTHCODE_PROVIDERS_SMTP_SMTP_REPLY_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace authcode::providers {

struct SmtpReply {
  int code = 0;          // 200..599.
  std::string enhanced;  // "2.1.0", or "" when the server gave none.
  // The text of each line, without code, separator and enhanced code.
  std::vector<std::string> lines;

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }

  // "550 5.1.1 no such user": code, enhanced code and the lines joined by
  // spaces, control characters replaced, cut to `max_chars` (with "...").
  // Safe to put in an error or a log line.
  std::string Summary(size_t max_chars = 300) const;
};

struct SmtpReplyLimits {
  // RFC 5321 allows 512 octets per reply line; servers are often longer.
  size_t max_line_length = 2048;
  // A large EHLO reply has some 20 lines.
  size_t max_lines = 100;
};

class SmtpReplyParser {
 public:
  explicit SmtpReplyParser(SmtpReplyLimits limits = {}) : limits_(limits) {}

  // Consumes bytes from the front of `*input` up to the end of one reply.
  // Returns the reply once its last line is complete, leaving any later
  // bytes in `*input`; nullopt when `*input` ran out first (all of it was
  // consumed: feed more later). An error (a malformed line, mixed codes, a
  // limit exceeded) leaves the parser unusable until Reset().
  absl::StatusOr<std::optional<SmtpReply>> Feed(absl::string_view* input);

  // Forgets the reply in progress.
  void Reset();

  // Whether part of a reply has been consumed.
  bool InProgress() const { return !line_.empty() || !reply_.lines.empty(); }

 private:
  // Adds one complete line (without its line break); true when it ended
  // the reply.
  absl::StatusOr<bool> AddLine(absl::string_view line);

  SmtpReplyLimits limits_;
  std::string line_;  // The partial line.
  SmtpReply reply_;   // The lines so far.
  bool failed_ = false;
};

// Strips a leading enhanced status code of class `klass` ('2', '4' or '5')
// from `*text`; returns it, or "" when `*text` does not start with one.
std::string TakeEnhancedCode(char klass, absl::string_view* text);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_SMTP_SMTP_REPLY_H_
