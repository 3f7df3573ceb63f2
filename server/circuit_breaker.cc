#include "server/circuit_breaker.h"

#include <utility>

namespace authcode {

CircuitBreaker::CircuitBreaker(int threshold, absl::Duration cooldown,
                               Clock clock)
    : threshold_(threshold), cooldown_(cooldown), clock_(std::move(clock)) {}

bool CircuitBreaker::Allow() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return true;
  if (trial_out_ || clock_() < open_until_) return false;
  trial_out_ = true;
  return true;
}

void CircuitBreaker::RecordSuccess() {
  std::lock_guard<std::mutex> lock(mu_);
  failures_ = 0;
  open_ = false;
  trial_out_ = false;
}

void CircuitBreaker::RecordFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++failures_;
  if (open_ || failures_ >= threshold_) {
    // A failed trial, or the threshold reached: (re)open.
    open_ = true;
    trial_out_ = false;
    open_until_ = clock_() + cooldown_;
  }
}

void CircuitBreaker::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  trial_out_ = false;
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return State::kClosed;
  return trial_out_ || clock_() >= open_until_ ? State::kHalfOpen
                                               : State::kOpen;
}

absl::Time CircuitBreaker::open_until() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_until_;
}

}  // namespace authcode
