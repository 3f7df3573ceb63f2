// The limits hold exactly under parallel calls, on one server and across
// two servers sharing one database (as replicas would).
#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"
#include "tests/support/test_server.h"

namespace authcode {
namespace {

using testing::TestConfig;
using testing::TestDatabase;
using testing::TestServer;

// Runs `n` calls of `fn(i)` at once from `n` threads, released together.
void InParallel(int n, const std::function<void(int)>& fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (!go) std::this_thread::yield();
      fn(i);
    });
  }
  while (ready < n) std::this_thread::yield();
  go = true;
  for (std::thread& t : threads) t.join();
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = TestDatabase::Create(); }

  std::unique_ptr<TestServer> Start(
      const std::function<void(Config&)>& adjust = [](Config&) {},
      bool start_worker = true) {
    Config config = TestConfig(db_->url());
    config.database.pool_size = 16;
    adjust(config);
    return TestServer::Start(config, start_worker);
  }

  std::unique_ptr<TestDatabase> db_;
};

// Issues `calls` codes for one recipient at once, spread over `servers`,
// and returns how many were accepted; every other call must be
// RESOURCE_EXHAUSTED.
int IssueInParallel(const std::vector<TestServer*>& servers, int calls) {
  std::atomic<int> ok{0}, limited{0}, other{0};
  InParallel(calls, [&](int i) {
    grpc::Status s =
        servers[i % servers.size()]->Issue("ada@example.com", "login");
    if (s.ok()) {
      ++ok;
    } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++limited;
    } else {
      ++other;
    }
  });
  EXPECT_EQ(other, 0);
  EXPECT_EQ(ok + limited, calls);
  return ok;
}

TEST_F(ConcurrencyTest, FiftyParallelIssuesYieldExactlyTheDefaultLimit) {
  auto s = Start();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(IssueInParallel({s.get()}, 50), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "1");
}

TEST_F(ConcurrencyTest, FiftyParallelIssuesYieldExactlyAConfiguredLimit) {
  auto s = Start([](Config& c) {
    c.limits.issue = {{absl::Seconds(60), 7}, {absl::Hours(1), 20}};
  });
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(IssueInParallel({s.get()}, 50), 7);
  // Each accepted issue queued a job; all but the last were superseded or
  // sent, and exactly one code is live.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "7");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes"), "1");
  EXPECT_EQ(db_->Scalar("SELECT cardinality(issued_at) FROM "
                        "recipient_limits"),
            "7");
}

TEST_F(ConcurrencyTest, IssueLimitHoldsAcrossTwoServers) {
  auto a = Start([](Config& c) { c.limits.issue = {{absl::Seconds(60), 5}}; });
  auto b = Start([](Config& c) { c.limits.issue = {{absl::Seconds(60), 5}}; });
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(IssueInParallel({a.get(), b.get()}, 50), 5);
}

TEST_F(ConcurrencyTest, HundredParallelWrongGuessesSpendOnlyTheBudget) {
  auto s = Start();
  ASSERT_NE(s, nullptr);
  const std::string code = s->IssueAndReceive("ada@example.com", "login");
  ASSERT_EQ(code.size(), 6u);
  const std::string wrong = code == "000000" ? "111111" : "000000";

  std::mutex mu;
  std::map<v1::VerifyOutcome, int> outcomes;
  std::vector<int> attempts_left;
  InParallel(100, [&](int) {
    v1::VerifyCodeResponse r = s->Verify("ada@example.com", "login", wrong);
    std::lock_guard<std::mutex> lock(mu);
    ++outcomes[r.outcome()];
    if (r.outcome() == v1::VERIFY_OUTCOME_WRONG_CODE) {
      attempts_left.push_back(r.attempts_left());
    }
  });
  EXPECT_EQ(outcomes[v1::VERIFY_OUTCOME_WRONG_CODE], 5);
  EXPECT_EQ(outcomes[v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS], 95);
  std::sort(attempts_left.begin(), attempts_left.end());
  EXPECT_THAT(attempts_left, ::testing::ElementsAre(0, 1, 2, 3, 4));
  // The right code is dead too, and the streak counted exactly 5.
  EXPECT_EQ(s->Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS);
  EXPECT_EQ(db_->Scalar("SELECT failures FROM recipient_limits"), "5");
}

TEST_F(ConcurrencyTest, RightCodeVerifiesExactlyOnceWhenCallsRace) {
  auto a = Start();
  // No delivery on b, so every mail lands at a's provider.
  auto b = Start([](Config&) {}, /*start_worker=*/false);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int round = 0; round < 5; ++round) {
    const std::string recipient = absl::StrCat("r", round, "@example.com");
    const std::string code = a->IssueAndReceive(recipient, "login");
    ASSERT_EQ(code.size(), 6u);
    std::atomic<int> verified{0}, gone{0};
    InParallel(20, [&](int i) {
      TestServer* s = i % 2 == 0 ? a.get() : b.get();
      v1::VerifyCodeResponse r = s->Verify(recipient, "login", code);
      if (r.outcome() == v1::VERIFY_OUTCOME_VERIFIED) ++verified;
      if (r.outcome() == v1::VERIFY_OUTCOME_NO_ACTIVE_CODE) ++gone;
    });
    EXPECT_EQ(verified, 1) << "round " << round;
    EXPECT_EQ(gone, 19) << "round " << round;
  }
}

TEST_F(ConcurrencyTest, LockoutThresholdIsExactUnderParallelGuesses) {
  // 10 codes' worth of guesses race against a threshold of 23.
  auto s = Start([](Config& c) {
    c.limits.issue = {{absl::Seconds(60), 100}};
    c.limits.max_failures = 23;
    c.codes.max_attempts = 100;
  });
  ASSERT_NE(s, nullptr);
  const std::string code = s->IssueAndReceive("ada@example.com", "login");
  const std::string wrong = code == "000000" ? "111111" : "000000";
  std::atomic<int> wrong_count{0}, locked{0};
  InParallel(60, [&](int) {
    v1::VerifyCodeResponse r = s->Verify("ada@example.com", "login", wrong);
    if (r.outcome() == v1::VERIFY_OUTCOME_WRONG_CODE) ++wrong_count;
    if (r.outcome() == v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS) ++locked;
  });
  // The 23rd failure locks; the 22 before it were plain wrong answers.
  EXPECT_EQ(wrong_count, 22);
  EXPECT_EQ(locked, 38);
}

}  // namespace
}  // namespace authcode
