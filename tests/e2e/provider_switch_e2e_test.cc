// One build, one config file with four providers in it, and the real
// binary started once per provider with only AUTHCODE_PROVIDER changed:
// console, SMTP (a local STARTTLS server), Amazon SES and SendGrid (local
// HTTP servers that check the requests, SES's signature included). Each
// time a code is issued, read back from what that provider received, and
// verified.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/process.h"
#include "tests/providers/http/http_peer.h"
#include "tests/providers/smtp/smtp_peer.h"
#include "tests/support/files.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using testing::HttpPeer;
using testing::KeyRing;
using testing::Process;
using testing::SmtpPeer;
using testing::TestDatabase;

constexpr char kKeyId[] = "AKIDEXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

// The six-digit code in `text`, or "".
std::string CodeIn(const std::string& text) {
  std::smatch match;
  static const std::regex code("\\b([0-9]{6})\\b");
  return std::regex_search(text, match, code) ? match[1].str() : "";
}

// Polls `read` until it yields a code or 20 s pass.
std::string WaitForCode(const std::function<std::string()>& read) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    if (std::string code = read(); !code.empty()) return code;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return "";
}

class ProviderSwitchE2eTest
    : public testing::WithTestCerts<ProviderSwitchE2eTest> {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    dir_ = testing::MakeTempDir("authcode-switch-e2e");
    smtp_ = std::make_unique<SmtpPeer>(std::vector<std::string>{
        "--security", "starttls", "--cert", certs() + "/server.pem", "--key",
        certs() + "/server.key"});
    ses_ = std::make_unique<HttpPeer>(std::vector<std::string>{
        "--sigv4", absl::StrCat(kKeyId, ":", kSecret, ":eu-west-1:ses"),
        "--respond", testing::Respond(200, {}, R"({"MessageId":"ses-1"})")});
    sendgrid_ = std::make_unique<HttpPeer>(std::vector<std::string>{
        "--respond", testing::Respond(202, {{"X-Message-Id", "sg-1"}})});

    config_ = dir_ + "/authcode.toml";
    std::ofstream(config_)
        << "[delivery]\nchain = [\"console\"]\npoll_interval = \"200ms\"\n"
        << "[providers.console]\ntype = \"console\"\n"
        << "[providers.smtp]\ntype = \"smtp\"\nhost = \"localhost\"\n"
        << "port = " << smtp_->port() << "\nca_file = \"" << certs()
        << "/ca.pem\"\n"
        << "[providers.ses]\ntype = \"ses\"\nregion = \"eu-west-1\"\n"
        << "endpoint = \"" << ses_->Url("") << "\"\n"
        << "access_key_id = \"" << kKeyId << "\"\n"
        << "secret_access_key_env = \"TEST_SES_SECRET\"\n"
        << "[providers.sendgrid]\ntype = \"sendgrid\"\n"
        << "endpoint = \"" << sendgrid_->Url("") << "\"\n"
        << "api_key_env = \"TEST_SENDGRID_KEY\"\n";
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts the server with `provider`, issues a code to `recipient`,
  // waits for `read_code` to find it where the provider delivered, and
  // verifies it.
  void RoundTrip(const std::string& provider, const std::string& recipient,
                 const std::function<std::string(Process&)>& read_code) {
    Process server(
        {AUTHCODE_BINARY, "--config", config_},
        {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
         "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
         "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
         "AUTHCODE_LISTEN=127.0.0.1:0", "AUTHCODE_PROVIDER=" + provider,
         std::string("TEST_SES_SECRET=") + kSecret,
         "TEST_SENDGRID_KEY=SG.switch-test"});
    const std::string port = testing::WaitForPort(server);
    Exchange(port, provider, recipient, [&] { return read_code(server); });
    server.Signal(SIGTERM);
    EXPECT_EQ(server.Wait(), 0) << server.err();
  }

  // Issues, waits for the code, verifies; the channel is gone when this
  // returns, so the server's stop need not wait for it to drain.
  static void Exchange(const std::string& port, const std::string& provider,
                       const std::string& recipient,
                       const std::function<std::string()>& read_code) {
    auto api = v1::AuthCodeService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + port, grpc::InsecureChannelCredentials()));

    v1::IssueCodeRequest issue;
    issue.set_recipient(recipient);
    issue.set_purpose("login");
    v1::IssueCodeResponse issued;
    grpc::ClientContext issue_context;
    const grpc::Status issued_status =
        api->IssueCode(&issue_context, issue, &issued);
    EXPECT_TRUE(issued_status.ok()) << issued_status.error_message();

    const std::string code = WaitForCode(read_code);
    EXPECT_EQ(code.size(), 6u) << provider << " delivered nothing readable";
    v1::VerifyCodeRequest verify;
    verify.set_recipient(recipient);
    verify.set_purpose("login");
    verify.set_code(code);
    v1::VerifyCodeResponse verified;
    grpc::ClientContext verify_context;
    EXPECT_TRUE(api->VerifyCode(&verify_context, verify, &verified).ok());
    EXPECT_EQ(verified.outcome(), v1::VERIFY_OUTCOME_VERIFIED) << provider;
  }

  std::unique_ptr<TestDatabase> db_;
  std::string dir_, config_;
  std::unique_ptr<SmtpPeer> smtp_;
  std::unique_ptr<HttpPeer> ses_, sendgrid_;
};

TEST_F(ProviderSwitchE2eTest, ConsoleSmtpSesAndSendGridFromOneBuild) {
  RoundTrip("console", "console@example.com",
            [](Process& server) { return CodeIn(server.out()); });
  EXPECT_EQ(smtp_->Messages() + ses_->Requests() + sendgrid_->Requests(), 0);

  RoundTrip("smtp", "smtp@example.com", [&](Process&) -> std::string {
    if (smtp_->Messages() == 0) return "";
    return CodeIn(testing::ReadFile(smtp_->MessagePath(1)));
  });
  EXPECT_EQ(smtp_->Envelope(1)["rcpt_tos"][0], "smtp@example.com");

  RoundTrip("ses", "ses@example.com", [&](Process&) -> std::string {
    if (ses_->Requests() == 0) return "";
    const nlohmann::json body =
        nlohmann::json::parse(ses_->Request(1)["body"].get<std::string>());
    return CodeIn(body["Content"]["Simple"]["Body"]["Text"]["Data"]);
  });
  EXPECT_TRUE(ses_->Request(1)["sigv4"]["valid"]);

  RoundTrip("sendgrid", "sendgrid@example.com", [&](Process&) -> std::string {
    if (sendgrid_->Requests() == 0) return "";
    const nlohmann::json body =
        nlohmann::json::parse(sendgrid_->Request(1)["body"].get<std::string>());
    EXPECT_EQ(body["personalizations"][0]["to"][0]["email"],
              "sendgrid@example.com");
    return CodeIn(body["content"][0]["value"]);
  });

  EXPECT_EQ(ses_->Requests(), 1);
  EXPECT_EQ(sendgrid_->Requests(), 1);
  EXPECT_EQ(smtp_->Messages(), 1);
}

}  // namespace
}  // namespace authcode
