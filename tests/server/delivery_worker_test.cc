// The delivery worker against a real database and a scripted provider:
// composition, retries with backoff, permanent failures, expiry.
#include "server/delivery_worker.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"
#include "tests/support/test_server.h"

namespace authcode {
namespace {

using providers::SendResult;
using ::testing::HasSubstr;
using testing::TestConfig;
using testing::TestDatabase;
using testing::TestServer;

class DeliveryWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = TestDatabase::Create(); }

  // A server whose worker threads are off: the test runs the worker.
  TestServer& Start(const std::function<void(Config&)>& adjust = [](Config&) {
  }) {
    Config config = TestConfig(db_->url());
    config.limits.issue = {{absl::Seconds(60), 100}};
    adjust(config);
    server_ = TestServer::Start(config, /*start_worker=*/false);
    EXPECT_NE(server_, nullptr);
    return *server_;
  }

  std::string JobState() {
    return db_->Scalar(
        "SELECT state || ' attempts=' || attempts || ' payload=' || "
        "(payload IS NOT NULL)::text || ' error=' || "
        "coalesce(last_error, '') FROM delivery_jobs ORDER BY id DESC "
        "LIMIT 1");
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(DeliveryWorkerTest, ComposesFromTheSealedPayload) {
  TestServer& s = Start();
  v1::IssueCodeRequest request;
  request.set_recipient("Ada@Example.com");
  request.set_purpose("password_reset");
  (*request.mutable_template_values())["app_name"] = "<b>Acme</b>";
  ASSERT_TRUE(s.Issue(request).ok());

  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  ASSERT_EQ(s.provider().sent_count(), 1u);
  const providers::Message mail = s.provider().sent()[0];
  EXPECT_EQ(mail.to_address, "Ada@Example.com");
  EXPECT_EQ(mail.from_address, s.config().mail.from_address);
  EXPECT_THAT(mail.text, HasSubstr("<b>Acme</b>"));
  EXPECT_THAT(mail.html, HasSubstr("&lt;b&gt;Acme&lt;/b&gt;"));
  EXPECT_THAT(mail.html, ::testing::Not(HasSubstr("<b>Acme</b>")));
  EXPECT_EQ(JobState(), "sent attempts=1 payload=false error=");
}

TEST_F(DeliveryWorkerTest, RetriesRetryableFailuresThenDelivers) {
  TestServer& s = Start();
  s.provider().FailNext(SendResult::Retryable("421 busy"), 2);
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());

  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  EXPECT_EQ(JobState(),
            "queued attempts=1 payload=true error=capture: 421 busy");
  // Backoff is at most backoff_max (50 ms in tests).
  absl::SleepFor(absl::Milliseconds(80));
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  absl::SleepFor(absl::Milliseconds(80));
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  EXPECT_EQ(s.provider().attempts().size(), 3u);
  EXPECT_EQ(s.provider().sent_count(), 1u);
  EXPECT_EQ(JobState(), "sent attempts=3 payload=false error=");
}

TEST_F(DeliveryWorkerTest, HonoursTheProvidersRetryAfter) {
  TestServer& s = Start();
  s.provider().FailNext(
      SendResult::Retryable("429 slow down", absl::Seconds(30)));
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  const double wait = std::stod(
      db_->Scalar("SELECT extract(epoch FROM next_attempt_at - now()) FROM "
                  "delivery_jobs"));
  EXPECT_GT(wait, 29);
  EXPECT_LE(wait, 30);
}

TEST_F(DeliveryWorkerTest, GivesUpAfterMaxAttempts) {
  TestServer& s = Start([](Config& c) { c.delivery.max_attempts = 2; });
  s.provider().FailNext(SendResult::Retryable("421 busy"), 5);
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  absl::SleepFor(absl::Milliseconds(80));
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  EXPECT_EQ(JobState(),
            "failed attempts=2 payload=false error=gave up after 2 "
            "attempts: capture: 421 busy");
  absl::SleepFor(absl::Milliseconds(80));
  EXPECT_EQ(*s.server().worker().RunOnce(), 0);
}

TEST_F(DeliveryWorkerTest, PermanentFailureIsNotRetried) {
  TestServer& s = Start();
  s.provider().FailNext(SendResult::Permanent("550 no such user"));
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  EXPECT_EQ(JobState(),
            "failed attempts=1 payload=false error=capture: 550 no such user");
  absl::SleepFor(absl::Milliseconds(80));
  EXPECT_EQ(*s.server().worker().RunOnce(), 0);
  EXPECT_EQ(s.provider().attempts().size(), 1u);
}

TEST_F(DeliveryWorkerTest, AbandonsAJobWhoseCodeExpired) {
  TestServer& s = Start([](Config& c) { c.codes.ttl = absl::Seconds(1); });
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  EXPECT_EQ(s.provider().attempts().size(), 0u);
  EXPECT_EQ(JobState(),
            "failed attempts=1 payload=false error=the code expired before "
            "it could be delivered");
}

TEST_F(DeliveryWorkerTest, PayloadUnderAnUnknownKeyFailsWithoutTheCode) {
  TestServer& s = Start();
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());
  db_->Query("UPDATE delivery_jobs SET payload_key_id = 'gone'");
  EXPECT_EQ(*s.server().worker().RunOnce(), 1);
  EXPECT_THAT(JobState(), HasSubstr("failed attempts=1 payload=false "
                                    "error=cannot open the payload"));
}

TEST_F(DeliveryWorkerTest, BackoffIsFullJitterUnderAnExponentialCeiling) {
  TestServer& s = Start([](Config& c) {
    c.delivery.backoff_base = absl::Seconds(1);
    c.delivery.backoff_max = absl::Seconds(10);
  });
  DeliveryWorker& w = s.server().worker();
  for (int attempt = 1; attempt <= 8; ++attempt) {
    const absl::Duration ceiling =
        std::min(absl::Seconds(1 << (attempt - 1)), absl::Seconds(10));
    absl::Duration longest;
    for (int i = 0; i < 200; ++i) {
      const absl::Duration d = w.Backoff(attempt, std::nullopt);
      EXPECT_GE(d, absl::ZeroDuration());
      EXPECT_LE(d, ceiling);
      longest = std::max(longest, d);
    }
    EXPECT_GT(longest, ceiling / 2) << "attempt " << attempt;
  }
  EXPECT_GE(w.Backoff(1, absl::Seconds(42)), absl::Seconds(42));
}

TEST_F(DeliveryWorkerTest, WorkerThreadsDeliverWithoutWaitingForAPoll) {
  Config config = TestConfig(db_->url());
  config.delivery.poll_interval = absl::Seconds(30);
  server_ = TestServer::Start(config);  // With its worker threads.
  ASSERT_NE(server_, nullptr);
  absl::SleepFor(absl::Milliseconds(200));  // Let the first poll pass.
  ASSERT_TRUE(server_->Issue("ada@example.com", "login").ok());
  EXPECT_TRUE(server_->provider().WaitForSent(1, absl::Seconds(5)))
      << "the issue should wake a worker at once, not after 30 s";
}

}  // namespace
}  // namespace authcode
