#include "providers/sendgrid/sendgrid_provider.h"

#include <stdlib.h>

#include <filesystem>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/providers/http/http_peer.h"
#include "tests/providers/sample_message.h"
#include "tests/support/files.h"
#include "tests/support/scoped_env.h"

namespace authcode::providers {
namespace {

using ::authcode::testing::HeadersOf;
using ::authcode::testing::HttpPeer;
using ::authcode::testing::SampleMessage;
using ::authcode::testing::ScopedEnv;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kApiKey[] = "SG.test-key.abcdefghijklmnop";

HttpPeer SendGridPeer(std::vector<std::string> responses = {}) {
  if (responses.empty()) {
    responses.push_back(testing::Respond(202, {{"X-Message-Id", "sg-id-1"}}));
  }
  std::vector<std::string> args;
  for (const std::string& response : responses) {
    args.push_back("--respond");
    args.push_back(response);
  }
  return HttpPeer(args);
}

absl::StatusOr<std::unique_ptr<SendGridProvider>> MakeProvider(
    std::map<std::string, std::string> values) {
  absl::StatusOr<SendGridProviderConfig> config = ParseSendGridConfig(
      ProviderSettings("providers.sendgrid", std::move(values)));
  if (!config.ok()) return config.status();
  return std::make_unique<SendGridProvider>(*std::move(config));
}

std::map<std::string, std::string> Settings(
    const HttpPeer& peer, std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> values = {{"api_key", kApiKey},
                                               {"endpoint", peer.Url("")}};
  for (auto& [key, value] : extra) values[key] = value;
  return values;
}

TEST(SendGridProviderTest, SendsTheMailSendRequestExactly) {
  HttpPeer peer = SendGridPeer();
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult result = (*provider)->Send(SampleMessage());

  ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(result.message_id(), "sg-id-1");
  const nlohmann::json request = peer.Request(1);
  EXPECT_EQ(request["method"], "POST");
  EXPECT_EQ(request["target"], "/v3/mail/send");
  const auto headers = HeadersOf(request);
  EXPECT_EQ(headers.at("authorization"), absl::StrCat("Bearer ", kApiKey));
  EXPECT_EQ(headers.at("content-type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(request["body"].get<std::string>()),
            nlohmann::json::parse(R"({
              "personalizations": [{
                "to": [{"email": "ada@example.org"}],
                "custom_args": {"authcode_delivery_id": "42"}}],
              "from": {"email": "no-reply@example.com",
                       "name": "Example Login"},
              "subject": "Your code",
              "content": [
                {"type": "text/plain", "value": "Your code is 123456."},
                {"type": "text/html",
                 "value": "<p>Your code is <b>123456</b>.</p>"}]
            })"));
}

TEST(SendGridProviderTest, AddsCategoriesArgsHeadersAndSandbox) {
  HttpPeer peer = SendGridPeer({testing::Respond(200)});
  auto provider = MakeProvider(Settings(peer, {{"categories", "login, otp"},
                                               {"custom_args", "env=prod"},
                                               {"sandbox_mode", "true"}}));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.from_name.clear();
  message.headers = {{"X-Entity-Ref-ID", "login-42"}};

  const SendResult result = (*provider)->Send(message);

  ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(result.message_id(), "") << "the sandbox answers 200 without one";
  const nlohmann::json body =
      nlohmann::json::parse(peer.Request(1)["body"].get<std::string>());
  EXPECT_EQ(body["categories"], nlohmann::json({"login", "otp"}));
  EXPECT_EQ(body["personalizations"][0]["custom_args"],
            nlohmann::json({{"env", "prod"}, {"authcode_delivery_id", "42"}}));
  EXPECT_EQ(body["headers"], nlohmann::json({{"X-Entity-Ref-ID", "login-42"}}));
  EXPECT_EQ(body["mail_settings"]["sandbox_mode"]["enable"], true);
  EXPECT_EQ(body["from"], nlohmann::json({{"email", "no-reply@example.com"}}));
}

// The body against SendGrid's own OpenAPI description, read in place.
TEST(SendGridProviderTest, BodyConformsToSendGridsSchema) {
  const std::filesystem::path here =
      std::filesystem::path(__FILE__).parent_path();
  const std::filesystem::path spec =
      here / "../../../../shared/vectors/sendgrid/tsg_mail_v3.json";
  if (!std::filesystem::exists(spec)) {
    GTEST_SKIP() << "SendGrid's OpenAPI description not found at " << spec
                 << "; skipped (CI has it)";
  }
  HttpPeer peer = SendGridPeer();
  auto provider = MakeProvider(Settings(
      peer, {{"categories", "login"}, {"custom_args", "env=prod,team=auth"}}));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.headers = {{"List-Unsubscribe", "<mailto:unsub@example.com>"}};

  absl::StatusOr<std::string> body = (*provider)->RequestBody(message);
  ASSERT_TRUE(body.ok()) << body.status();
  const std::string file = testing::TempPath("authcode-sendgrid-body");
  testing::WriteFile(file, *body);
  const std::string command = absl::StrCat(
      testing::kPython, " ", (here / "check_mail_send_schema.py").string(), " ",
      spec.string(), " ", file, " 2>&1");
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  std::filesystem::remove(file);

  EXPECT_EQ(status, 0) << output;
}

TEST(SendGridProviderTest, SummarizesSendGridsErrors) {
  HttpPeer peer = SendGridPeer(
      {testing::Respond(400, {},
                        R"({"errors":[{"message":"The from address does not )"
                        R"(match a verified Sender Identity.","field":"from",)"
                        R"("help":null}]})"),
       testing::Respond(401, {},
                        absl::StrCat(R"({"errors":[{"message":"bad key )",
                                     kApiKey, R"("}]})")),
       testing::Respond(429, {{"Retry-After", "12"}}, ""),
       testing::Respond(502, {}, "Bad Gateway")});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult invalid = (*provider)->Send(SampleMessage());
  const SendResult unauthorized = (*provider)->Send(SampleMessage());
  const SendResult limited = (*provider)->Send(SampleMessage());
  const SendResult gateway = (*provider)->Send(SampleMessage());

  EXPECT_EQ(invalid.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(invalid.error(),
            "sendgrid: HTTP 400: message=The from address does not match a "
            "verified Sender Identity.; field=from");
  EXPECT_EQ(unauthorized.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(unauthorized.error(), Not(HasSubstr(kApiKey)));
  EXPECT_EQ(limited.kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(limited.retry_after(), absl::Seconds(12));
  EXPECT_EQ(gateway.kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(gateway.error(), "sendgrid: HTTP 502: Bad Gateway");
}

TEST(SendGridProviderTest, RefusesAHeaderInjectionBeforeSending) {
  HttpPeer peer = SendGridPeer();
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.from_name = "Support\r\nBcc: victim@example.net";

  const SendResult result = (*provider)->Send(message);

  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(peer.Requests(), 0);
}

// Through an HTTPS proxy (the test peer, which records the CONNECT and
// refuses it), the provider shows which host it would have reached.
std::string HostReached(std::map<std::string, std::string> values) {
  HttpPeer proxy;
  ScopedEnv env("https_proxy", proxy.Url(""));
  values["api_key"] = kApiKey;
  auto provider = MakeProvider(values);
  EXPECT_TRUE(provider.ok()) << provider.status();
  if (!provider.ok()) return "";
  EXPECT_EQ((*provider)->Send(SampleMessage()).kind(),
            SendResult::Kind::kRetryable);
  return proxy.Requests() == 1 ? proxy.Request(1)["target"].get<std::string>()
                               : "";
}

TEST(SendGridProviderTest, ReachesTheGlobalOrTheEuEndpoint) {
  EXPECT_EQ(HostReached({}), "api.sendgrid.com:443");
  EXPECT_EQ(HostReached({{"region", "eu"}}), "api.eu.sendgrid.com:443");
}

TEST(SendGridProviderTest, ReadsTheKeyFromTheEnvironment) {
  HttpPeer peer = SendGridPeer();
  ScopedEnv env("SENDGRID_API_KEY", kApiKey);
  auto provider = MakeProvider(
      {{"api_key_env", "SENDGRID_API_KEY"}, {"endpoint", peer.Url("")}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  EXPECT_EQ(HeadersOf(peer.Request(1)).at("authorization"),
            absl::StrCat("Bearer ", kApiKey));
}

TEST(SendGridProviderTest, RefusesBadSettingsNamingTheKey) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{}, "providers.sendgrid.api_key: required"},
          {{{"api_key", kApiKey}, {"region", "us"}},
           "providers.sendgrid.region:"},
          {{{"api_key", kApiKey}, {"categories", "a,b,c,d,e,f,g,h,i,j,k"}},
           "providers.sendgrid.categories: at most 10"},
          {{{"api_key", kApiKey}, {"custom_args", "novalue"}},
           "providers.sendgrid.custom_args:"},
          {{{"api_key", kApiKey}, {"custom_args", "authcode_delivery_id=1"}},
           "providers.sendgrid.custom_args:"},
          {{{"api_key", kApiKey}, {"sandbox_mode", "yes"}},
           "providers.sendgrid.sandbox_mode:"},
          {{{"api_key", kApiKey}, {"apikey", kApiKey}},
           "providers.sendgrid.apikey: unknown setting"},
      };
  for (const auto& [values, expected] : cases) {
    const absl::Status status = MakeProvider(values).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << expected;
    EXPECT_THAT(status.message(), HasSubstr(expected));
    EXPECT_THAT(status.message(), Not(HasSubstr(kApiKey)));
  }
}

}  // namespace
}  // namespace authcode::providers
