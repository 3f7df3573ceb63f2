// A circuit breaker for one provider: after `threshold` failures in a row
// it opens and the provider is skipped for `cooldown`; then one trial send
// is let through (half-open), whose result closes or re-opens it.
//
// State is per process: each replica learns on its own that a provider is
// failing, which costs at most `threshold` sends per replica.
//
// Thread safety: all methods may be called from any thread.
#ifndef AUTHCODE_SERVER_CIRCUIT_BREAKER_H_
#define AUTHCODE_SERVER_CIRCUIT_BREAKER_H_

#include <functional>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace authcode {

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  using Clock = std::function<absl::Time()>;

  CircuitBreaker(
      int threshold, absl::Duration cooldown,
      Clock clock = [] { return absl::Now(); });

  // True when a send may go out now. In the half-open state only one
  // caller gets true until it reports back.
  bool Allow();
  void RecordSuccess();
  void RecordFailure();
  // Gives back a trial that Allow() granted but that was not used (the
  // send was skipped for another reason).
  void Release();

  State state() const;
  // While open: when the trial send will be allowed.
  absl::Time open_until() const;

 private:
  const int threshold_;
  const absl::Duration cooldown_;
  const Clock clock_;

  mutable std::mutex mu_;
  int failures_ = 0;
  bool open_ = false;
  bool trial_out_ = false;
  absl::Time open_until_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_CIRCUIT_BREAKER_H_
