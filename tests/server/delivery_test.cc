// The delivery engine through the whole server: provider chains with
// failover, circuit breakers and quotas, per-purpose routes, idempotent
// issuing, delivery status, several servers sharing the work, and stops.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"
#include "tests/support/test_server.h"

namespace authcode {
namespace {

using providers::SendResult;
using testing::CapturingProvider;
using ::testing::HasSubstr;
using testing::TestConfig;
using testing::TestDatabase;
using testing::TestServer;

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = TestDatabase::Create(); }

  Config BaseConfig() {
    Config config = TestConfig(db_->url());
    config.limits.issue = {{absl::Seconds(60), 1000}};
    return config;
  }

  std::unique_ptr<TestServer> Start(const Config& config,
                                    bool start_worker = true) {
    auto server = TestServer::Start(config, start_worker);
    EXPECT_NE(server, nullptr);
    return server;
  }

  // Issues for `recipient` and returns the code id.
  static std::string IssueId(TestServer& s, const std::string& recipient,
                             const std::string& purpose = "login") {
    v1::IssueCodeResponse response;
    grpc::Status status = s.Issue(recipient, purpose, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.code_id();
  }

  static v1::GetDeliveryResponse Status(TestServer& s,
                                        const std::string& code_id,
                                        grpc::Status* rpc = nullptr) {
    grpc::ClientContext context;
    v1::GetDeliveryRequest request;
    request.set_code_id(code_id);
    v1::GetDeliveryResponse response;
    grpc::Status status = s.stub().GetDelivery(&context, request, &response);
    if (rpc != nullptr) *rpc = status;
    return response;
  }

  // Waits until the delivery of `code_id` is final.
  static v1::GetDeliveryResponse WaitFinal(TestServer& s,
                                           const std::string& code_id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    v1::GetDeliveryResponse r;
    while (absl::Now() < deadline) {
      r = Status(s, code_id);
      if (r.state() == v1::DELIVERY_STATE_SENT ||
          r.state() == v1::DELIVERY_STATE_FAILED) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return r;
  }

  std::unique_ptr<TestDatabase> db_;
};

TEST_F(DeliveryTest, FailsOverToTheNextProviderAtOnce) {
  Config config = BaseConfig();
  config.delivery.chain = {"primary", "capture"};
  auto s = Start(config);
  s->provider("primary").FailNext(SendResult::Retryable("503 unavailable"));

  const std::string id = IssueId(*s, "ada@example.com");
  const v1::GetDeliveryResponse r = WaitFinal(*s, id);
  EXPECT_EQ(r.state(), v1::DELIVERY_STATE_SENT);
  EXPECT_EQ(r.attempts(), 1) << "failover happens within one attempt";
  EXPECT_EQ(r.provider(), "capture");
  EXPECT_EQ(r.provider_message_id(), "capture-1");
  EXPECT_EQ(s->provider("primary").attempts().size(), 1u);
  EXPECT_EQ(s->provider("capture").sent_count(), 1u);

  // The next mail goes to the primary again: one failure opens nothing.
  IssueId(*s, "bob@example.com");
  ASSERT_TRUE(s->provider("primary").WaitForSent(1, absl::Seconds(5)));
}

TEST_F(DeliveryTest, PermanentFailureDoesNotFailOver) {
  Config config = BaseConfig();
  config.delivery.chain = {"primary", "capture"};
  auto s = Start(config);
  s->provider("primary").FailNext(SendResult::Permanent("550 no such user"));
  const std::string id = IssueId(*s, "ada@example.com");
  const v1::GetDeliveryResponse r = WaitFinal(*s, id);
  EXPECT_EQ(r.state(), v1::DELIVERY_STATE_FAILED);
  EXPECT_EQ(r.provider(), "primary");
  EXPECT_EQ(r.last_error(), "primary: 550 no such user");
  EXPECT_EQ(s->provider("capture").attempts().size(), 0u);
}

TEST_F(DeliveryTest, WholeChainFailingIsRetriedWithBackoff) {
  Config config = BaseConfig();
  config.delivery.chain = {"primary", "capture"};
  auto s = Start(config);
  s->provider("primary").FailNext(SendResult::Retryable("421 busy"), 1);
  s->provider("capture").FailNext(SendResult::Retryable("451 later"), 1);
  const std::string id = IssueId(*s, "ada@example.com");
  const v1::GetDeliveryResponse r = WaitFinal(*s, id);
  EXPECT_EQ(r.state(), v1::DELIVERY_STATE_SENT);
  EXPECT_EQ(r.attempts(), 2);
  EXPECT_EQ(r.provider(), "primary");
}

TEST_F(DeliveryTest, BreakerSkipsAFailingProviderThenTriesItAgain) {
  Config config = BaseConfig();
  config.delivery.chain = {"primary", "capture"};
  config.delivery.breaker_failures = 2;
  config.delivery.breaker_cooldown = absl::Milliseconds(600);
  auto s = Start(config);
  CapturingProvider& primary = s->provider("primary");
  primary.FailNext(SendResult::Retryable("503 down"), 2);

  for (int i = 0; i < 2; ++i) {
    WaitFinal(*s, IssueId(*s, absl::StrCat("a", i, "@example.com")));
  }
  ASSERT_EQ(primary.attempts().size(), 2u);
  // Open: the next mails go straight to the second provider.
  for (int i = 0; i < 3; ++i) {
    const v1::GetDeliveryResponse r =
        WaitFinal(*s, IssueId(*s, absl::StrCat("b", i, "@example.com")));
    EXPECT_EQ(r.provider(), "capture");
  }
  EXPECT_EQ(primary.attempts().size(), 2u) << "skipped while open";

  // After the cooldown one trial goes to the primary; it works, so the
  // breaker closes.
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_EQ(WaitFinal(*s, IssueId(*s, "c0@example.com")).provider(), "primary");
  EXPECT_EQ(WaitFinal(*s, IssueId(*s, "c1@example.com")).provider(), "primary");
}

TEST_F(DeliveryTest, SpentQuotaMovesTrafficToTheNextProvider) {
  Config config = BaseConfig();
  config.delivery.chain = {"gmail", "capture"};
  Config::Provider gmail;
  gmail.type = "gmail";
  gmail.quota = 3;
  gmail.quota_window = absl::Hours(24);
  config.providers["gmail"] = gmail;
  auto s = Start(config);
  std::vector<std::string> used;
  for (int i = 0; i < 5; ++i) {
    used.push_back(
        WaitFinal(*s, IssueId(*s, absl::StrCat("u", i, "@example.com")))
            .provider());
  }
  EXPECT_THAT(used, ::testing::ElementsAre("gmail", "gmail", "gmail", "capture",
                                           "capture"));
  EXPECT_EQ(db_->Scalar("SELECT used FROM provider_quota WHERE provider = "
                        "'gmail'"),
            "3");
}

TEST_F(DeliveryTest, QuotaHoldsAcrossServers) {
  Config config = BaseConfig();
  config.delivery.chain = {"gmail", "capture"};
  Config::Provider gmail;
  gmail.type = "gmail";
  gmail.quota = 10;
  config.providers["gmail"] = gmail;
  auto a = Start(config);
  auto b = Start(config);
  for (int i = 0; i < 40; ++i) {
    IssueId(i % 2 == 0 ? *a : *b, absl::StrCat("u", i, "@example.com"));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline &&
         db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state = "
                     "'sent'") != "40") {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(
      a->provider("gmail").sent_count() + b->provider("gmail").sent_count(),
      10u);
  EXPECT_EQ(
      a->provider("capture").sent_count() + b->provider("capture").sent_count(),
      30u);
}

TEST_F(DeliveryTest, RoutesSendAPurposeThroughItsOwnChain) {
  Config config = BaseConfig();
  config.delivery.chain = {"capture"};
  config.delivery.routes["password_reset"] = {"secure"};
  auto s = Start(config);
  EXPECT_EQ(WaitFinal(*s, IssueId(*s, "ada@example.com", "password_reset"))
                .provider(),
            "secure");
  EXPECT_EQ(WaitFinal(*s, IssueId(*s, "ada@example.com", "login")).provider(),
            "capture");
}

TEST_F(DeliveryTest, GetDeliveryReportsQueuedRetryAndFailure) {
  Config config = BaseConfig();
  auto s = Start(config, /*start_worker=*/false);
  s->provider().FailNext(SendResult::Retryable("421 busy"));
  s->provider().FailNext(SendResult::Permanent("550 mailbox unavailable"));
  const std::string id = IssueId(*s, "ada@example.com");

  v1::GetDeliveryResponse r = Status(*s, id);
  EXPECT_EQ(r.state(), v1::DELIVERY_STATE_QUEUED);
  EXPECT_EQ(r.attempts(), 0);
  EXPECT_TRUE(r.has_created_at());
  EXPECT_TRUE(r.has_next_attempt_at());

  ASSERT_EQ(*s->server().worker().RunOnce(), 1);
  r = Status(*s, id);
  EXPECT_EQ(r.state(), v1::DELIVERY_STATE_QUEUED);
  EXPECT_EQ(r.attempts(), 1);
  EXPECT_EQ(r.last_error(), "capture: 421 busy");

  absl::SleepFor(absl::Milliseconds(80));
  ASSERT_EQ(*s->server().worker().RunOnce(), 1);
  r = Status(*s, id);
  EXPECT_EQ(r.state(), v1::DELIVERY_STATE_FAILED);
  EXPECT_EQ(r.attempts(), 2);
  EXPECT_EQ(r.last_error(), "capture: 550 mailbox unavailable");
  EXPECT_FALSE(r.has_next_attempt_at());
}

TEST_F(DeliveryTest, GetDeliveryNeverShowsTheCode) {
  auto s = Start(BaseConfig());
  v1::IssueCodeResponse issued;
  ASSERT_TRUE(s->Issue("ada@example.com", "login", &issued).ok());
  ASSERT_TRUE(s->provider().WaitForSent(1, absl::Seconds(5)));
  const std::string code = *s->provider().LastCodeFor("ada@example.com");
  const v1::GetDeliveryResponse r = WaitFinal(*s, issued.code_id());
  EXPECT_EQ(r.state(), v1::DELIVERY_STATE_SENT);
  std::string wire;
  r.SerializeToString(&wire);
  EXPECT_EQ(wire.find(code), std::string::npos);
  EXPECT_THAT(r.DebugString(), ::testing::Not(HasSubstr(code)));
}

TEST_F(DeliveryTest, GetDeliveryOfSupersededUnknownAndMalformedIds) {
  auto s = Start(BaseConfig(), /*start_worker=*/false);
  const std::string first = IssueId(*s, "ada@example.com");
  IssueId(*s, "ada@example.com");
  EXPECT_EQ(Status(*s, first).state(), v1::DELIVERY_STATE_SUPERSEDED);

  grpc::Status rpc;
  Status(*s, "00000000-0000-4000-8000-000000000000", &rpc);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::NOT_FOUND);
  Status(*s, "not-a-uuid'; DROP TABLE codes; --", &rpc);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto details = testing::BadRequestOf(rpc);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->field_violations(0).field(), "code_id");
}

TEST_F(DeliveryTest, IdempotentRetryGetsTheFirstAnswerAndSendsNothing) {
  auto s = Start(BaseConfig());
  v1::IssueCodeRequest request;
  request.set_recipient("ada@example.com");
  request.set_purpose("login");
  request.set_idempotency_key("9f2c1c9e-retry-key");
  v1::IssueCodeResponse first, second;
  ASSERT_TRUE(s->Issue(request, &first).ok());
  ASSERT_TRUE(s->Issue(request, &second).ok())
      << "a retry is neither rate-limited nor refused";
  EXPECT_EQ(second.code_id(), first.code_id());
  EXPECT_EQ(second.expires_at().seconds(), first.expires_at().seconds());
  EXPECT_EQ(second.resend_after().seconds(), first.resend_after().seconds());
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "1");
  EXPECT_EQ(db_->Scalar("SELECT cardinality(issued_at) FROM "
                        "recipient_limits"),
            "1");

  // The same key for another request is refused, naming the key.
  request.set_recipient("bob@example.com");
  grpc::Status reused = s->Issue(request);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto details = testing::BadRequestOf(reused);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->field_violations(0).field(), "idempotency_key");
  request.set_recipient("ada@example.com");
  (*request.mutable_template_values())["app_name"] = "Other";
  EXPECT_EQ(s->Issue(request).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "1");
}

TEST_F(DeliveryTest, IdempotencyKeyLivesAsLongAsTheCode) {
  Config config = BaseConfig();
  config.codes.ttl = absl::Seconds(1);
  auto s = Start(config);
  v1::IssueCodeRequest request;
  request.set_recipient("ada@example.com");
  request.set_purpose("login");
  request.set_idempotency_key("short-lived");
  v1::IssueCodeResponse first, later;
  ASSERT_TRUE(s->Issue(request, &first).ok());
  absl::SleepFor(absl::Milliseconds(1200));
  ASSERT_TRUE(s->Issue(request, &later).ok());
  EXPECT_NE(later.code_id(), first.code_id()) << "an expired key is fresh";
}

TEST_F(DeliveryTest, ParallelCallsWithOneKeyIssueOnce) {
  auto s = Start(BaseConfig());
  for (int round = 0; round < 5; ++round) {
    v1::IssueCodeRequest request;
    request.set_recipient(absl::StrCat("r", round, "@example.com"));
    request.set_purpose("login");
    request.set_idempotency_key(absl::StrCat("key-", round));
    std::mutex mu;
    std::set<std::string> ids;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&] {
        v1::IssueCodeResponse response;
        if (s->Issue(request, &response).ok()) {
          ++ok;
          std::lock_guard<std::mutex> lock(mu);
          ids.insert(response.code_id());
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 8);
    EXPECT_EQ(ids.size(), 1u) << "round " << round;
  }
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "5");
}

TEST_F(DeliveryTest, ParallelReuseOfOneKeyForTwoRecipientsIssuesOnce) {
  auto s = Start(BaseConfig());
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      v1::IssueCodeRequest request;
      request.set_recipient(absl::StrCat("p", i % 2, "@example.com"));
      request.set_purpose("login");
      request.set_idempotency_key("contested");
      grpc::Status status = s->Issue(request);
      if (status.ok()) ++ok;
      if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok + refused, 8);
  EXPECT_GE(ok, 1);
  // Only one recipient ever got a code; every call for the other was
  // refused, and nothing of theirs was kept.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes"), "1");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "1");
}

TEST_F(DeliveryTest, RejectsAMalformedIdempotencyKey) {
  auto s = Start(BaseConfig());
  for (const std::string& key :
       {std::string(129, 'k'), std::string("has space"),
        std::string("line\nbreak"), std::string("nul\0x", 5)}) {
    v1::IssueCodeRequest request;
    request.set_recipient("ada@example.com");
    request.set_purpose("login");
    request.set_idempotency_key(key);
    grpc::Status status = s->Issue(request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    auto details = testing::BadRequestOf(status);
    ASSERT_TRUE(details.has_value());
    EXPECT_EQ(details->field_violations(0).field(), "idempotency_key");
  }
}

TEST_F(DeliveryTest, TwoServersDeliverAThousandJobsExactlyOnce) {
  Config config = BaseConfig();
  config.delivery.workers = 2;
  auto a = Start(config);
  auto b = Start(config);
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      for (int i = t; i < 1000; i += 8) {
        IssueId(i % 2 == 0 ? *a : *b, absl::StrCat("m", i, "@example.com"));
      }
    });
  }
  for (auto& t : callers) t.join();

  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline &&
         a->provider().sent_count() + b->provider().sent_count() < 1000) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Milliseconds(200));  // Would-be duplicates land.
  std::multiset<std::string> delivered;
  for (TestServer* s : {a.get(), b.get()}) {
    for (const auto& m : s->provider().sent()) delivered.insert(m.delivery_id);
  }
  std::set<std::string> distinct(delivered.begin(), delivered.end());
  EXPECT_EQ(delivered.size(), 1000u) << "no duplicate";
  EXPECT_EQ(distinct.size(), 1000u) << "no loss";
  EXPECT_GT(a->provider().sent_count(), 0u);
  EXPECT_GT(b->provider().sent_count(), 0u) << "both servers share the work";
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state = "
                        "'sent' AND payload IS NULL"),
            "1000");
}

TEST_F(DeliveryTest, JobQueuedOnOneServerWakesAWorkerOnAnother) {
  Config config = BaseConfig();
  // Polling alone would take 30 s; only a notification is this fast.
  config.delivery.poll_interval = absl::Seconds(30);
  auto issuer = Start(config, /*start_worker=*/false);
  auto sender = Start(config);
  absl::SleepFor(absl::Milliseconds(300));  // Past the first poll.
  const absl::Time start = absl::Now();
  IssueId(*issuer, "ada@example.com");
  ASSERT_TRUE(sender->provider().WaitForSent(1, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(DeliveryTest, ShutdownUnderLoadCompletesInFlightRpcs) {
  Config config = BaseConfig();
  config.server.shutdown_grace = absl::Seconds(5);
  auto s = Start(config);
  std::atomic<bool> stop{false};
  // A call the server had not yet taken up when it stopped is refused
  // (UNAVAILABLE, or CANCELLED when the connection closed under it) and
  // must have done nothing; a call it had taken up must complete.
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 16; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        grpc::Status status =
            s->Issue(absl::StrCat("g", t, "-", i, "@example.com"), "login");
        if (status.ok()) {
          ++ok;
        } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                   status.error_code() == grpc::StatusCode::CANCELLED) {
          ++refused;
          return;
        } else {
          ++other;
          ADD_FAILURE() << status.error_code() << " " << status.error_message();
          return;
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_TRUE(s->server().Shutdown());
  stop = true;
  for (auto& t : callers) t.join();

  EXPECT_GT(ok, 0);
  EXPECT_EQ(other, 0);
  // Every call that succeeded has its job; none is left claimed.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"),
            absl::StrCat(ok.load()));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state = "
                        "'sending'"),
            "0");
}

TEST_F(DeliveryTest, ShutdownGivesUpOnASendThatOutlivesTheGrace) {
  Config config = BaseConfig();
  config.server.shutdown_grace = absl::Milliseconds(300);
  auto s = Start(config);
  s->provider().HangNext(absl::Seconds(2));
  IssueId(*s, "ada@example.com");
  absl::SleepFor(absl::Milliseconds(200));  // The send is under way.
  const absl::Time start = absl::Now();
  EXPECT_FALSE(s->server().Shutdown());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // The job stays leased; another worker takes it when the lease ends.
  EXPECT_EQ(db_->Scalar("SELECT state FROM delivery_jobs"), "sending");
  s.reset();
  absl::SleepFor(absl::Seconds(2));  // Let the stalled send finish.
}

}  // namespace
}  // namespace authcode
