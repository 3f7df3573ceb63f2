#include "providers/postmark/postmark_provider.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/providers/http/http_peer.h"
#include "tests/providers/sample_message.h"
#include "tests/support/scoped_env.h"

namespace authcode::providers {
namespace {

using ::authcode::testing::HeadersOf;
using ::authcode::testing::HttpPeer;
using ::authcode::testing::Respond;
using ::authcode::testing::SampleMessage;
using ::authcode::testing::ScopedEnv;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "7f3c2a1e-pm-server-token-9b8d";

// Postmark's answer to an accepted mail.
std::string Accepted() {
  return Respond(200, {{"Content-Type", "application/json"}},
                 R"({"To":"ada@example.org",)"
                 R"("SubmittedAt":"2024-05-02T10:41:07.1234567-04:00",)"
                 R"("MessageID":"b7bc2f4a-e38e-4336-af7d-e6c392c2f817",)"
                 R"("ErrorCode":0,"Message":"OK"})");
}

absl::StatusOr<std::unique_ptr<Provider>> MakeProvider(
    std::map<std::string, std::string> values) {
  ProviderRegistry registry;
  RegisterPostmarkProvider(registry);
  return registry.Create(
      "postmark", ProviderSettings("providers.postmark", std::move(values)));
}

std::map<std::string, std::string> Settings(
    const HttpPeer& peer, std::map<std::string, std::string> extra = {}) {
  extra.emplace("server_token", kToken);
  extra.emplace("endpoint", peer.Url(""));
  return extra;
}

nlohmann::json BodyOf(const nlohmann::json& request) {
  return nlohmann::json::parse(request["body"].get<std::string>());
}

TEST(PostmarkProviderTest, SendsTheEmailRequestExactly) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult result = (*provider)->Send(SampleMessage());

  ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(result.message_id(), "b7bc2f4a-e38e-4336-af7d-e6c392c2f817");
  const nlohmann::json request = peer.Request(1);
  EXPECT_EQ(request["method"], "POST");
  EXPECT_EQ(request["target"], "/email");
  const auto headers = HeadersOf(request);
  EXPECT_EQ(headers.at("x-postmark-server-token"), kToken);
  EXPECT_EQ(headers.at("accept"), "application/json");
  EXPECT_EQ(headers.at("content-type"), "application/json");
  EXPECT_EQ(headers.count("authorization"), 0u);
  EXPECT_EQ(BodyOf(request), nlohmann::json::parse(R"({
              "From": "Example Login <no-reply@example.com>",
              "To": "ada@example.org",
              "Subject": "Your code",
              "TextBody": "Your code is 123456.",
              "HtmlBody": "<p>Your code is <b>123456</b>.</p>",
              "MessageStream": "outbound",
              "Metadata": {"authcode_delivery_id": "42"}
            })"));
}

TEST(PostmarkProviderTest, AddsHeadersTagAndStream) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(
      Settings(peer, {{"message_stream", "login-codes"}, {"tag", "login"}}));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.from_name.clear();
  message.headers = {{"X-Entity-Ref-ID", "login-42"},
                     {"List-Unsubscribe", "<mailto:unsub@example.com>"}};
  message.delivery_id.clear();

  ASSERT_TRUE((*provider)->Send(message).ok());

  const nlohmann::json body = BodyOf(peer.Request(1));
  EXPECT_EQ(body["From"], "no-reply@example.com");
  EXPECT_EQ(body["MessageStream"], "login-codes");
  EXPECT_EQ(body["Tag"], "login");
  EXPECT_EQ(body["Headers"], nlohmann::json::parse(R"([
              {"Name": "X-Entity-Ref-ID", "Value": "login-42"},
              {"Name": "List-Unsubscribe",
               "Value": "<mailto:unsub@example.com>"}])"));
  EXPECT_FALSE(body.contains("Metadata")) << "no delivery id, no metadata";
}

// Postmark wants a display name with punctuation quoted, or it refuses the
// From address (ErrorCode 300).
TEST(PostmarkProviderTest, QuotesADisplayNameWithPunctuation) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.from_name = "Example, Inc.";

  ASSERT_TRUE((*provider)->Send(message).ok());

  EXPECT_EQ(BodyOf(peer.Request(1))["From"],
            "\"Example, Inc.\" <no-reply@example.com>");
}

TEST(PostmarkProviderTest, MapsPostmarksAnswers) {
  const nlohmann::json json_type = {{"Content-Type", "application/json"}};
  HttpPeer peer(
      {"--respond",
       Respond(422, json_type,
               R"({"ErrorCode":300,"Message":"Invalid 'From' address: )"
               R"('no-reply@example.com' is not a verified sender )"
               R"(signature."})"),
       "--respond",
       Respond(422, json_type,
               R"({"ErrorCode":406,"Message":"You tried to send to )"
               R"(recipient(s) that have been marked as inactive."})"),
       "--respond",
       Respond(401, json_type,
               absl::StrCat(R"({"ErrorCode":10,"Message":"The token )", kToken,
                            R"( is not a valid Server token."})")),
       "--respond",
       Respond(429, {{"Retry-After", "30"}},
               R"({"ErrorCode":429,"Message":"Rate limit exceeded."})"),
       "--respond", Respond(500, json_type, R"({"Message":"Internal"})"),
       "--respond", Respond(503, {}, "")});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  std::vector<SendResult> results;
  for (int i = 0; i < 6; ++i)
    results.push_back((*provider)->Send(SampleMessage()));

  EXPECT_EQ(results[0].kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(results[0].error(),
            "postmark: HTTP 422: ErrorCode=300; Message=Invalid 'From' "
            "address: 'no-reply@example.com' is not a verified sender "
            "signature.");
  EXPECT_EQ(results[1].kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(results[1].error(), HasSubstr("ErrorCode=406"));
  EXPECT_EQ(results[2].kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(results[2].error(), HasSubstr("HTTP 401: ErrorCode=10"));
  EXPECT_THAT(results[2].error(), Not(HasSubstr(kToken)));
  EXPECT_EQ(results[3].kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(results[3].retry_after(), absl::Seconds(30));
  EXPECT_EQ(results[4].kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(results[4].error(), "postmark: HTTP 500: Message=Internal");
  EXPECT_EQ(results[5].kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(results[5].error(), "postmark: HTTP 503");
}

TEST(PostmarkProviderTest, RefusesAHeaderInjectionBeforeSending) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message injected_name = SampleMessage();
  injected_name.from_name = "Support\r\nBcc: victim@example.net";
  Message injected_header = SampleMessage();
  injected_header.headers = {{"X-Ref", "1\r\nBcc: victim@example.net"}};

  const SendResult name = (*provider)->Send(injected_name);
  const SendResult header = (*provider)->Send(injected_header);

  EXPECT_EQ(name.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(name.error(), HasSubstr("nothing was sent"));
  EXPECT_EQ(header.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(peer.Requests(), 0);
}

// Through an HTTPS proxy (the test peer, which records the CONNECT and
// refuses it), the provider shows which host it would have reached.
TEST(PostmarkProviderTest, ReachesPostmarksApiByDefault) {
  HttpPeer proxy;
  ScopedEnv env("https_proxy", proxy.Url(""));
  auto provider = MakeProvider({{"server_token", kToken}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  EXPECT_EQ((*provider)->Send(SampleMessage()).kind(),
            SendResult::Kind::kRetryable);

  ASSERT_EQ(proxy.Requests(), 1);
  EXPECT_EQ(proxy.Request(1)["target"], "api.postmarkapp.com:443");
}

TEST(PostmarkProviderTest, ReadsTheTokenFromTheEnvironment) {
  HttpPeer peer({"--respond", Accepted()});
  ScopedEnv env("POSTMARK_SERVER_TOKEN", kToken);
  auto provider = MakeProvider({{"server_token_env", "POSTMARK_SERVER_TOKEN"},
                                {"endpoint", peer.Url("")}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  EXPECT_EQ(HeadersOf(peer.Request(1)).at("x-postmark-server-token"), kToken);
}

TEST(PostmarkProviderTest, RefusesBadSettingsNamingTheKey) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{}, "providers.postmark.server_token: required"},
          {{{"server_token", kToken}, {"server_token_env", "PM_TOKEN"}},
           "providers.postmark.server_token: set only one"},
          {{{"server_token", kToken}, {"message_stream", "out bound"}},
           "providers.postmark.message_stream:"},
          {{{"server_token", kToken}, {"message_stream", ""}},
           "providers.postmark.message_stream:"},
          {{{"server_token", kToken}, {"tag", "login\ncodes"}},
           "providers.postmark.tag:"},
          {{{"server_token", kToken}, {"tag", std::string(1001, 'x')}},
           "providers.postmark.tag: must be at most 1000"},
          {{{"server_token", kToken}, {"endpoint", "http://postmark.example"}},
           "providers.postmark.endpoint:"},
          {{{"server_token", kToken}, {"api_key", kToken}},
           "providers.postmark.api_key: unknown setting"},
      };
  for (const auto& [values, expected] : cases) {
    const absl::Status status = MakeProvider(values).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << expected;
    EXPECT_THAT(status.message(), HasSubstr(expected));
    EXPECT_THAT(status.message(), Not(HasSubstr(kToken)));
  }
}

}  // namespace
}  // namespace authcode::providers
