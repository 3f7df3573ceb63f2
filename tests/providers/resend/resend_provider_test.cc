#include "providers/resend/resend_provider.h"

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

constexpr char kApiKey[] = "re_Fk29xQ7b_test4Jd8sLq1ZpW";
constexpr char kEmailId[] = "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794";

std::string Accepted() {
  return Respond(200, {{"Content-Type", "application/json"}},
                 absl::StrCat(R"({"id":")", kEmailId, R"("})"));
}

// Resend's error body: {"statusCode", "message", "name"}.
std::string Refused(int status, const std::string& name,
                    const std::string& message) {
  return Respond(
      status, {{"Content-Type", "application/json"}},
      nlohmann::json(
          {{"statusCode", status}, {"message", message}, {"name", name}})
          .dump());
}

absl::StatusOr<std::unique_ptr<Provider>> MakeProvider(
    std::map<std::string, std::string> values) {
  ProviderRegistry registry;
  RegisterResendProvider(registry);
  return registry.Create(
      "resend", ProviderSettings("providers.resend", std::move(values)));
}

std::map<std::string, std::string> Settings(const HttpPeer& peer) {
  return {{"api_key", kApiKey}, {"endpoint", peer.Url("")}};
}

nlohmann::json BodyOf(const nlohmann::json& request) {
  return nlohmann::json::parse(request["body"].get<std::string>());
}

TEST(ResendProviderTest, SendsTheEmailsRequestExactly) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult result = (*provider)->Send(SampleMessage());

  ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(result.message_id(), kEmailId);
  const nlohmann::json request = peer.Request(1);
  EXPECT_EQ(request["method"], "POST");
  EXPECT_EQ(request["target"], "/emails");
  const auto headers = HeadersOf(request);
  EXPECT_EQ(headers.at("authorization"), absl::StrCat("Bearer ", kApiKey));
  EXPECT_EQ(headers.at("content-type"), "application/json");
  EXPECT_EQ(headers.at("idempotency-key"), "authcode-42");
  EXPECT_EQ(BodyOf(request), nlohmann::json::parse(R"({
              "from": "Example Login <no-reply@example.com>",
              "to": ["ada@example.org"],
              "subject": "Your code",
              "text": "Your code is 123456.",
              "html": "<p>Your code is <b>123456</b>.</p>",
              "tags": [{"name": "authcode_delivery_id", "value": "42"}]
            })"));
}

TEST(ResendProviderTest, AddsHeadersAndKeepsTheTagToResendsAlphabet) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.from_name.clear();
  message.headers = {{"X-Entity-Ref-ID", "login-42"},
                     {"List-Unsubscribe", "<mailto:unsub@example.com>"}};
  message.delivery_id = "login/42.7";

  ASSERT_TRUE((*provider)->Send(message).ok());

  const nlohmann::json request = peer.Request(1);
  const nlohmann::json body = BodyOf(request);
  EXPECT_EQ(body["from"], "no-reply@example.com");
  EXPECT_EQ(body["headers"], nlohmann::json::parse(R"({
              "X-Entity-Ref-ID": "login-42",
              "List-Unsubscribe": "<mailto:unsub@example.com>"})"));
  EXPECT_EQ(body["tags"][0]["value"], "login_42_7");
  EXPECT_EQ(HeadersOf(request).at("idempotency-key"), "authcode-login/42.7")
      << "the key keeps the id as it is, so two ids never share one";
}

TEST(ResendProviderTest, SendsNoIdempotencyKeyWithoutAUsableId) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message no_id = SampleMessage();
  no_id.delivery_id.clear();
  Message long_id = SampleMessage();
  long_id.delivery_id = std::string(300, '7');
  Message spaced_id = SampleMessage();
  spaced_id.delivery_id = "4 2";

  ASSERT_TRUE((*provider)->Send(no_id).ok());
  ASSERT_TRUE((*provider)->Send(long_id).ok());
  ASSERT_TRUE((*provider)->Send(spaced_id).ok());

  EXPECT_EQ(HeadersOf(peer.Request(1)).count("idempotency-key"), 0u);
  EXPECT_FALSE(BodyOf(peer.Request(1)).contains("tags"));
  EXPECT_EQ(HeadersOf(peer.Request(2)).count("idempotency-key"), 0u);
  EXPECT_EQ(BodyOf(peer.Request(2))["tags"][0]["value"], std::string(256, '7'));
  EXPECT_EQ(HeadersOf(peer.Request(3)).count("idempotency-key"), 0u);
  EXPECT_EQ(BodyOf(peer.Request(3))["tags"][0]["value"], "4_2");
}

// What the key is for: the retry of a send that failed is the same
// request with the same key, which Resend answers without a second mail.
TEST(ResendProviderTest, ARetryCarriesTheSameKeyAndBody) {
  HttpPeer peer({"--respond", Respond(503, {}, ""), "--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  EXPECT_EQ((*provider)->Send(SampleMessage()).kind(),
            SendResult::Kind::kRetryable);
  EXPECT_TRUE((*provider)->Send(SampleMessage()).ok());

  ASSERT_EQ(peer.Requests(), 2);
  EXPECT_EQ(HeadersOf(peer.Request(1)).at("idempotency-key"),
            HeadersOf(peer.Request(2)).at("idempotency-key"));
  EXPECT_EQ(peer.Request(1)["body"], peer.Request(2)["body"]);
}

TEST(ResendProviderTest, MapsResendsAnswers) {
  HttpPeer peer(
      {"--respond",
       Refused(422, "validation_error",
               "Invalid `to` field. The email address needs to follow the "
               "`email@example.com` or `Name <email@example.com>` format."),
       "--respond",
       Refused(403, "validation_error",
               "The example.com domain is not verified."),
       "--respond",
       Refused(401, "validation_error",
               absl::StrCat("API key ", kApiKey, " is invalid")),
       "--respond",
       Refused(409, "concurrent_idempotent_requests",
               "Same idempotency key used while original request is still "
               "in progress."),
       "--respond",
       Refused(409, "invalid_idempotent_request",
               "Same idempotency key used with a different request payload."),
       "--respond",
       Respond(429, {{"Retry-After", "2"}},
               nlohmann::json({{"statusCode", 429},
                               {"message", "Too many requests."},
                               {"name", "rate_limit_exceeded"}})
                   .dump()),
       "--respond", Refused(500, "internal_server_error", "Unexpected")});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  std::vector<SendResult> results;
  for (int i = 0; i < 7; ++i) {
    results.push_back((*provider)->Send(SampleMessage()));
  }

  EXPECT_EQ(results[0].kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(results[0].error(),
            "resend: HTTP 422: message=Invalid `to` field. The email address "
            "needs to follow the `email@example.com` or `Name "
            "<email@example.com>` format.; name=validation_error");
  EXPECT_EQ(results[1].kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(results[1].error(), HasSubstr("HTTP 403: message=The example"));
  EXPECT_EQ(results[2].kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(results[2].error(), Not(HasSubstr(kApiKey)));
  EXPECT_EQ(results[3].kind(), SendResult::Kind::kRetryable)
      << "the first send with the key is still running: ask again later";
  EXPECT_THAT(results[3].error(),
              HasSubstr("HTTP 409: message=Same idempotency key used while"));
  EXPECT_EQ(results[4].kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(results[5].kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(results[5].retry_after(), absl::Seconds(2));
  EXPECT_EQ(results[6].kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(results[6].error(),
            "resend: HTTP 500: message=Unexpected; name=internal_server_error");
}

TEST(ResendProviderTest, RefusesAHeaderInjectionBeforeSending) {
  HttpPeer peer({"--respond", Accepted()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message injected_subject = SampleMessage();
  injected_subject.subject = "Your code\r\nBcc: victim@example.net";
  Message injected_header = SampleMessage();
  injected_header.headers = {{"X-Ref\r\nBcc", "victim@example.net"}};

  const SendResult subject = (*provider)->Send(injected_subject);
  const SendResult header = (*provider)->Send(injected_header);

  EXPECT_EQ(subject.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(subject.error(), HasSubstr("nothing was sent"));
  EXPECT_EQ(header.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(peer.Requests(), 0);
}

// Through an HTTPS proxy (the test peer, which records the CONNECT and
// refuses it), the provider shows which host it would have reached.
TEST(ResendProviderTest, ReachesResendsApiByDefault) {
  HttpPeer proxy;
  ScopedEnv env("https_proxy", proxy.Url(""));
  auto provider = MakeProvider({{"api_key", kApiKey}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  EXPECT_EQ((*provider)->Send(SampleMessage()).kind(),
            SendResult::Kind::kRetryable);

  ASSERT_EQ(proxy.Requests(), 1);
  EXPECT_EQ(proxy.Request(1)["target"], "api.resend.com:443");
}

TEST(ResendProviderTest, ReadsTheKeyFromTheEnvironment) {
  HttpPeer peer({"--respond", Accepted()});
  ScopedEnv env("RESEND_API_KEY", kApiKey);
  auto provider = MakeProvider(
      {{"api_key_env", "RESEND_API_KEY"}, {"endpoint", peer.Url("")}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  EXPECT_EQ(HeadersOf(peer.Request(1)).at("authorization"),
            absl::StrCat("Bearer ", kApiKey));
}

TEST(ResendProviderTest, RefusesBadSettingsNamingTheKey) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{}, "providers.resend.api_key: required"},
          {{{"api_key_env", "AUTHCODE_TEST_UNSET_RESEND_KEY"}},
           "providers.resend.api_key_env: the environment variable"},
          {{{"api_key", kApiKey}, {"api_key_file", "/run/secrets/resend"}},
           "providers.resend.api_key: set only one"},
          {{{"api_key", kApiKey}, {"timeout", "forever"}},
           "providers.resend.timeout:"},
          {{{"api_key", kApiKey}, {"tag", "login"}},
           "providers.resend.tag: unknown setting"},
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
