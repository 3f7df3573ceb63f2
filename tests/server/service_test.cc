// AuthCodeService end to end over a real gRPC channel, against a real
// PostgreSQL database: every rule of issuing and verifying.
#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"
#include "tests/support/test_server.h"

namespace authcode {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TestConfig;
using testing::TestDatabase;
using testing::TestServer;

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = TestDatabase::Create(); }

  // Starts a server; `adjust` edits the test config first.
  TestServer& StartServer(const std::function<void(Config&)>& adjust =
                              [](Config&) {}) {
    Config config = TestConfig(db_->url());
    adjust(config);
    server_.reset();
    server_ = TestServer::Start(config);
    EXPECT_NE(server_, nullptr);
    return *server_;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(ServiceTest, IssuesCodeAndMailsIt) {
  TestServer& s = StartServer();
  v1::IssueCodeRequest request;
  request.set_recipient("Ada@Example.com");
  request.set_purpose("signup");
  (*request.mutable_template_values())["app_name"] = "Acme";
  v1::IssueCodeResponse response;
  const absl::Time before = absl::Now();
  ASSERT_TRUE(s.Issue(request, &response).ok());

  EXPECT_TRUE(std::regex_match(
      response.code_id(),
      std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                 "[0-9a-f]{12}")))
      << response.code_id();
  const absl::Duration lifetime = FromProto(response.expires_at()) - before;
  EXPECT_GT(lifetime, absl::Minutes(9)) << lifetime;
  EXPECT_LT(lifetime, absl::Minutes(11)) << lifetime;
  const absl::Duration resend = FromProto(response.resend_after()) - before;
  EXPECT_GT(resend, absl::Seconds(55)) << resend;
  EXPECT_LT(resend, absl::Seconds(65)) << resend;

  ASSERT_TRUE(s.provider().WaitForSent(1, absl::Seconds(10)));
  const providers::Message mail = s.provider().sent().at(0);
  EXPECT_EQ(mail.to_address, "Ada@Example.com");
  EXPECT_EQ(mail.delivery_id, response.code_id());
  const std::string code = testing::FindCode(mail.text, 6);
  ASSERT_EQ(code.size(), 6u) << mail.text;
  EXPECT_THAT(mail.html, HasSubstr(code));
  EXPECT_THAT(mail.text, HasSubstr("Acme"));
  EXPECT_FALSE(mail.subject.empty());

  // The job is final and its payload wiped.
  EXPECT_EQ(db_->Scalar("SELECT state || ' ' || (payload IS NULL)::text "
                        "FROM delivery_jobs"),
            "sent true");
}

TEST_F(ServiceTest, VerifiesRightCodeExactlyOnce) {
  TestServer& s = StartServer();
  const std::string code = s.IssueAndReceive("ada@example.com", "login");
  ASSERT_FALSE(code.empty());

  // Case of the address does not matter.
  v1::VerifyCodeResponse r = s.Verify("ADA@example.com", "login", code);
  EXPECT_EQ(r.outcome(), v1::VERIFY_OUTCOME_VERIFIED);
  r = s.Verify("ada@example.com", "login", code);
  EXPECT_EQ(r.outcome(), v1::VERIFY_OUTCOME_NO_ACTIVE_CODE);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes"), "0");
}

TEST_F(ServiceTest, CodeIsBoundToPurpose) {
  TestServer& s = StartServer();
  const std::string code = s.IssueAndReceive("ada@example.com", "login");
  EXPECT_EQ(s.Verify("ada@example.com", "signup", code).outcome(),
            v1::VERIFY_OUTCOME_NO_ACTIVE_CODE);
  EXPECT_EQ(s.Verify("bob@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_NO_ACTIVE_CODE);
  EXPECT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

std::string WrongCode(const std::string& code) {
  std::string wrong = code;
  wrong[0] = wrong[0] == '9' ? '0' : wrong[0] + 1;
  return wrong;
}

TEST_F(ServiceTest, WrongGuessesSpendAttemptsThenDiscardTheCode) {
  TestServer& s = StartServer();
  const std::string code = s.IssueAndReceive("ada@example.com", "login");
  const std::string wrong = WrongCode(code);
  for (int left = 4; left >= 0; --left) {
    v1::VerifyCodeResponse r = s.Verify("ada@example.com", "login", wrong);
    EXPECT_EQ(r.outcome(), v1::VERIFY_OUTCOME_WRONG_CODE);
    EXPECT_EQ(r.attempts_left(), left);
  }
  // The code is gone: even the right one fails now.
  EXPECT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS);
  EXPECT_EQ(db_->Scalar("SELECT (code_hash IS NULL)::text FROM codes"), "true");
}

TEST_F(ServiceTest, ReissueReplacesThePreviousCode) {
  TestServer& s = StartServer([](Config& c) {
    c.limits.issue = {{absl::Seconds(60), 10}};
  });
  const std::string first = s.IssueAndReceive("ada@example.com", "login");
  const std::string second = s.IssueAndReceive("ada@example.com", "login");
  if (first == second) GTEST_SKIP() << "the two random codes collided";
  v1::VerifyCodeResponse r = s.Verify("ada@example.com", "login", first);
  EXPECT_EQ(r.outcome(), v1::VERIFY_OUTCOME_WRONG_CODE);
  EXPECT_EQ(s.Verify("ada@example.com", "login", second).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes"), "0");
}

TEST_F(ServiceTest, RateLimitsIssuesPerRecipientWithRetryInfo) {
  TestServer& s = StartServer();
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());
  grpc::Status limited = s.Issue("ada@example.com", "login");
  EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(limited.error_message(), HasSubstr("limits.issue"));
  std::optional<absl::Duration> delay = testing::RetryDelayOf(limited);
  ASSERT_TRUE(delay.has_value()) << "no google.rpc.RetryInfo";
  EXPECT_GT(*delay, absl::Seconds(55));
  EXPECT_LE(*delay, absl::Seconds(60));

  // Other recipients and purposes have their own limits.
  EXPECT_TRUE(s.Issue("bob@example.com", "login").ok());
  EXPECT_TRUE(s.Issue("ada@example.com", "signup").ok());
}

TEST_F(ServiceTest, HourlyLimitHoldsOnceTheMinuteWindowAllows) {
  TestServer& s = StartServer([](Config& c) {
    c.limits.issue = {{absl::Seconds(1), 1}, {absl::Hours(1), 3}};
  });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.Issue("ada@example.com", "login").ok()) << i;
    absl::SleepFor(absl::Milliseconds(1100));
  }
  grpc::Status limited = s.Issue("ada@example.com", "login");
  ASSERT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  std::optional<absl::Duration> delay = testing::RetryDelayOf(limited);
  ASSERT_TRUE(delay.has_value());
  // Free again when the first of the three leaves the hour.
  EXPECT_GT(*delay, absl::Minutes(59));
  EXPECT_LE(*delay, absl::Hours(1));
}

TEST_F(ServiceTest, ResendAfterReportsTheTighterWindow) {
  TestServer& s = StartServer([](Config& c) {
    c.limits.issue = {{absl::Seconds(30), 2}, {absl::Hours(1), 2}};
  });
  v1::IssueCodeResponse response;
  const absl::Time before = absl::Now();
  ASSERT_TRUE(s.Issue("ada@example.com", "login", &response).ok());
  // One more fits both windows: no wait.
  EXPECT_LT(FromProto(response.resend_after()) - before, absl::Seconds(2));
  ASSERT_TRUE(s.Issue("ada@example.com", "login", &response).ok());
  // Now both windows are full; the hour is the binding one.
  EXPECT_GT(FromProto(response.resend_after()) - before, absl::Minutes(59));
}

TEST_F(ServiceTest, ExpiredCodeIsReportedAndNotAccepted) {
  TestServer& s =
      StartServer([](Config& c) { c.codes.ttl = absl::Seconds(1); });
  const std::string code = s.IssueAndReceive("ada@example.com", "login");
  absl::SleepFor(absl::Milliseconds(1300));
  v1::VerifyCodeResponse r = s.Verify("ada@example.com", "login", code);
  EXPECT_EQ(r.outcome(), v1::VERIFY_OUTCOME_EXPIRED);
  // An expired guess costs nothing and changes nothing.
  EXPECT_EQ(db_->Scalar("SELECT failures FROM recipient_limits"), "0");
}

TEST_F(ServiceTest, FailedGuessesCountAcrossCodesAndLockTheRecipient) {
  TestServer& s = StartServer([](Config& c) {
    c.limits.issue = {{absl::Seconds(60), 10}};
    c.limits.max_failures = 7;
    c.limits.lockout = absl::Minutes(30);
  });
  std::string code = s.IssueAndReceive("ada@example.com", "login");
  for (int i = 0; i < 5; ++i) {
    s.Verify("ada@example.com", "login", WrongCode(code));
  }
  // A new code does not reset the streak.
  code = s.IssueAndReceive("ada@example.com", "login");
  EXPECT_EQ(s.Verify("ada@example.com", "login", WrongCode(code)).outcome(),
            v1::VERIFY_OUTCOME_WRONG_CODE);
  const absl::Time before = absl::Now();
  v1::VerifyCodeResponse locked =
      s.Verify("ada@example.com", "login", WrongCode(code));
  EXPECT_EQ(locked.outcome(), v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS);
  ASSERT_TRUE(locked.has_locked_until());
  const absl::Duration lock = FromProto(locked.locked_until()) - before;
  EXPECT_GT(lock, absl::Minutes(29));
  EXPECT_LE(lock, absl::Minutes(30) + absl::Seconds(1));

  // Locked: the right code fails, and no new code is issued.
  EXPECT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS);
  grpc::Status refused = s.Issue("ada@example.com", "login");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  std::optional<absl::Duration> delay = testing::RetryDelayOf(refused);
  ASSERT_TRUE(delay.has_value());
  EXPECT_GT(*delay, absl::Minutes(29));

  // The lock is per purpose.
  EXPECT_TRUE(s.Issue("ada@example.com", "signup").ok());
}

TEST_F(ServiceTest, SuccessResetsTheFailureStreak) {
  TestServer& s = StartServer([](Config& c) {
    c.limits.issue = {{absl::Seconds(60), 10}};
    c.limits.max_failures = 6;
  });
  std::string code = s.IssueAndReceive("ada@example.com", "login");
  for (int i = 0; i < 4; ++i) {
    s.Verify("ada@example.com", "login", WrongCode(code));
  }
  ASSERT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
  code = s.IssueAndReceive("ada@example.com", "login");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s.Verify("ada@example.com", "login", WrongCode(code)).outcome(),
              v1::VERIFY_OUTCOME_WRONG_CODE);
  }
  EXPECT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

TEST_F(ServiceTest, ConfiguredCodeLengthAndAttempts) {
  TestServer& s = StartServer([](Config& c) {
    c.codes.length = 8;
    c.codes.max_attempts = 2;
  });
  const std::string code = s.IssueAndReceive("ada@example.com", "login");
  ASSERT_EQ(code.size(), 8u);
  v1::VerifyCodeResponse r =
      s.Verify("ada@example.com", "login", WrongCode(code));
  EXPECT_EQ(r.attempts_left(), 1);
  EXPECT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

TEST_F(ServiceTest, RotatedHashingKeyKeepsOldCodesVerifiable) {
  std::string old_code;
  {
    TestServer& s = StartServer(
        [](Config& c) { c.hashing_keys = {testing::TestHashingKey("h1")}; });
    old_code = s.IssueAndReceive("ada@example.com", "login");
  }
  TestServer& s = StartServer([](Config& c) {
    c.hashing_keys = {testing::TestHashingKey("h2"),
                      testing::TestHashingKey("h1")};
  });
  EXPECT_EQ(db_->Scalar("SELECT key_id FROM codes"), "h1");
  EXPECT_EQ(s.Verify("ada@example.com", "login", old_code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);

  const std::string new_code = s.IssueAndReceive("bob@example.com", "login");
  EXPECT_EQ(db_->Scalar("SELECT key_id FROM codes"), "h2");
  EXPECT_EQ(s.Verify("bob@example.com", "login", new_code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

TEST_F(ServiceTest, CodeUnderARetiredKeyReadsAsExpired) {
  std::string code;
  {
    TestServer& s = StartServer(
        [](Config& c) { c.hashing_keys = {testing::TestHashingKey("h1")}; });
    code = s.IssueAndReceive("ada@example.com", "login");
  }
  TestServer& s = StartServer(
      [](Config& c) { c.hashing_keys = {testing::TestHashingKey("h2")}; });
  EXPECT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_EXPIRED);
  EXPECT_EQ(db_->Scalar("SELECT attempts_left FROM codes"), "5")
      << "a code nobody can check must not spend attempts";
}

struct BadIssue {
  std::string name;
  std::function<void(v1::IssueCodeRequest&)> edit;
  std::string field;
};

TEST_F(ServiceTest, RejectsBadIssueInputNamingTheField) {
  TestServer& s = StartServer();
  const std::vector<BadIssue> cases = {
      {"empty recipient", [](auto& r) { r.set_recipient(""); }, "recipient"},
      {"long recipient",
       [](auto& r) { r.set_recipient(std::string(250, 'a') + "@x.com"); },
       "recipient"},
      {"CRLF recipient",
       [](auto& r) { r.set_recipient("ada@example.com\r\nBcc: e@evil.com"); },
       "recipient"},
      {"no at", [](auto& r) { r.set_recipient("ada.example.com"); },
       "recipient"},
      {"display name",
       [](auto& r) { r.set_recipient("Ada <ada@example.com>"); }, "recipient"},
      {"empty purpose", [](auto& r) { r.set_purpose(""); }, "purpose"},
      {"long purpose", [](auto& r) { r.set_purpose(std::string(33, 'a')); },
       "purpose"},
      {"CRLF purpose", [](auto& r) { r.set_purpose("login\r\nX: y"); },
       "purpose"},
      {"bad locale", [](auto& r) { r.set_locale("en\nX"); }, "locale"},
      {"long locale", [](auto& r) { r.set_locale(std::string(40, 'a')); },
       "locale"},
      {"CRLF value",
       [](auto& r) {
         (*r.mutable_template_values())["app_name"] = "A\r\nBcc: e@evil.com";
       },
       "template_values.app_name"},
      {"long value",
       [](auto& r) {
         (*r.mutable_template_values())["app_name"] = std::string(300, 'a');
       },
       "template_values.app_name"},
      {"reserved value",
       [](auto& r) { (*r.mutable_template_values())["code"] = "123456"; },
       "template_values.code"},
      {"bad ip", [](auto& r) { r.set_client_ip("1.2.3.4\r\n"); }, "client_ip"},
  };
  for (const BadIssue& c : cases) {
    v1::IssueCodeRequest request;
    request.set_recipient("ada@example.com");
    request.set_purpose("login");
    c.edit(request);
    grpc::Status status = s.Issue(request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name;
    std::optional<google::rpc::BadRequest> details =
        testing::BadRequestOf(status);
    ASSERT_TRUE(details.has_value()) << c.name << ": no BadRequest";
    ASSERT_EQ(details->field_violations_size(), 1) << c.name;
    EXPECT_EQ(details->field_violations(0).field(), c.field) << c.name;
    EXPECT_FALSE(details->field_violations(0).description().empty());
  }
  // Nothing was written for any of them.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes"), "0");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "0");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM recipient_limits"), "0");
}

TEST_F(ServiceTest, RejectsBadVerifyInputWithoutSpendingAttempts) {
  TestServer& s = StartServer();
  const std::string code = s.IssueAndReceive("ada@example.com", "login");
  const std::vector<std::pair<std::string, std::string>> bad_codes = {
      {"", "code"},       {"12345", "code"},   {"12345678901", "code"},
      {"12a456", "code"}, {" 123456", "code"}, {"123456\n", "code"},
  };
  for (const auto& [bad, field] : bad_codes) {
    grpc::Status status;
    s.Verify("ada@example.com", "login", bad, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    auto details = testing::BadRequestOf(status);
    ASSERT_TRUE(details.has_value());
    EXPECT_EQ(details->field_violations(0).field(), field);
  }
  grpc::Status status;
  s.Verify("not an address", "Login!", code, &status);
  auto details = testing::BadRequestOf(status);
  ASSERT_TRUE(details.has_value());
  std::vector<std::string> fields;
  for (const auto& v : details->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ElementsAre("recipient", "purpose"));

  EXPECT_EQ(s.Verify("ada@example.com", "login", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED)
      << "malformed guesses must not spend attempts";
}

TEST_F(ServiceTest, UnreachableDatabaseIsUnavailableAndRecovers) {
  TestServer& s = StartServer();
  ASSERT_TRUE(s.Issue("ada@example.com", "login").ok());

  // Refuse new connections to the database, then cut the server's.
  pqxx::connection admin(TestDatabase::ClusterUrl());
  pqxx::nontransaction tx(admin);
  tx.exec(
      absl::StrCat("ALTER DATABASE ", db_->name(), " ALLOW_CONNECTIONS false"));
  tx.exec(
      absl::StrCat("SELECT pg_terminate_backend(pid) FROM "
                   "pg_stat_activity WHERE datname = '",
                   db_->name(), "'"));

  grpc::Status down = s.Issue("bob@example.com", "login");
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(down.error_message(), ::testing::Not(HasSubstr("SELECT")));
  grpc::Status verify_down;
  s.Verify("ada@example.com", "login", "123456", &verify_down);
  EXPECT_EQ(verify_down.error_code(), grpc::StatusCode::UNAVAILABLE);

  tx.exec(
      absl::StrCat("ALTER DATABASE ", db_->name(), " ALLOW_CONNECTIONS true"));
  EXPECT_TRUE(s.Issue("bob@example.com", "login").ok());
}

TEST_F(ServiceTest, CleanupRemovesExpiredRowsInBatches) {
  TestServer& s = StartServer([](Config& c) {
    c.codes.ttl = absl::Seconds(1);
    c.limits.issue = {{absl::Seconds(1), 1}};
    c.limits.ip_issue = {{absl::Seconds(1), 100}};
    c.cleanup.interval = absl::Milliseconds(200);
    c.cleanup.keep_expired = absl::ZeroDuration();
    c.cleanup.batch_size = 3;
  });
  for (int i = 0; i < 10; ++i) {
    v1::IssueCodeRequest request;
    request.set_recipient(absl::StrCat("user", i, "@example.com"));
    request.set_purpose("login");
    request.set_client_ip(absl::StrCat("192.0.2.", i));
    ASSERT_TRUE(s.Issue(request).ok());
  }
  ASSERT_TRUE(s.provider().WaitForSent(10, absl::Seconds(10)));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes"), "10");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM ip_limits"), "10");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline &&
         db_->Scalar("SELECT (SELECT count(*) FROM codes) + "
                     "(SELECT count(*) FROM recipient_limits) + "
                     "(SELECT count(*) FROM ip_limits) + "
                     "(SELECT count(*) FROM delivery_jobs)") != "0") {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM codes"), "0");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM recipient_limits"), "0");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM ip_limits"), "0");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs"), "0");
}

TEST_F(ServiceTest, ShutdownDoesNotWaitForTheWholeCleanupBacklog) {
  TestServer& s = StartServer([](Config& c) {
    c.cleanup.interval = absl::Milliseconds(50);
    c.cleanup.keep_expired = absl::ZeroDuration();
    c.cleanup.batch_size = 1;
  });
  // A backlog of 20,000 batches: codes that expired a day ago.
  db_->Query(
      "INSERT INTO codes (tenant, purpose, recipient, id, key_id, "
      "code_hash, attempts_left, created_at, expires_at) "
      "SELECT 'default', 'login', 'old' || i || '@example.com', "
      "gen_random_uuid(), 'h1', NULL, 0, now() - interval '2 days', "
      "now() - interval '1 day' FROM generate_series(1, 20000) AS i");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline &&
         db_->Scalar("SELECT count(*) FROM codes") == "20000") {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(db_->Scalar("SELECT count(*) FROM codes"), "20000")
      << "cleanup never started";

  EXPECT_TRUE(s.server().Shutdown());
  // Shutdown came between two batches, long before the last one.
  EXPECT_NE(db_->Scalar("SELECT count(*) FROM codes"), "0");
}

TEST_F(ServiceTest, NoReadableCodeInTheDatabase) {
  TestServer& s = StartServer([](Config& c) {
    c.limits.issue = {{absl::Seconds(60), 10}};
  });
  std::vector<std::string> codes;
  for (int i = 0; i < 5; ++i) {
    codes.push_back(
        s.IssueAndReceive(absl::StrCat("u", i, "@example.com"), "login"));
  }
  // Every table's every row, as text (bytea as hex).
  std::string dump;
  for (const char* table :
       {"codes", "delivery_jobs", "recipient_limits", "authcode_migrations"}) {
    for (const auto& row :
         db_->Query(absl::StrCat("SELECT t::text FROM ", table, " AS t"))) {
      dump += row[0] + "\n";
    }
  }
  // The raw payload bytes too, in case they hold the ASCII digits.
  for (const auto& row :
       db_->Query("SELECT encode(payload, 'escape') FROM delivery_jobs "
                  "WHERE payload IS NOT NULL")) {
    dump += row[0];
  }
  for (const std::string& code : codes) {
    ASSERT_EQ(code.size(), 6u);
    EXPECT_EQ(dump.find(code), std::string::npos)
        << "code " << code << " is readable in the database";
  }
}

}  // namespace
}  // namespace authcode
