// The real `authcode` binary, started the way an operator would, with the
// console provider: health, reflection, an issue/verify round trip with the
// code read from the console, the subcommands, and a clean stop.
//
// This binary links no server code, only generated stubs, so it also
// proves the API is usable from a plain client.
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using testing::KeyRing;
using ::testing::MatchesRegex;
using ::testing::Not;
using testing::Process;
using testing::TestDatabase;

class ServerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    env_ = {
        "PATH=/usr/bin:/bin",
        "AUTHCODE_DATABASE_URL=" + db_->url(),
        "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
        "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
        "AUTHCODE_LISTEN=127.0.0.1:0",
    };
  }

  std::unique_ptr<TestDatabase> db_;
  std::vector<std::string> env_;
};

TEST_F(ServerE2eTest, CheckConfigAcceptsTheEmbeddedDefaults) {
  Process p({AUTHCODE_BINARY, "check-config"}, env_);
  EXPECT_EQ(p.Wait(), 0) << p.err();
  EXPECT_THAT(p.out(), HasSubstr("config OK"));
}

TEST_F(ServerE2eTest, CheckConfigNamesAMissingSecret) {
  Process p({AUTHCODE_BINARY, "check-config"},
            {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
             "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o')});
  EXPECT_EQ(p.Wait(), 2);
  EXPECT_THAT(p.err(), HasSubstr("AUTHCODE_HASHING_KEYS"));
}

TEST_F(ServerE2eTest, MigrateAppliesTheSchemaAndExits) {
  Process p({AUTHCODE_BINARY, "migrate"}, env_);
  EXPECT_EQ(p.Wait(), 0) << p.err();
  EXPECT_EQ(db_->Scalar("SELECT count(*) > 0 FROM authcode_migrations"), "t");
}

TEST_F(ServerE2eTest, ServesHealthReflectionAndARoundTrip) {
  Process server({AUTHCODE_BINARY}, env_);
  const std::string port = testing::WaitForPort(server);
  ASSERT_FALSE(port.empty());
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());

  // The console provider says what it is.
  EXPECT_THAT(server.err(), HasSubstr("development"));

  // Health, overall and for the API.
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const char* service : {"", "authcode.v1.AuthCodeService"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }

  // Reflection lists the services and serves the API's descriptor.
  auto reflection =
      grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext rctx;
  auto stream = reflection->ServerReflectionInfo(&rctx);
  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse listed;
  ASSERT_TRUE(stream->Read(&listed));
  std::vector<std::string> services;
  for (const auto& s : listed.list_services_response().service()) {
    services.push_back(s.name());
  }
  EXPECT_THAT(services,
              ::testing::IsSupersetOf(
                  {"authcode.v1.AuthCodeService", "grpc.health.v1.Health",
                   "grpc.reflection.v1alpha.ServerReflection"}));
  grpc::reflection::v1alpha::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("authcode.v1.AuthCodeService");
  ASSERT_TRUE(stream->Write(symbol));
  grpc::reflection::v1alpha::ServerReflectionResponse described;
  ASSERT_TRUE(stream->Read(&described));
  ASSERT_GT(described.file_descriptor_response().file_descriptor_proto_size(),
            0);
  EXPECT_THAT(described.file_descriptor_response().file_descriptor_proto(0),
              HasSubstr("VerifyCode"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Issue, read the code off the console, verify.
  auto api = v1::AuthCodeService::NewStub(channel);
  v1::IssueCodeRequest issue;
  issue.set_recipient("grace@example.com");
  issue.set_purpose("login");
  v1::IssueCodeResponse issued;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(api->IssueCode(&ctx, issue, &issued).ok());
  }
  const std::string mail =
      server.WaitFor(true, issued.code_id() + "[^]*?-----\\s*$");
  const std::string code =
      server.WaitFor(true, issued.code_id() + "[^]*?\\b([0-9]{6})\\b");
  ASSERT_EQ(code.size(), 6u) << server.out();
  (void)mail;

  v1::VerifyCodeRequest verify;
  verify.set_recipient("grace@example.com");
  verify.set_purpose("login");
  verify.set_code(code);
  v1::VerifyCodeResponse verified;
  {
    // The caller's request id is used and sent back.
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "checkout-7f3a.9");
    ASSERT_TRUE(api->VerifyCode(&ctx, verify, &verified).ok());
    const auto echoed = ctx.GetServerInitialMetadata().find("x-request-id");
    ASSERT_NE(echoed, ctx.GetServerInitialMetadata().end());
    EXPECT_EQ(std::string(echoed->second.data(), echoed->second.size()),
              "checkout-7f3a.9");
  }
  EXPECT_EQ(verified.outcome(), v1::VERIFY_OUTCOME_VERIFIED);

  // Without one, or with one that would need quoting, the server makes
  // one up: 24 hex digits, in the answer and in the log line.
  std::vector<std::string> generated;
  for (const std::string& given :
       {std::string(), std::string("two words"), std::string(129, 'a')}) {
    grpc::ClientContext ctx;
    if (!given.empty()) ctx.AddMetadata("x-request-id", given);
    v1::VerifyCodeResponse again;
    ASSERT_TRUE(api->VerifyCode(&ctx, verify, &again).ok());
    const auto echoed = ctx.GetServerInitialMetadata().find("x-request-id");
    ASSERT_NE(echoed, ctx.GetServerInitialMetadata().end());
    generated.emplace_back(echoed->second.data(), echoed->second.size());
    EXPECT_THAT(generated.back(), MatchesRegex("[0-9a-f]{24}"));
  }
  EXPECT_NE(generated[0], generated[1]);

  // A clean stop on SIGTERM.
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0);

  // The log has the masked recipient and never the code or a secret.
  const std::string log = server.err();
  EXPECT_THAT(log, HasSubstr("event=rpc.verify_code"));
  EXPECT_THAT(log, ContainsRegex("event=rpc.issue_code request_id=[0-9a-f]{24} "
                                 "tenant=default purpose=login"));
  EXPECT_THAT(log, HasSubstr("event=rpc.verify_code request_id=checkout-7f3a.9 "
                             "tenant=default purpose=login "
                             "recipient=g***@example.com status=ok "
                             "outcome=verified latency_ms="));
  for (const std::string& id : generated) {
    EXPECT_THAT(log, HasSubstr("request_id=" + id + " "));
  }
  EXPECT_THAT(log, Not(HasSubstr("two words")));
  EXPECT_THAT(log, HasSubstr("g***@example.com"));
  EXPECT_THAT(log, Not(HasSubstr("grace@example.com")));
  EXPECT_THAT(log, Not(HasSubstr(code)));
  EXPECT_THAT(log, Not(HasSubstr(absl::Base64Escape(std::string(32, 'h')))));
  EXPECT_THAT(log, Not(HasSubstr(db_->url())));
  EXPECT_THAT(log, HasSubstr("event=server.stopped"));
}

TEST_F(ServerE2eTest, RefusesToStartWithoutADatabase) {
  std::vector<std::string> env = env_;
  env[1] = "AUTHCODE_DATABASE_URL=postgresql://x:y@127.0.0.1:1/none";
  Process server({AUTHCODE_BINARY}, env);
  EXPECT_EQ(server.Wait(), 1);
  EXPECT_THAT(server.err(), HasSubstr("database"));
  EXPECT_THAT(server.err(), Not(HasSubstr("x:y@")));
}

// The health service follows the database: a cluster of the test's own
// is stopped (as a crash would) and started again under a running server.
TEST(ServerHealthE2eTest, FollowsTheDatabaseDownAndBackUp) {
  if (std::getenv("AUTHCODE_TEST_DATABASE_URL") != nullptr) {
    GTEST_SKIP() << "needs a PostgreSQL cluster of its own to stop; skipped "
                    "with AUTHCODE_TEST_DATABASE_URL set";
  }
  const std::string pg_tmp = (std::filesystem::path(__FILE__).parent_path() /
                              "../../scripts/pg-tmp.sh")
                                 .string();
  char tmpl[] = "/tmp/authcode-health-e2e.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const auto pg = [&](const std::string& command) {
    return std::system(
        absl::StrCat(pg_tmp, " ", command, " ", dir, "/pg >/dev/null").c_str());
  };
  ASSERT_EQ(pg("start"), 0);
  std::string url;
  std::getline(std::ifstream(dir + "/pg/url"), url);
  std::ofstream(dir + "/authcode.toml")
      << "[server]\nhealth_interval = \"100ms\"\n";
  Process server({AUTHCODE_BINARY, "--config", dir + "/authcode.toml"},
                 {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + url,
                  "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
                  "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
                  "AUTHCODE_LISTEN=127.0.0.1:0"});
  const std::string port = testing::WaitForPort(server);
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  const auto status = [&] {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("authcode.v1.AuthCodeService");
    grpc::health::v1::HealthCheckResponse response;
    EXPECT_TRUE(health->Check(&ctx, request, &response).ok());
    return response.status();
  };
  // Polls until the status is `want` or 15 s pass.
  const auto becomes =
      [&](grpc::health::v1::HealthCheckResponse::ServingStatus want) {
        const absl::Time deadline = absl::Now() + absl::Seconds(15);
        while (status() != want && absl::Now() < deadline) {
          absl::SleepFor(absl::Milliseconds(50));
        }
        return status() == want;
      };
  using Health = grpc::health::v1::HealthCheckResponse;

  EXPECT_EQ(status(), Health::SERVING);
  ASSERT_EQ(pg("pause"), 0);
  EXPECT_TRUE(becomes(Health::NOT_SERVING)) << server.err();
  ASSERT_EQ(pg("resume"), 0);
  EXPECT_TRUE(becomes(Health::SERVING)) << server.err();

  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0);
  EXPECT_THAT(server.err(), HasSubstr("event=health.not_serving"));
  EXPECT_THAT(server.err(), HasSubstr("event=health.serving"));
  EXPECT_EQ(pg("stop"), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace authcode
