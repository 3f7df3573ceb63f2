#include "providers/mailgun/mailgun_provider.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr char kApiKey[] = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
// base64("api:" + kApiKey), worked out apart from the code under test.
constexpr char kBasicCredentials[] =
    "YXBpOmtleS0zYXg2eG5qcDI5amQ2ZmRzNGdjMzczc2d2anh0ZW9sMA==";

std::string Queued() {
  return Respond(200, {{"Content-Type", "application/json"}},
                 R"({"id":"<20240502104107.1.5C3F@mg.example.com>",)"
                 R"("message":"Queued. Thank you."})");
}

absl::StatusOr<std::unique_ptr<Provider>> MakeProvider(
    std::map<std::string, std::string> values) {
  ProviderRegistry registry;
  RegisterMailgunProvider(registry);
  return registry.Create(
      "mailgun", ProviderSettings("providers.mailgun", std::move(values)));
}

std::map<std::string, std::string> Settings(
    const HttpPeer& peer, std::map<std::string, std::string> extra = {}) {
  extra.emplace("domain", "mg.example.com");
  extra.emplace("api_key", kApiKey);
  extra.emplace("endpoint", peer.Url(""));
  return extra;
}

// A form body's fields, decoded here independently of the encoder.
Fields FormFields(const std::string& body) {
  const auto decode = [](absl::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      int byte = 0;
      if (text[i] == '+') {
        out += ' ';
      } else if (text[i] == '%' && i + 2 < text.size() &&
                 absl::SimpleHexAtoi(text.substr(i + 1, 2), &byte)) {
        out += static_cast<char>(byte);
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  };
  Fields fields;
  for (absl::string_view field : absl::StrSplit(body, '&')) {
    const std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(field, absl::MaxSplits('=', 1));
    fields.emplace_back(decode(kv.first), decode(kv.second));
  }
  return fields;
}

TEST(MailgunProviderTest, SendsTheMessagesRequestExactly) {
  HttpPeer peer({"--respond", Queued()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  const SendResult result = (*provider)->Send(SampleMessage());

  ASSERT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(result.message_id(), "20240502104107.1.5C3F@mg.example.com");
  const nlohmann::json request = peer.Request(1);
  EXPECT_EQ(request["method"], "POST");
  EXPECT_EQ(request["target"], "/v3/mg.example.com/messages");
  const auto headers = HeadersOf(request);
  EXPECT_EQ(headers.at("authorization"),
            absl::StrCat("Basic ", kBasicCredentials));
  EXPECT_EQ(headers.at("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(request["body"],
            "from=Example+Login+%3Cno-reply%40example.com%3E"
            "&to=ada%40example.org"
            "&subject=Your+code"
            "&text=Your+code+is+123456."
            "&html=%3Cp%3EYour+code+is+%3Cb%3E123456%3C%2Fb%3E.%3C%2Fp%3E"
            "&v%3Aauthcode_delivery_id=42");
}

TEST(MailgunProviderTest, AddsHeadersAndTagAndKeepsEveryByte) {
  HttpPeer peer({"--respond", Queued()});
  auto provider = MakeProvider(Settings(peer, {{"tag", "login codes"}}));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message message = SampleMessage();
  message.from_name = "Anmeldung & Konto";
  message.subject = "Dein Code für 100% Sicherheit + mehr=gut";
  message.text = "Zeile 1\r\nZeile 2 ~*";
  message.headers = {{"X-Entity-Ref-ID", "login-42"},
                     {"List-Unsubscribe", "<mailto:unsub@example.com>"}};

  ASSERT_TRUE((*provider)->Send(message).ok());

  EXPECT_THAT(
      FormFields(peer.Request(1)["body"].get<std::string>()),
      ElementsAre(
          Pair("from", "Anmeldung & Konto <no-reply@example.com>"),
          Pair("to", "ada@example.org"),
          Pair("subject", "Dein Code für 100% Sicherheit + mehr=gut"),
          Pair("text", "Zeile 1\r\nZeile 2 ~*"), Pair("html", message.html),
          Pair("h:X-Entity-Ref-ID", "login-42"),
          Pair("h:List-Unsubscribe", "<mailto:unsub@example.com>"),
          Pair("v:authcode_delivery_id", "42"), Pair("o:tag", "login codes")));
}

TEST(MailgunProviderTest, FormEncodesLikeABrowser) {
  EXPECT_EQ(FormUrlEncode({{"a b", "c&d=e+f%g/ü\r\n*-._~"}, {"empty", ""}}),
            "a+b=c%26d%3De%2Bf%25g%2F%C3%BC%0D%0A*-._%7E&empty=");
  EXPECT_EQ(FormUrlEncode({}), "");
}

TEST(MailgunProviderTest, MapsMailgunsAnswers) {
  const nlohmann::json json_type = {{"Content-Type", "application/json"}};
  HttpPeer peer(
      {"--respond",
       Respond(400, json_type,
               R"({"message":"'to' parameter is not a valid address. )"
               R"(please check documentation"})"),
       "--respond",
       Respond(401, {{"Content-Type", "text/plain"}},
               absl::StrCat("Forbidden: ", kApiKey, " ", kBasicCredentials)),
       "--respond",
       Respond(404, json_type,
               R"({"message":"Domain not found: mg.example.com"})"),
       "--respond",
       Respond(429, {{"Retry-After", "5"}},
               R"({"message":"Too many requests"})"),
       "--respond", Respond(502, {}, "Bad Gateway")});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();

  std::vector<SendResult> results;
  for (int i = 0; i < 5; ++i) {
    results.push_back((*provider)->Send(SampleMessage()));
  }

  EXPECT_EQ(results[0].kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(results[0].error(),
            "mailgun: HTTP 400: message='to' parameter is not a valid "
            "address. please check documentation");
  EXPECT_EQ(results[1].kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(results[1].error(),
            "mailgun: HTTP 401: Forbidden: [redacted] [redacted]");
  EXPECT_EQ(results[2].kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(results[2].error(),
            "mailgun: HTTP 404: message=Domain not found: mg.example.com");
  EXPECT_EQ(results[3].kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(results[3].retry_after(), absl::Seconds(5));
  EXPECT_EQ(results[4].kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(results[4].error(), "mailgun: HTTP 502: Bad Gateway");
}

TEST(MailgunProviderTest, RefusesAHeaderInjectionBeforeSending) {
  HttpPeer peer({"--respond", Queued()});
  auto provider = MakeProvider(Settings(peer));
  ASSERT_TRUE(provider.ok()) << provider.status();
  Message injected_name = SampleMessage();
  injected_name.from_name = "Support\r\nBcc: victim@example.net";
  Message injected_header = SampleMessage();
  injected_header.headers = {{"X-Ref", "1\nBcc: victim@example.net"}};
  Message injected_to = SampleMessage();
  injected_to.to_address = "ada@example.org\r\nBcc: victim@example.net";

  const SendResult name = (*provider)->Send(injected_name);
  const SendResult header = (*provider)->Send(injected_header);
  const SendResult to = (*provider)->Send(injected_to);

  EXPECT_EQ(name.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(name.error(), HasSubstr("nothing was sent"));
  EXPECT_EQ(header.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(to.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(peer.Requests(), 0);
}

// Through an HTTPS proxy (the test peer, which records the CONNECT and
// refuses it), the provider shows which host it would have reached.
std::string HostReached(std::map<std::string, std::string> values) {
  HttpPeer proxy;
  ScopedEnv env("https_proxy", proxy.Url(""));
  values["domain"] = "mg.example.com";
  values["api_key"] = kApiKey;
  auto provider = MakeProvider(values);
  EXPECT_TRUE(provider.ok()) << provider.status();
  if (!provider.ok()) return "";
  EXPECT_EQ((*provider)->Send(SampleMessage()).kind(),
            SendResult::Kind::kRetryable);
  return proxy.Requests() == 1 ? proxy.Request(1)["target"].get<std::string>()
                               : "";
}

TEST(MailgunProviderTest, ReachesTheUsOrTheEuEndpoint) {
  EXPECT_EQ(HostReached({}), "api.mailgun.net:443");
  EXPECT_EQ(HostReached({{"region", "us"}}), "api.mailgun.net:443");
  EXPECT_EQ(HostReached({{"region", "eu"}}), "api.eu.mailgun.net:443");
}

TEST(MailgunProviderTest, NamesTheDomainInLowerCase) {
  HttpPeer peer({"--respond", Queued()});
  auto provider = MakeProvider({{"domain", "MG.Example.COM"},
                                {"api_key", kApiKey},
                                {"endpoint", peer.Url("")}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  EXPECT_EQ(peer.Request(1)["target"], "/v3/mg.example.com/messages");
  EXPECT_EQ((*provider)->IdentityDomains(),
            std::vector<std::string>{"mg.example.com"});
}

TEST(MailgunProviderTest, ReadsTheKeyFromTheEnvironment) {
  HttpPeer peer({"--respond", Queued()});
  ScopedEnv env("MAILGUN_API_KEY", kApiKey);
  auto provider = MakeProvider({{"domain", "mg.example.com"},
                                {"api_key_env", "MAILGUN_API_KEY"},
                                {"endpoint", peer.Url("")}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  ASSERT_TRUE((*provider)->Send(SampleMessage()).ok());

  EXPECT_EQ(HeadersOf(peer.Request(1)).at("authorization"),
            absl::StrCat("Basic ", kBasicCredentials));
}

TEST(MailgunProviderTest, RefusesBadSettingsNamingTheKey) {
  const auto with_key = [](std::map<std::string, std::string> values) {
    values.emplace("api_key", kApiKey);
    values.emplace("domain", "mg.example.com");
    return values;
  };
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{{"api_key", kApiKey}}, "providers.mailgun.domain: required"},
          {{{"domain", "mg.example.com"}},
           "providers.mailgun.api_key: required"},
          {with_key({{"domain", "mg.example.com/../v4"}}),
           "providers.mailgun.domain: must be a DNS name"},
          {with_key({{"domain", "mg.example.com?x=1"}}),
           "providers.mailgun.domain:"},
          {with_key({{"domain", "localhost"}}), "providers.mailgun.domain:"},
          {with_key({{"domain", "-mg.example.com"}}),
           "providers.mailgun.domain:"},
          {with_key({{"domain", "mg..example.com"}}),
           "providers.mailgun.domain:"},
          {with_key({{"region", "EU"}}), "providers.mailgun.region:"},
          {with_key({{"tag", "anmeldung-\xc3\xbc"}}), "providers.mailgun.tag:"},
          {with_key({{"tag", std::string(129, 't')}}),
           "providers.mailgun.tag: must be printable ASCII, at most 128"},
          {with_key({{"endpoint", "https://api.mailgun.net/v3"}}),
           "providers.mailgun.endpoint:"},
          {with_key({{"domains", "mg.example.com"}}),
           "providers.mailgun.domains: unknown setting"},
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
