#include "tests/support/capturing_provider.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/kept_logs.h"

namespace authcode::testing {

providers::SendResult CapturingProvider::Send(
    const providers::Message& message) {
  absl::Duration hang;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hang = hang_;
    hang_ = absl::ZeroDuration();
  }
  absl::SleepFor(hang);
  std::lock_guard<std::mutex> lock(mu_);
  attempts_.push_back(message);
  if (!script_.empty()) {
    providers::SendResult result = script_.front();
    script_.pop_front();
    if (!result.ok()) return result;
  }
  sent_.push_back(message);
  // The log scan looks for this code in every log line of the run.
  for (int length = 6; length <= 10; ++length) {
    const std::string code = FindCode(message.text, length);
    if (!code.empty()) {
      KeepCode(code);
      break;
    }
  }
  cv_.notify_all();
  return providers::SendResult::Sent(absl::StrCat("capture-", sent_.size()));
}

void CapturingProvider::FailNext(const providers::SendResult& result,
                                 int times) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < times; ++i) script_.push_back(result);
}

void CapturingProvider::HangNext(absl::Duration duration) {
  std::lock_guard<std::mutex> lock(mu_);
  hang_ = duration;
}

std::vector<providers::Message> CapturingProvider::attempts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attempts_;
}

std::vector<providers::Message> CapturingProvider::sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

size_t CapturingProvider::sent_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_.size();
}

bool CapturingProvider::WaitForSent(size_t count,
                                    absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return sent_.size() >= count; });
}

std::optional<std::string> CapturingProvider::LastCodeFor(const std::string& to,
                                                          int length) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = sent_.rbegin(); it != sent_.rend(); ++it) {
    if (it->to_address != to) continue;
    std::string code = FindCode(it->text, length);
    if (!code.empty()) return code;
  }
  return std::nullopt;
}

std::string FindCode(const std::string& text, int length) {
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() &&
           std::isdigit(static_cast<unsigned char>(text[j]))) {
      ++j;
    }
    if (static_cast<int>(j - i) == length) return text.substr(i, length);
    i = j;
  }
  return "";
}

}  // namespace authcode::testing
