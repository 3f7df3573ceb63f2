#include "providers/http/http_response.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace authcode::providers::http {
namespace {

constexpr size_t kMaxSummaryBytes = 300;
constexpr int kMaxJsonDepth = 4;

// Keys (kept in the provider's order) under which mail APIs put the reason for
// a refusal (compared in lower case): SES's "message", SendGrid's
// errors[].message and .field, Postmark's "Message" and "ErrorCode", and the
// like.
bool IsReasonKey(std::string key) {
  absl::AsciiStrToLower(&key);
  return key == "message" || key == "error" || key == "detail" ||
         key == "field" || key == "reason" || key == "code" ||
         key == "errorcode" || key == "__type" || key == "name" ||
         key == "error_description";
}

void CollectReasons(const nlohmann::ordered_json& node, int depth,
                    std::vector<std::string>& out) {
  if (depth > kMaxJsonDepth) return;
  if (node.is_array()) {
    for (const nlohmann::ordered_json& item : node) {
      CollectReasons(item, depth + 1, out);
    }
    return;
  }
  if (!node.is_object()) return;
  for (const auto& [key, value] : node.items()) {
    if (value.is_string() && IsReasonKey(key)) {
      if (!value.get_ref<const std::string&>().empty()) {
        out.push_back(absl::StrCat(key, "=", value.get<std::string>()));
      }
    } else if (value.is_number() && IsReasonKey(key)) {
      out.push_back(absl::StrCat(key, "=", value.dump()));
    } else if (value.is_structured()) {
      CollectReasons(value, depth + 1, out);
    }
  }
}

// The length of the valid UTF-8 sequence at `text`, 0 when invalid.
size_t Utf8Length(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  size_t length = 0;
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0 && lead >= 0xC2) length = 2;
  if ((lead & 0xF0) == 0xE0) length = 3;
  if ((lead & 0xF8) == 0xF0 && lead <= 0xF4) length = 4;
  if (length == 0 || length > text.size()) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// One line of valid UTF-8: controls become spaces, runs of spaces one,
// invalid bytes "?", cut at kMaxSummaryBytes on a character boundary.
std::string OneLine(std::string_view text) {
  std::string line;
  while (!text.empty() && line.size() < kMaxSummaryBytes) {
    const size_t n = Utf8Length(text);
    if (n == 0) {
      line += '?';
      text.remove_prefix(1);
      continue;
    }
    const auto c = static_cast<unsigned char>(text[0]);
    if (n == 1 && (c < 0x20 || c == 0x7F || c == ' ')) {
      if (!line.empty() && line.back() != ' ') line += ' ';
    } else {
      line.append(text.data(), n);
    }
    text.remove_prefix(n);
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  if (!text.empty()) line += "...";
  return line;
}

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                              absl::Time now) {
  const absl::string_view text =
      absl::StripAsciiWhitespace(absl::string_view(value.data(), value.size()));
  int64_t seconds = 0;
  if (!text.empty() &&
      absl::ascii_isdigit(static_cast<unsigned char>(text[0]))) {
    if (!absl::SimpleAtoi(text, &seconds)) {
      // All digits but too many of them: as long as allowed.
      return std::all_of(
                 text.begin(), text.end(),
                 [](char c) {
                   return absl::ascii_isdigit(static_cast<unsigned char>(c));
                 })
                 ? std::optional<absl::Duration>(kMaxRetryAfter)
                 : std::nullopt;
    }
    return std::min(absl::Seconds(seconds), kMaxRetryAfter);
  }

  // An HTTP date: IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  absl::Time when;
  std::string error;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", text, absl::UTCTimeZone(),
                       &when, &error)) {
    return std::nullopt;
  }
  return std::clamp(when - now, absl::ZeroDuration(), kMaxRetryAfter);
}

std::string SummarizeErrorBody(std::string_view body,
                               const std::vector<std::string>& secrets) {
  std::string summary;
  const nlohmann::ordered_json json =
      nlohmann::ordered_json::parse(body.begin(), body.end(), nullptr, false);
  if (!json.is_discarded()) {
    std::vector<std::string> reasons;
    CollectReasons(json, 0, reasons);
    summary = absl::StrJoin(reasons, "; ");
  }
  if (summary.empty())
    summary = std::string(body.substr(0, 2 * kMaxSummaryBytes));

  for (const std::string& secret : secrets) {
    if (!secret.empty())
      absl::StrReplaceAll({{secret, "[redacted]"}}, &summary);
  }
  return OneLine(summary);
}

SendResult ToSendResult(std::string_view provider,
                        const absl::StatusOr<HttpResponse>& response,
                        const MessageIdReader& message_id,
                        const std::vector<std::string>& secrets,
                        absl::Time now) {
  const absl::string_view name(provider.data(), provider.size());
  if (!response.ok()) {
    const std::string error =
        absl::StrCat(name, ": ", response.status().message());
    // A request we could not even form will not form better later; any
    // other failure to get an answer may pass.
    if (response.status().code() == absl::StatusCode::kInvalidArgument) {
      return SendResult::Permanent(error);
    }
    return SendResult::Retryable(error);
  }

  const long status = response->status;
  if (status >= 200 && status < 300) {
    return SendResult::Sent(message_id(*response));
  }

  std::string error = absl::StrCat(name, ": HTTP ", status);
  // AWS names the error class in a header ("MessageRejected:<url>").
  if (std::optional<std::string> type = response->Header("x-amzn-errortype")) {
    absl::StrAppend(&error, " ", OneLine(type->substr(0, type->find(':'))));
  }
  const std::string reason = SummarizeErrorBody(response->body, secrets);
  if (!reason.empty()) absl::StrAppend(&error, ": ", reason);

  if (status == 408 || status == 429 || status >= 500) {
    std::optional<absl::Duration> retry_after;
    if (std::optional<std::string> header = response->Header("retry-after")) {
      retry_after = ParseRetryAfter(*header, now);
    }
    return SendResult::Retryable(std::move(error), retry_after);
  }
  return SendResult::Permanent(std::move(error));
}

}  // namespace authcode::providers::http
