// Callers and tenants over real gRPC calls: who may call, what each tenant
// may do, and that nothing one tenant does reaches another's codes,
// delivery status or limits. Per-IP limits and the tenant ceiling hold
// exactly under parallel calls, also across two servers on one database.
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/callers.h"
#include "tests/support/test_database.h"
#include "tests/support/test_server.h"

namespace authcode {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RetryDelayOf;
using testing::TestConfig;
using testing::TestDatabase;
using testing::TestServer;

constexpr char kAlphaToken[] = "ac_alpha-token-for-tests-0123456789";
constexpr char kBetaToken[] = "ac_beta-token-for-tests-0123456789";
constexpr char kBetaNextToken[] = "ac_beta-next-token-for-tests-987654";

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

// A tenant with [limits]' windows, as LoadConfig() would make it.
Config::Tenant Tenant(const Config& config,
                      const std::vector<std::string>& tokens) {
  Config::Tenant tenant;
  for (const std::string& token : tokens) {
    tenant.token_digests.push_back(TokenDigest(token));
  }
  tenant.issue = config.limits.issue;
  tenant.ip_issue = config.limits.ip_issue;
  tenant.ceiling = config.limits.ceiling;
  return tenant;
}

// Sets up a context for a call as the holder of `token` ("" for none).
void Prepare(grpc::ClientContext* context, const std::string& token) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  if (!token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
}

v1::IssueCodeRequest IssueRequest(const std::string& recipient,
                                  const std::string& purpose = "login",
                                  const std::string& client_ip = "") {
  v1::IssueCodeRequest request;
  request.set_recipient(recipient);
  request.set_purpose(purpose);
  request.set_client_ip(client_ip);
  return request;
}

class TenantsTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = TestDatabase::Create(); }

  // alpha (kAlphaToken) may use any purpose; beta (kBetaToken or
  // kBetaNextToken, as during a rotation) only "login".
  Config TwoTenants() {
    Config config = TestConfig(db_->url());
    config.database.pool_size = 16;
    config.limits.max_failures = 3;
    config.tenants["alpha"] = Tenant(config, {kAlphaToken});
    config.tenants["beta"] = Tenant(config, {kBetaToken, kBetaNextToken});
    config.tenants["beta"].purposes = {"login"};
    return config;
  }

  grpc::Status Issue(TestServer& server, const std::string& token,
                     const v1::IssueCodeRequest& request,
                     v1::IssueCodeResponse* response = nullptr) {
    grpc::ClientContext context;
    Prepare(&context, token);
    v1::IssueCodeResponse ignored;
    return server.stub().IssueCode(&context, request,
                                   response != nullptr ? response : &ignored);
  }

  v1::VerifyCodeResponse Verify(TestServer& server, const std::string& token,
                                const std::string& recipient,
                                const std::string& code,
                                grpc::Status* status = nullptr,
                                const std::string& purpose = "login") {
    v1::VerifyCodeRequest request;
    request.set_recipient(recipient);
    request.set_purpose(purpose);
    request.set_code(code);
    grpc::ClientContext context;
    Prepare(&context, token);
    v1::VerifyCodeResponse response;
    const grpc::Status s =
        server.stub().VerifyCode(&context, request, &response);
    if (status != nullptr) *status = s;
    return response;
  }

  grpc::Status GetDelivery(TestServer& server, const std::string& token,
                           const std::string& code_id) {
    v1::GetDeliveryRequest request;
    request.set_code_id(code_id);
    grpc::ClientContext context;
    Prepare(&context, token);
    v1::GetDeliveryResponse response;
    return server.stub().GetDelivery(&context, request, &response);
  }

  // Issues as `token` and returns the code the mail carried.
  std::string IssueAndReceive(TestServer& server, const std::string& token,
                              const std::string& recipient) {
    const size_t before = server.provider().sent_count();
    const grpc::Status s = Issue(server, token, IssueRequest(recipient));
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(server.provider().WaitForSent(before + 1, absl::Seconds(10)));
    return server.provider()
        .LastCodeFor(recipient, server.config().codes.length)
        .value_or("");
  }

  std::string Count(const std::string& table) {
    return db_->Scalar("SELECT count(*) FROM " + table);
  }

  std::unique_ptr<TestDatabase> db_;
};

TEST_F(TenantsTest, CallsWithoutGoodCredentialsAreUnauthenticated) {
  auto server = TestServer::Start(TwoTenants());
  ASSERT_NE(server, nullptr);

  const struct {
    const char* what;
    std::vector<std::string> authorization;
  } kCases[] = {
      {"no credentials", {}},
      {"an unknown token", {"Bearer ac_not-a-token-of-this-server"}},
      {"a token of the wrong scheme", {absl::StrCat("Basic ", kAlphaToken)}},
      {"a bare token", {kAlphaToken}},
      {"an empty bearer", {"Bearer "}},
      {"two authorization entries",
       {absl::StrCat("Bearer ", kAlphaToken),
        absl::StrCat("Bearer ", kBetaToken)}},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.what);
    const auto call = [&](auto rpc) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
      for (const std::string& value : c.authorization) {
        context.AddMetadata("authorization", value);
      }
      return rpc(&context);
    };
    const grpc::Status issued = call([&](grpc::ClientContext* ctx) {
      v1::IssueCodeResponse response;
      return server->stub().IssueCode(ctx, IssueRequest("ada@example.com"),
                                      &response);
    });
    EXPECT_EQ(issued.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(issued.error_message(), Not(HasSubstr("ac_")));

    const grpc::Status verified = call([&](grpc::ClientContext* ctx) {
      v1::VerifyCodeRequest request;
      request.set_recipient("ada@example.com");
      request.set_purpose("login");
      request.set_code("123456");
      v1::VerifyCodeResponse response;
      return server->stub().VerifyCode(ctx, request, &response);
    });
    EXPECT_EQ(verified.error_code(), grpc::StatusCode::UNAUTHENTICATED);

    const grpc::Status delivery = call([&](grpc::ClientContext* ctx) {
      v1::GetDeliveryRequest request;
      request.set_code_id("00000000-0000-4000-8000-000000000000");
      v1::GetDeliveryResponse response;
      return server->stub().GetDelivery(ctx, request, &response);
    });
    EXPECT_EQ(delivery.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Count("codes"), "0");
  EXPECT_EQ(Count("recipient_limits"), "0");
  EXPECT_EQ(Count("delivery_jobs"), "0");
}

TEST_F(TenantsTest, TheSchemeIsCaseInsensitiveAndTheTenantIsTheTokens) {
  auto server = TestServer::Start(TwoTenants());
  ASSERT_NE(server, nullptr);
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("bearer ", kAlphaToken));
  v1::IssueCodeResponse response;
  const grpc::Status s = server->stub().IssueCode(
      &context, IssueRequest("ada@example.com"), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(db_->Scalar("SELECT tenant FROM codes"), "alpha");
  EXPECT_EQ(db_->Scalar("SELECT tenant FROM delivery_jobs"), "alpha");
}

TEST_F(TenantsTest, AnotherTenantCannotVerifyOrWearDownACode) {
  auto server = TestServer::Start(TwoTenants());
  ASSERT_NE(server, nullptr);
  const std::string code =
      IssueAndReceive(*server, kAlphaToken, "ada@example.com");
  ASSERT_FALSE(code.empty());

  // beta holds alpha's code for the same recipient and purpose: it is not
  // beta's code.
  grpc::Status status;
  EXPECT_EQ(
      Verify(*server, kBetaToken, "ada@example.com", code, &status).outcome(),
      v1::VERIFY_OUTCOME_NO_ACTIVE_CODE)
      << status.error_message();
  // beta's failures lock only beta's (tenant, purpose, recipient).
  for (int i = 0; i < 5; ++i) {
    Verify(*server, kBetaToken, "ada@example.com", "000000");
  }
  EXPECT_EQ(
      db_->Scalar("SELECT attempts_left FROM codes WHERE tenant = 'alpha'"),
      absl::StrCat(server->config().codes.max_attempts));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM recipient_limits "
                        "WHERE tenant = 'alpha' AND locked_until IS NOT NULL"),
            "0");

  EXPECT_EQ(Verify(*server, kAlphaToken, "ada@example.com", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

TEST_F(TenantsTest, AnotherTenantCannotSeeADelivery) {
  auto server = TestServer::Start(TwoTenants());
  ASSERT_NE(server, nullptr);
  v1::IssueCodeResponse issued;
  ASSERT_TRUE(
      Issue(*server, kAlphaToken, IssueRequest("ada@example.com"), &issued)
          .ok());

  EXPECT_TRUE(GetDelivery(*server, kAlphaToken, issued.code_id()).ok());
  const grpc::Status other = GetDelivery(*server, kBetaToken, issued.code_id());
  // Exactly what a code id that never existed gets: nothing to learn.
  const std::string unknown = "00000000-0000-4000-8000-000000000000";
  const grpc::Status never = GetDelivery(*server, kBetaToken, unknown);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(never.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(other.error_message(),
            absl::StrCat("no delivery for code_id ", issued.code_id()));
  EXPECT_EQ(never.error_message(),
            absl::StrCat("no delivery for code_id ", unknown));
}

TEST_F(TenantsTest, AnotherTenantCannotExhaustLimits) {
  Config config = TwoTenants();
  config.tenants["beta"].ip_issue = {{absl::Hours(1), 3}};
  auto server = TestServer::Start(config);
  ASSERT_NE(server, nullptr);

  // beta uses up its recipient window for ada and its IP window for
  // 192.0.2.7, and locks ada out by failed guesses.
  ASSERT_TRUE(Issue(*server, kBetaToken,
                    IssueRequest("ada@example.com", "login", "192.0.2.7"))
                  .ok());
  EXPECT_EQ(Issue(*server, kBetaToken,
                  IssueRequest("ada@example.com", "login", "192.0.2.7"))
                .error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Issue(*server, kBetaToken,
                      IssueRequest(absl::StrCat("u", i, "@example.com"),
                                   "login", "192.0.2.7"))
                    .ok());
  }
  EXPECT_EQ(Issue(*server, kBetaToken,
                  IssueRequest("zed@example.com", "login", "192.0.2.7"))
                .error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  for (int i = 0; i < 3; ++i) {
    Verify(*server, kBetaToken, "ada@example.com", "000000");
  }
  EXPECT_EQ(Verify(*server, kBetaToken, "ada@example.com", "000000").outcome(),
            v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS);

  // alpha's calls for the same recipient from the same IP go through
  // (once beta's three mails are out, so that the last mail to ada is
  // alpha's).
  ASSERT_TRUE(server->provider().WaitForSent(3, absl::Seconds(10)));
  const std::string code =
      IssueAndReceive(*server, kAlphaToken, "ada@example.com");
  ASSERT_FALSE(code.empty());
  EXPECT_TRUE(Issue(*server, kAlphaToken,
                    IssueRequest("zed@example.com", "login", "192.0.2.7"))
                  .ok());
  EXPECT_EQ(Verify(*server, kAlphaToken, "ada@example.com", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

TEST_F(TenantsTest, APurposeOutsideTheTenantsPolicyIsPermissionDenied) {
  auto server = TestServer::Start(TwoTenants());
  ASSERT_NE(server, nullptr);

  const grpc::Status issued =
      Issue(*server, kBetaToken, IssueRequest("ada@example.com", "signup"));
  EXPECT_EQ(issued.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(issued.error_message(), HasSubstr("tenants.beta.purposes"));
  grpc::Status verified;
  Verify(*server, kBetaToken, "ada@example.com", "123456", &verified, "signup");
  EXPECT_EQ(verified.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Count("codes"), "0");
  EXPECT_EQ(Count("recipient_limits"), "0");

  // alpha has no list: any purpose.
  EXPECT_TRUE(
      Issue(*server, kAlphaToken, IssueRequest("ada@example.com", "signup"))
          .ok());
}

TEST_F(TenantsTest, EitherTokenOfARotationActsAsTheSameTenant) {
  auto server = TestServer::Start(TwoTenants());
  ASSERT_NE(server, nullptr);
  const std::string code =
      IssueAndReceive(*server, kBetaToken, "ada@example.com");
  ASSERT_FALSE(code.empty());
  EXPECT_EQ(Verify(*server, kBetaNextToken, "ada@example.com", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

// Outcomes of parallel issues: how many went through, and the first
// refusal (all others must be refusals too).
struct Tally {
  int ok = 0;
  int exhausted = 0;
  int other = 0;
  grpc::Status refusal;
};

class ParallelIssues {
 public:
  void Record(const grpc::Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (s.ok()) {
      ++tally_.ok;
    } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      if (tally_.exhausted++ == 0) tally_.refusal = s;
    } else {
      ++tally_.other;
    }
  }
  Tally tally() {
    std::lock_guard<std::mutex> lock(mu_);
    return tally_;
  }

 private:
  std::mutex mu_;
  Tally tally_;
};

TEST_F(TenantsTest, PerIpLimitsHoldUnderParallelCallsAcrossServers) {
  Config config = TwoTenants();
  config.tenants["alpha"].ip_issue = {{absl::Hours(1), 7}};
  auto first = TestServer::Start(config);
  auto second = TestServer::Start(config);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  // One IP asks for 40 different recipients at once, through both servers;
  // the second half writes the same IPv6 /64 in other ways.
  ParallelIssues results;
  InParallel(40, [&](int i) {
    const std::string ip = i % 2 == 0 ? "2001:db8:7:1::5"
                                      : absl::StrCat("2001:db8:7:1:", i, "::1");
    results.Record(Issue(
        i % 2 == 0 ? *first : *second, kAlphaToken,
        IssueRequest(absl::StrCat("user", i, "@example.com"), "login", ip)));
  });
  const Tally t = results.tally();
  EXPECT_EQ(t.ok, 7);
  EXPECT_EQ(t.exhausted, 33);
  EXPECT_EQ(t.other, 0);
  EXPECT_THAT(t.refusal.error_message(), HasSubstr("client_ip"));
  EXPECT_THAT(t.refusal.error_message(), HasSubstr("tenants.alpha.ip_issue"));
  const std::optional<absl::Duration> delay = RetryDelayOf(t.refusal);
  ASSERT_TRUE(delay.has_value());
  EXPECT_GT(*delay, absl::Minutes(59));
  EXPECT_EQ(Count("delivery_jobs"), "7");
  EXPECT_EQ(db_->Scalar("SELECT ip || ' ' || cardinality(issued_at) "
                        "FROM ip_limits"),
            "2001:db8:7:1::/64 7");

  // Another /64, an IPv4 address, and calls without an IP are not held.
  EXPECT_TRUE(Issue(*first, kAlphaToken,
                    IssueRequest("x@example.com", "login", "2001:db8:7:2::5"))
                  .ok());
  EXPECT_TRUE(Issue(*first, kAlphaToken,
                    IssueRequest("y@example.com", "login", "192.0.2.1"))
                  .ok());
  EXPECT_TRUE(
      Issue(*first, kAlphaToken, IssueRequest("z@example.com", "login")).ok());
}

TEST_F(TenantsTest, ARefusedIpLeavesTheRecipientsWindowUntouched) {
  Config config = TwoTenants();
  config.tenants["alpha"].ip_issue = {{absl::Hours(1), 1}};
  auto server = TestServer::Start(config);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(Issue(*server, kAlphaToken,
                    IssueRequest("ada@example.com", "login", "192.0.2.9"))
                  .ok());
  EXPECT_EQ(Issue(*server, kAlphaToken,
                  IssueRequest("bob@example.com", "login", "192.0.2.9"))
                .error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // bob's own window was not spent by the refusal.
  EXPECT_TRUE(Issue(*server, kAlphaToken,
                    IssueRequest("bob@example.com", "login", "192.0.2.10"))
                  .ok());
}

TEST_F(TenantsTest, TheTenantCeilingHoldsUnderParallelCallsAcrossServers) {
  Config config = TwoTenants();
  config.tenants["alpha"].ceiling = {{absl::Hours(1), 5}};
  auto first = TestServer::Start(config);
  auto second = TestServer::Start(config);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  // Ceiling windows are aligned to the hour: stay clear of a boundary.
  const absl::Duration into_hour =
      absl::Now() -
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 3600 * 3600);
  if (into_hour > absl::Minutes(59) + absl::Seconds(30)) {
    absl::SleepFor(absl::Hours(1) - into_hour + absl::Seconds(1));
  }

  ParallelIssues results;
  InParallel(30, [&](int i) {
    results.Record(Issue(i % 2 == 0 ? *first : *second, kAlphaToken,
                         IssueRequest(absl::StrCat("user", i, "@example.com"),
                                      "login", absl::StrCat("192.0.2.", i))));
  });
  const Tally t = results.tally();
  EXPECT_EQ(t.ok, 5);
  EXPECT_EQ(t.exhausted, 25);
  EXPECT_EQ(t.other, 0);
  EXPECT_THAT(t.refusal.error_message(), HasSubstr("ceiling"));
  const std::optional<absl::Duration> delay = RetryDelayOf(t.refusal);
  ASSERT_TRUE(delay.has_value());
  EXPECT_LE(*delay, absl::Hours(1));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes WHERE tenant = 'alpha'"),
            "5");
  EXPECT_EQ(db_->Scalar("SELECT sum(used) FROM tenant_quota"), "5");
  // Refusals counted nowhere: no IP or recipient window moved.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM ip_limits "
                        "WHERE cardinality(issued_at) > 0"),
            "5");

  // beta has no ceiling and is not held by alpha's.
  EXPECT_TRUE(Issue(*first, kBetaToken, IssueRequest("ada@example.com")).ok());
}

}  // namespace
}  // namespace authcode
