#include "providers/ses/ses_provider.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "providers/ses/aws_credentials.h"
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
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kKeyId[] = "AKIDEXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kToken[] = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLETOKEN";
constexpr char kRegion[] = "eu-west-1";

// A peer that checks every request's signature itself, with its own SigV4
// code, and answers like SES.
HttpPeer SesPeer(std::vector<std::string> responses = {}) {
  std::vector<std::string> args = {
      "--sigv4", absl::StrCat(kKeyId, ":", kSecret, ":", kRegion, ":ses")};
  if (responses.empty()) {
    responses.push_back(
        testing::Respond(200, {}, R"({"MessageId":"0102-ses-1"})"));
  }
  for (const std::string& response : responses) {
    args.push_back("--respond");
    args.push_back(response);
  }
  return HttpPeer(args);
}

std::map<std::string, std::string> Settings(
    const HttpPeer& peer, std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> values = {{"region", kRegion},
                                               {"endpoint", peer.Url("")},
                                               {"access_key_id", kKeyId},
                                               {"secret_access_key", kSecret}};
  for (auto& [key, value] : extra) values[key] = value;
  return values;
}

absl::StatusOr<std::unique_ptr<SesProvider>> MakeProvider(
    std::map<std::string, std::string> values) {
  absl::StatusOr<SesProviderConfig> config =
      ParseSesConfig(ProviderSettings("providers.ses", std::move(values)));
  if (!config.ok()) return config.status();
  return std::make_unique<SesProvider>(*std::move(config));
}

TEST(SesProviderTest, SendsSimpleContentSignedForSes) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult result = (*provider)->Send(SampleMessage());

  ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(result.message_id(), "0102-ses-1");
  const nlohmann::json request = peer.Request(1);
  EXPECT_EQ(request["method"], "POST");
  EXPECT_EQ(request["target"], "/v2/email/outbound-emails");
  EXPECT_TRUE(request["sigv4"]["valid"]) << request["sigv4"].dump();
  const auto headers = HeadersOf(request);
  EXPECT_EQ(headers.at("host"), peer.Url("").substr(7));
  EXPECT_EQ(headers.at("content-type"), "application/json");
  EXPECT_THAT(headers.at("x-amz-date"), MatchesRegex("[0-9]{8}T[0-9]{6}Z"));
  const std::string date = headers.at("x-amz-date").substr(0, 8);
  EXPECT_EQ(
      headers.at("authorization"),
      absl::StrCat("AWS4-HMAC-SHA256 Credential=", kKeyId, "/", date,
                   "/eu-west-1/ses/aws4_request, "
                   "SignedHeaders=content-type;host;x-amz-date, "
                   "Signature=",
                   request["sigv4"]["expected_signature"].get<std::string>()));
  EXPECT_EQ(headers.count("x-amz-security-token"), 0u);
  EXPECT_EQ(nlohmann::json::parse(request["body"].get<std::string>()),
            nlohmann::json::parse(R"({
              "FromEmailAddress": "Example Login <no-reply@example.com>",
              "Destination": {"ToAddresses": ["ada@example.org"]},
              "Content": {"Simple": {
                "Subject": {"Data": "Your code", "Charset": "UTF-8"},
                "Body": {
                  "Text": {"Data": "Your code is 123456.", "Charset": "UTF-8"},
                  "Html": {"Data": "<p>Your code is <b>123456</b>.</p>",
                           "Charset": "UTF-8"}}}}
            })"));
}

TEST(SesProviderTest, ReusesOneConnectionOverAHundredSends) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  for (int i = 0; i < 100; ++i) {
    const SendResult result = (*provider)->Send(SampleMessage());
    ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  }

  EXPECT_EQ(peer.Requests(), 100);
  EXPECT_EQ(peer.Connections(), 1);
  EXPECT_TRUE(peer.Request(100)["sigv4"]["valid"]);
}

TEST(SesProviderTest, SignsAndSendsTheSessionToken) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(peer, {{"session_token", kToken}}));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult result = (*provider)->Send(SampleMessage());

  ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  const nlohmann::json request = peer.Request(1);
  EXPECT_TRUE(request["sigv4"]["valid"]) << request["sigv4"].dump();
  const auto headers = HeadersOf(request);
  EXPECT_EQ(headers.at("x-amz-security-token"), kToken);
  EXPECT_THAT(headers.at("authorization"),
              HasSubstr("SignedHeaders=content-type;host;x-amz-date;"
                        "x-amz-security-token,"));
}

TEST(SesProviderTest, AWrongSecretIsRefusedByTheIndependentCheck) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(
      Settings(peer, {{"secret_access_key", "not-the-secret-key"}}));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult result = (*provider)->Send(SampleMessage());

  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(result.error(),
              StartsWith("ses: HTTP 403 SignatureDoesNotMatch"));
  EXPECT_THAT(result.error(), Not(HasSubstr("not-the-secret-key")));
  EXPECT_FALSE(peer.Request(1)["sigv4"]["valid"]);
}

TEST(SesProviderTest, AddsConfigurationSetAndIdentityArn) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(
      peer, {{"configuration_set", "login-mail"},
             {"from_identity_arn",
              "arn:aws:ses:eu-west-1:123456789012:identity/example.com"}}));
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  const nlohmann::json body =
      nlohmann::json::parse(peer.Request(1)["body"].get<std::string>());
  EXPECT_EQ(body["ConfigurationSetName"], "login-mail");
  EXPECT_EQ(body["FromEmailAddressIdentityArn"],
            "arn:aws:ses:eu-west-1:123456789012:identity/example.com");
  EXPECT_TRUE(peer.Request(1)["sigv4"]["valid"]);
}

TEST(SesProviderTest, EncodesANonAsciiSenderName) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.from_name = "Zoë's Café";

  ASSERT_TRUE((*provider)->Send(message).ok());

  const nlohmann::json body =
      nlohmann::json::parse(peer.Request(1)["body"].get<std::string>());
  EXPECT_EQ(body["FromEmailAddress"],
            "=?UTF-8?B?Wm/DqydzIENhZsOp?= <no-reply@example.com>");
}

TEST(SesProviderTest, SendsRawMimeWhenTheMessageHasExtraHeaders) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.headers = {{"X-Entity-Ref-ID", "login-42"}};

  ASSERT_TRUE((*provider)->Send(message).ok());

  const nlohmann::json body =
      nlohmann::json::parse(peer.Request(1)["body"].get<std::string>());
  EXPECT_FALSE(body["Content"].contains("Simple"));
  std::string mime;
  ASSERT_TRUE(absl::Base64Unescape(
      body["Content"]["Raw"]["Data"].get<std::string>(), &mime));
  EXPECT_THAT(mime, HasSubstr("\r\nX-Entity-Ref-ID: login-42\r\n"));
  EXPECT_THAT(mime,
              HasSubstr("From: Example Login <no-reply@example.com>\r\n"));
  EXPECT_THAT(mime, HasSubstr("To: ada@example.org\r\n"));
  EXPECT_THAT(mime, HasSubstr("Content-Type: multipart/alternative;"));
  EXPECT_EQ(body["Destination"]["ToAddresses"][0], "ada@example.org");
}

TEST(SesProviderTest, SignsRawMailWithDkimWhenConfigured) {
  const std::string dir = testing::MakeTempDir("authcode-ses-dkim");
  const std::string key = dir + "/dkim.pem";
  ASSERT_EQ(std::system(absl::StrCat("openssl genpkey -algorithm ed25519 -out ",
                                     key, " 2>/dev/null")
                            .c_str()),
            0);
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(peer, {{"dkim_domain", "example.com"},
                                               {"dkim_selector", "mail"},
                                               {"dkim_key_file", key}}));
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  const nlohmann::json body =
      nlohmann::json::parse(peer.Request(1)["body"].get<std::string>());
  std::string mime;
  ASSERT_TRUE(absl::Base64Unescape(
      body["Content"]["Raw"]["Data"].get<std::string>(), &mime));
  EXPECT_THAT(mime, StartsWith("DKIM-Signature: v=1; a=ed25519-sha256;"));
  EXPECT_THAT(mime, HasSubstr(" d=example.com;"));
  EXPECT_THAT(mime, HasSubstr(" s=mail;"));
  EXPECT_EQ((*provider)->IdentityDomains(),
            std::vector<std::string>{"example.com"});
  std::filesystem::remove_all(dir);
}

TEST(SesProviderTest, MapsSesAnswers) {
  HttpPeer peer = SesPeer(
      {testing::Respond(400,
                        {{"x-amzn-ErrorType",
                          "MessageRejected:http://internal.amazon.com/"}},
                        R"({"message":"Email address is not verified."})"),
       testing::Respond(429, {{"Retry-After", "3"}},
                        R"({"message":"Maximum sending rate exceeded."})"),
       testing::Respond(503, {}, "")});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult rejected = (*provider)->Send(SampleMessage());
  const SendResult throttled = (*provider)->Send(SampleMessage());
  const SendResult unavailable = (*provider)->Send(SampleMessage());

  EXPECT_EQ(rejected.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(rejected.error(),
            "ses: HTTP 400 MessageRejected: message=Email address is not "
            "verified.");
  EXPECT_EQ(throttled.kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(throttled.retry_after(), absl::Seconds(3));
  EXPECT_EQ(unavailable.kind(), SendResult::Kind::kRetryable);
}

TEST(SesProviderTest, RefusesAHeaderInjectionBeforeSending) {
  HttpPeer peer = SesPeer();
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.subject = "Hi\r\nBcc: victim@example.net";

  const SendResult result = (*provider)->Send(message);

  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(result.error(), HasSubstr("Subject"));
  EXPECT_EQ(peer.Requests(), 0);
}

TEST(SesProviderTest, TakesCredentialsFromTheEnvironment) {
  HttpPeer peer = SesPeer();
  ScopedEnv env({{"AWS_ACCESS_KEY_ID", kKeyId},
                 {"AWS_SECRET_ACCESS_KEY", kSecret},
                 {"AWS_SESSION_TOKEN", kToken}});
  auto provider =
      MakeProvider({{"region", kRegion}, {"endpoint", peer.Url("")}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  EXPECT_TRUE(peer.Request(1)["sigv4"]["valid"]);
  EXPECT_EQ(HeadersOf(peer.Request(1)).at("x-amz-security-token"), kToken);
}

TEST(SesProviderTest, TakesCredentialsFromNamedVariablesAndFiles) {
  HttpPeer peer = SesPeer();
  const std::string dir = testing::MakeTempDir("authcode-ses-creds");
  testing::WriteFile(dir + "/secret", std::string(kSecret) + "\n");
  ScopedEnv env("MAIL_KEY_ID", kKeyId);
  auto provider = MakeProvider({{"region", kRegion},
                                {"endpoint", peer.Url("")},
                                {"access_key_id_env", "MAIL_KEY_ID"},
                                {"secret_access_key_file", dir + "/secret"}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  EXPECT_TRUE(peer.Request(1)["sigv4"]["valid"]);
  std::filesystem::remove_all(dir);
}

TEST(SesProviderTest, ReadsACredentialsFileAgainWhenItChanges) {
  HttpPeer peer = SesPeer();
  const std::string dir = testing::MakeTempDir("authcode-ses-creds");
  const std::string file = dir + "/credentials";
  testing::WriteFile(
      file,
      absl::StrCat("[default]\naws_access_key_id = OLDKEY\n"
                   "aws_secret_access_key = old\n\n"
                   "[mail]\naws_access_key_id = ",
                   kKeyId, "\naws_secret_access_key = ", "stale-secret\n"));
  auto provider = MakeProvider({{"region", kRegion},
                                {"endpoint", peer.Url("")},
                                {"credentials_file", file},
                                {"profile", "mail"}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  EXPECT_EQ((*provider)->Send(SampleMessage()).kind(),
            SendResult::Kind::kPermanent)
      << "the stale secret must be refused";
  // An outside agent rotates the credentials (a new file moved in place).
  testing::WriteFile(file + ".new",
                     absl::StrCat("[mail]\naws_access_key_id=", kKeyId,
                                  "\naws_secret_access_key=", kSecret,
                                  "\naws_session_token=", kToken, "\n"));
  std::filesystem::rename(file + ".new", file);
  const SendResult result = (*provider)->Send(SampleMessage());

  EXPECT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_TRUE(peer.Request(2)["sigv4"]["valid"]);
  EXPECT_EQ(HeadersOf(peer.Request(2)).at("x-amz-security-token"), kToken);
  std::filesystem::remove_all(dir);
}

TEST(SesProviderTest, RefusesBadSettingsNamingTheKey) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{{"access_key_id", kKeyId}, {"secret_access_key", kSecret}},
           "providers.ses.region: required"},
          {{{"region", "EU West"},
            {"access_key_id", kKeyId},
            {"secret_access_key", kSecret}},
           "providers.ses.region:"},
          {{{"region", kRegion}, {"access_key_id", kKeyId}},
           "providers.ses.secret_access_key:"},
          {{{"region", kRegion}, {"session_token", kToken}},
           "providers.ses.session_token:"},
          {{{"region", kRegion},
            {"access_key_id", kKeyId},
            {"secret_access_key", kSecret},
            {"credentials_file", "/tmp/x"}},
           "providers.ses.credentials_file:"},
          {{{"region", kRegion}, {"credentials_file", "/nonexistent/creds"}},
           "providers.ses.credentials_file:"},
          {{{"region", kRegion}}, "providers.ses.access_key_id: no AWS"},
          {{{"region", kRegion},
            {"access_key_id", kKeyId},
            {"secret_access_key", kSecret},
            {"content", "fancy"}},
           "providers.ses.content:"},
          {{{"region", kRegion},
            {"access_key_id", kKeyId},
            {"secret_access_key", kSecret},
            {"endpoint", "http://email.eu-west-1.amazonaws.com"}},
           "providers.ses.endpoint: plain http"},
          {{{"region", kRegion},
            {"access_key_id", kKeyId},
            {"secret_access_key", kSecret},
            {"sender", "x"}},
           "providers.ses.sender: unknown setting"},
      };
  for (const auto& [values, expected] : cases) {
    const absl::Status status = MakeProvider(values).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << expected;
    EXPECT_THAT(status.message(), HasSubstr(expected));
    EXPECT_THAT(status.message(), Not(HasSubstr(kSecret)));
  }
}

TEST(SesProviderTest, DefaultsToTheRegionalEndpoint) {
  absl::StatusOr<SesProviderConfig> config = ParseSesConfig(
      ProviderSettings("providers.ses", {{"region", "ap-southeast-2"},
                                         {"access_key_id", kKeyId},
                                         {"secret_access_key", kSecret}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->http.base_url,
            "https://email.ap-southeast-2.amazonaws.com");
}

TEST(AwsCredentialsFileTest, ReadsTheNamedProfile) {
  absl::StatusOr<sigv4::Credentials> credentials = ParseAwsCredentialsFile(
      "# comment\n[default]\naws_access_key_id=A\naws_secret_access_key=B\n"
      "[mail]\r\n  aws_access_key_id = C \r\naws_secret_access_key= D\r\n"
      "aws_session_token =E\r\n",
      "mail");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "C");
  EXPECT_EQ(credentials->secret_access_key, "D");
  EXPECT_EQ(credentials->session_token, "E");
}

TEST(AwsCredentialsFileTest, NamesWhatIsMissing) {
  EXPECT_THAT(ParseAwsCredentialsFile("[default]\n", "mail").status().message(),
              HasSubstr("profile [mail] not found"));
  EXPECT_THAT(ParseAwsCredentialsFile("[mail]\naws_access_key_id=A\n", "mail")
                  .status()
                  .message(),
              HasSubstr("no aws_secret_access_key"));
}

}  // namespace
}  // namespace authcode::providers
