// A Provider for tests: records every message it is given and can be told
// to fail, hang or succeed, in order, like a real provider would.
//
// Thread safety: all methods may be called from any thread.
#ifndef AUTHCODE_TESTS_SUPPORT_CAPTURING_PROVIDER_H_
#define AUTHCODE_TESTS_SUPPORT_CAPTURING_PROVIDER_H_

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "providers/provider.h"

namespace authcode::testing {

class CapturingProvider : public providers::Provider {
 public:
  std::string_view name() const override { return "capture"; }
  providers::SendResult Send(const providers::Message& message) override;
  absl::Status CheckReachable() override { return absl::OkStatus(); }

  // The next `times` sends return `result` (before anything queued later).
  void FailNext(const providers::SendResult& result, int times = 1);
  // The next send takes `duration` before it succeeds, like a provider
  // that stalls.
  void HangNext(absl::Duration duration);

  // Every send attempt, successful or not, in order.
  std::vector<providers::Message> attempts() const;
  // Messages that were reported as sent.
  std::vector<providers::Message> sent() const;
  size_t sent_count() const;

  // Waits until at least `count` messages were sent.
  bool WaitForSent(size_t count, absl::Duration timeout) const;

  // The code in the last message sent to `to` (a run of digits of the
  // configured length in the text part), if any.
  std::optional<std::string> LastCodeFor(const std::string& to,
                                         int length = 6) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<providers::SendResult> script_;
  absl::Duration hang_;
  std::vector<providers::Message> attempts_;
  std::vector<providers::Message> sent_;
};

// The first run of exactly `length` digits in `text`, or "".
std::string FindCode(const std::string& text, int length);

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_CAPTURING_PROVIDER_H_
