// The store's SQL functions, called directly: rate-window arithmetic, job
// claiming with leases, and fencing of stale workers.
#include "server/store.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using testing::TestDatabase;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    auto store = Store::Connect(db_->url(), 4);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->Migrate().ok());
  }

  IssueParams Params(const std::string& recipient) {
    static int n = 0;
    IssueParams p;
    p.tenant = "default";
    p.purpose = "login";
    p.recipient = recipient;
    p.code_id = absl::StrCat("00000000-0000-4000-8000-",
                             absl::Dec(++n, absl::kZeroPad12));
    p.hash = {"h1", std::string(32, 'x')};
    p.ttl = absl::Minutes(10);
    p.max_attempts = 5;
    p.windows = {{absl::Seconds(60), 100}};
    p.payload = "sealed";
    p.payload_key_id = "o1";
    p.job_max_attempts = 3;
    return p;
  }

  // Seconds from `now` to the earliest next issue, per the SQL function.
  double FreeIn(const std::string& recent_offsets_s, const std::string& windows,
                const std::string& limits) {
    return std::stod(db_->Scalar(absl::StrCat(
        "SELECT extract(epoch FROM authcode_window_free_at(ARRAY(SELECT "
        "'2026-01-01 00:00:00+00'::timestamptz + make_interval(secs => s) "
        "FROM unnest('",
        recent_offsets_s, "'::float8[]) AS s ORDER BY s), '", windows,
        "'::interval[], '", limits,
        "'::integer[], '2026-01-01 00:01:00+00') - "
        "'2026-01-01 00:01:00+00'::timestamptz)")));
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, WindowArithmetic) {
  // Issues at 0 s, 30 s and 50 s; "now" is 60 s.
  EXPECT_DOUBLE_EQ(FreeIn("{}", "{60s}", "{1}"), 0);
  EXPECT_DOUBLE_EQ(FreeIn("{50}", "{60s}", "{1}"), 50);
  EXPECT_DOUBLE_EQ(FreeIn("{0,30,50}", "{60s}", "{3}"), 0);
  EXPECT_DOUBLE_EQ(FreeIn("{0,30,50}", "{61s}", "{3}"), 1);
  EXPECT_DOUBLE_EQ(FreeIn("{0,30,50}", "{60s}", "{2}"), 30);
  EXPECT_DOUBLE_EQ(FreeIn("{0,30,50}", "{60s}", "{4}"), 0);
  // The issue at 0 s has just left a 60 s window.
  EXPECT_DOUBLE_EQ(FreeIn("{0}", "{60s}", "{1}"), 0);
  // The tightest of several windows wins.
  EXPECT_DOUBLE_EQ(FreeIn("{0,30,50}", "{20s,1h}", "{1,3}"), 3600 - 60);
}

TEST_F(StoreTest, IssueReportsRateLimitWithDatabaseTime) {
  IssueParams p = Params("ada@example.com");
  p.windows = {{absl::Seconds(60), 1}};
  auto first = store_->Issue(p);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, IssueResult::Status::kIssued);
  p.code_id = Params("x").code_id;
  auto second = store_->Issue(p);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, IssueResult::Status::kRateLimited);
  const absl::Duration wait = second->retry_at - second->now;
  EXPECT_GT(wait, absl::Seconds(59));
  EXPECT_LE(wait, absl::Seconds(60));
}

TEST_F(StoreTest, ClaimLeasesJobsAndReclaimsExpiredLeases) {
  ASSERT_TRUE(store_->Issue(Params("a@example.com")).ok());
  ASSERT_TRUE(store_->Issue(Params("b@example.com")).ok());

  auto claimed = store_->ClaimJobs(10, absl::Milliseconds(300));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 2u);
  EXPECT_EQ((*claimed)[0].attempt, 1);
  EXPECT_EQ((*claimed)[0].payload, "sealed");
  EXPECT_FALSE((*claimed)[0].expired);

  // Leased: nobody else gets them.
  EXPECT_TRUE(store_->ClaimJobs(10, absl::Seconds(30))->empty());

  // The lease runs out (the worker died): another claim takes them over.
  absl::SleepFor(absl::Milliseconds(400));
  auto again = store_->ClaimJobs(10, absl::Seconds(30));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].attempt, 2);

  // The first worker's late report is fenced off; the second one's counts.
  JobOutcome sent{JobOutcome::Kind::kSent, "capture", "m-1", "", {}};
  EXPECT_FALSE(*store_->FinishJob((*claimed)[0], sent));
  EXPECT_TRUE(*store_->FinishJob((*again)[0], sent));
  EXPECT_EQ(db_->Scalar(absl::StrCat(
                "SELECT state || ' ' || provider_message_id || ' ' || "
                "(payload IS NULL)::text FROM delivery_jobs WHERE id = ",
                (*again)[0].id)),
            "sent m-1 true");
}

TEST_F(StoreTest, RetryReschedulesAndReleaseDoesNotCountAnAttempt) {
  ASSERT_TRUE(store_->Issue(Params("a@example.com")).ok());
  auto claimed = store_->ClaimJobs(1, absl::Seconds(30));
  ASSERT_EQ(claimed->size(), 1u);
  JobOutcome retry{JobOutcome::Kind::kRetry, "capture", "", "451 try later",
                   absl::Milliseconds(300)};
  ASSERT_TRUE(*store_->FinishJob((*claimed)[0], retry));
  EXPECT_TRUE(store_->ClaimJobs(1, absl::Seconds(30))->empty())
      << "a retried job must wait for its backoff";
  absl::SleepFor(absl::Milliseconds(350));
  auto second = store_->ClaimJobs(1, absl::Seconds(30));
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].attempt, 2);

  JobOutcome release{JobOutcome::Kind::kRelease, "", "", "", {}};
  ASSERT_TRUE(*store_->FinishJob((*second)[0], release));
  auto third = store_->ClaimJobs(1, absl::Seconds(30));
  ASSERT_EQ(third->size(), 1u);
  EXPECT_EQ((*third)[0].attempt, 2) << "a release gives the attempt back";
  EXPECT_EQ(db_->Scalar("SELECT last_error FROM delivery_jobs"),
            "451 try later");
}

TEST_F(StoreTest, OutboxCountsQueuedAndSendingJobsAndTheOldestAge) {
  const absl::StatusOr<OutboxStats> empty = store_->ReadOutbox();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->queued, 0);
  EXPECT_EQ(empty->sending, 0);
  EXPECT_EQ(empty->oldest_queued_age, absl::ZeroDuration());

  ASSERT_TRUE(store_->Issue(Params("a@example.com")).ok());
  ASSERT_TRUE(store_->Issue(Params("b@example.com")).ok());
  ASSERT_TRUE(store_->Issue(Params("c@example.com")).ok());
  ASSERT_EQ(db_->Scalar("UPDATE delivery_jobs SET created_at = now() - "
                        "interval '90 seconds' WHERE id = (SELECT min(id) "
                        "FROM delivery_jobs) RETURNING 1"),
            "1");
  auto claimed = store_->ClaimJobs(1, absl::Seconds(30));
  ASSERT_EQ(claimed->size(), 1u);
  const absl::StatusOr<OutboxStats> busy = store_->ReadOutbox();
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_EQ(busy->queued, 2);
  EXPECT_EQ(busy->sending, 1);
  // The claim took the backdated job (it was due first): the oldest
  // queued one is a few moments old.
  EXPECT_GT(busy->oldest_queued_age, absl::ZeroDuration());
  EXPECT_LT(busy->oldest_queued_age, absl::Seconds(60));

  // The claim says how long the job was queued, by the database's clock.
  const absl::Duration queued_for = (*claimed)[0].queued_for;
  EXPECT_GE(queued_for, absl::Seconds(90));
  EXPECT_LT(queued_for, absl::Seconds(150));
  JobOutcome sent{JobOutcome::Kind::kSent, "capture", "m-1", "", {}};
  ASSERT_TRUE(*store_->FinishJob((*claimed)[0], sent));
  EXPECT_EQ(store_->ReadOutbox()->sending, 0);
}

TEST_F(StoreTest, PoolUseCountsBorrowedAndIdleConnections) {
  const Store::PoolUse rpc = store_->RpcPoolUse();
  EXPECT_EQ(rpc.size, 4);
  EXPECT_EQ(rpc.in_use, 0);
  EXPECT_GE(rpc.idle, 1) << "Connect() and Migrate() left one open";
  EXPECT_EQ(rpc.waiting, 0);
  const Store::PoolUse background = store_->BackgroundPoolUse();
  EXPECT_EQ(background.size, 1);
  EXPECT_EQ(background.in_use, 0);
}

TEST_F(StoreTest, FailedJobLosesItsPayload) {
  ASSERT_TRUE(store_->Issue(Params("a@example.com")).ok());
  auto claimed = store_->ClaimJobs(1, absl::Seconds(30));
  ASSERT_EQ(claimed->size(), 1u);
  JobOutcome failed{
      JobOutcome::Kind::kFailed, "capture", "", "550 no such user", {}};
  ASSERT_TRUE(*store_->FinishJob((*claimed)[0], failed));
  EXPECT_EQ(db_->Scalar("SELECT state || ' ' || (payload IS NULL)::text || "
                        "' ' || last_error FROM delivery_jobs"),
            "failed true 550 no such user");
}

TEST_F(StoreTest, ExpiredJobIsFlaggedAtClaim) {
  IssueParams p = Params("a@example.com");
  p.ttl = absl::Milliseconds(100);
  ASSERT_TRUE(store_->Issue(p).ok());
  absl::SleepFor(absl::Milliseconds(200));
  auto claimed = store_->ClaimJobs(1, absl::Seconds(30));
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_TRUE((*claimed)[0].expired);
}

TEST_F(StoreTest, ReissueSupersedesTheUnsentJob) {
  ASSERT_TRUE(store_->Issue(Params("a@example.com")).ok());
  ASSERT_TRUE(store_->Issue(Params("a@example.com")).ok());
  EXPECT_EQ(db_->Scalar("SELECT string_agg(state || '/' || "
                        "(payload IS NULL)::text, ',' ORDER BY id) "
                        "FROM delivery_jobs"),
            "superseded/true,queued/false");
  auto claimed = store_->ClaimJobs(10, absl::Seconds(30));
  EXPECT_EQ(claimed->size(), 1u);
}

TEST_F(StoreTest, AnIssueWakesListenersHereAtOnceAndElsewhereCoalesced) {
  auto other = Store::Connect(db_->url(), 1);
  ASSERT_TRUE(other.ok()) << other.status();
  std::atomic<int> here{0}, elsewhere{0};
  auto listener = store_->ListenForJobs([&] { ++here; });
  auto other_listener = (*other)->ListenForJobs([&] { ++elsewhere; });
  // Each listener calls once when its connection opens.
  absl::SleepFor(absl::Milliseconds(500));
  const int here_before = here, elsewhere_before = elsewhere;

  ASSERT_TRUE(store_->Issue(Params("a@example.com")).ok());
  EXPECT_EQ(here, here_before + 1) << "called before Issue() returned";
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (elsewhere == elsewhere_before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(elsewhere, elsewhere_before + 1) << "told through NOTIFY";

  // A burst: every issue wakes this process's listener once, and its own
  // NOTIFYs do not wake it again; the other process hears of the burst
  // in a few notifications, not in one per job.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(
        store_->Issue(Params(absl::StrCat("b", i, "@example.com"))).ok());
  }
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(here, here_before + 201);
  EXPECT_GE(elsewhere, elsewhere_before + 2);
  EXPECT_LT(elsewhere, elsewhere_before + 100);

  // A refused issue queued nothing and wakes no one.
  IssueParams limited = Params("c@example.com");
  limited.windows = {{absl::Seconds(60), 1}};
  ASSERT_TRUE(store_->Issue(limited).ok());
  limited.code_id = Params("x").code_id;
  auto refused = store_->Issue(limited);
  ASSERT_TRUE(refused.ok());
  ASSERT_EQ(refused->status, IssueResult::Status::kRateLimited);
  EXPECT_EQ(here, here_before + 202);
}

}  // namespace
}  // namespace authcode
