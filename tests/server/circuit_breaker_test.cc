#include "server/circuit_breaker.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace authcode {
namespace {

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreaker Make(int threshold) {
    return CircuitBreaker(threshold, absl::Seconds(30),
                          [this] { return now_; });
  }

  absl::Time now_ = absl::FromUnixSeconds(1000000);
};

TEST_F(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  CircuitBreaker b = Make(3);
  b.RecordFailure();
  b.RecordFailure();
  EXPECT_TRUE(b.Allow());
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  b.RecordFailure();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(b.Allow());
  EXPECT_EQ(b.open_until(), now_ + absl::Seconds(30));
}

TEST_F(CircuitBreakerTest, SuccessResetsTheStreak) {
  CircuitBreaker b = Make(3);
  b.RecordFailure();
  b.RecordFailure();
  b.RecordSuccess();
  b.RecordFailure();
  b.RecordFailure();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
}

TEST_F(CircuitBreakerTest, LetsOneTrialThroughAfterTheCooldown) {
  CircuitBreaker b = Make(1);
  b.RecordFailure();
  now_ += absl::Seconds(29);
  EXPECT_FALSE(b.Allow());
  now_ += absl::Seconds(1);
  EXPECT_EQ(b.state(), CircuitBreaker::State::kHalfOpen);
  EXPECT_TRUE(b.Allow());
  EXPECT_FALSE(b.Allow()) << "only one trial at a time";
  b.RecordSuccess();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(b.Allow());
  EXPECT_TRUE(b.Allow());
}

TEST_F(CircuitBreakerTest, FailedTrialReopensForAnotherCooldown) {
  CircuitBreaker b = Make(2);
  b.RecordFailure();
  b.RecordFailure();
  now_ += absl::Seconds(31);
  ASSERT_TRUE(b.Allow());
  b.RecordFailure();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(b.open_until(), now_ + absl::Seconds(30));
  EXPECT_FALSE(b.Allow());
}

TEST_F(CircuitBreakerTest, ReleasedTrialCanBeTakenAgain) {
  CircuitBreaker b = Make(1);
  b.RecordFailure();
  now_ += absl::Seconds(30);
  ASSERT_TRUE(b.Allow());
  b.Release();
  EXPECT_TRUE(b.Allow());
}

TEST_F(CircuitBreakerTest, ParallelCallersGetExactlyOneTrial) {
  CircuitBreaker b = Make(1);
  b.RecordFailure();
  now_ += absl::Seconds(30);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      if (b.Allow()) ++allowed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed, 1);
}

}  // namespace
}  // namespace authcode
