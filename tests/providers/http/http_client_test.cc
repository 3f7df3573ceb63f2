#include "providers/http/http_client.h"

#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/http/http_response.h"
#include "tests/providers/http/http_peer.h"
#include "tests/support/peer_process.h"
#include "tests/support/scoped_env.h"

namespace authcode::providers::http {
namespace {

using ::authcode::testing::HttpPeer;
using ::authcode::testing::ScopedEnv;
using ::testing::HasSubstr;
using ::testing::Not;

std::string NoMessageId(const HttpResponse&) { return "id"; }

HttpSettings LocalSettings(const HttpPeer& peer) {
  HttpSettings settings;
  settings.base_url = peer.Url("");
  settings.timeout = absl::Seconds(5);
  return settings;
}

HttpRequest Post(const HttpPeer& peer, std::string body = "{}") {
  HttpRequest request;
  request.url = peer.Url("/v1/send");
  request.headers = {{"Content-Type", "application/json"},
                     {"X-Test", "one two"}};
  request.body = std::move(body);
  return request;
}

SendResult Exchange(const HttpPeer& peer, HttpSettings settings,
                    std::vector<std::string> secrets = {}) {
  HttpClient client(std::move(settings));
  return ToSendResult("test", client.Send(Post(peer)), NoMessageId, secrets);
}

TEST(HttpClientTest, SendsTheRequestAsGivenAndReadsTheAnswer) {
  HttpPeer peer({"--respond", testing::Respond(201, {{"X-Message-Id", "m-1"}},
                                               R"({"ok":true})")});
  HttpClient client(LocalSettings(peer));

  absl::StatusOr<HttpResponse> response =
      client.Send(Post(peer, R"({"to":"ada@example.com"})"));

  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, R"({"ok":true})");
  EXPECT_EQ(response->Header("x-message-id"), "m-1");
  const nlohmann::json got = peer.Request(1);
  EXPECT_EQ(got["method"], "POST");
  EXPECT_EQ(got["target"], "/v1/send");
  EXPECT_EQ(got["body"], R"({"to":"ada@example.com"})");
  std::map<std::string, std::string> headers;
  for (const auto& pair : got["headers"]) {
    headers[absl::AsciiStrToLower(pair[0].get<std::string>())] = pair[1];
  }
  EXPECT_EQ(headers["content-type"], "application/json");
  EXPECT_EQ(headers["x-test"], "one two");
  EXPECT_EQ(headers["content-length"], "24");
  EXPECT_EQ(headers.count("expect"), 0u) << "no 100-continue round trip";
}

TEST(HttpClientTest, ReusesOneConnectionForSequentialSends) {
  HttpPeer peer;
  HttpClient client(LocalSettings(peer));

  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<HttpResponse> response = client.Send(Post(peer));
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200);
  }

  EXPECT_EQ(peer.Requests(), 100);
  EXPECT_EQ(peer.Connections(), 1);
  EXPECT_EQ(client.ConnectionsOpened(), 1);
}

TEST(HttpClientTest, HoldsAboutOneConnectionPerSendingThread) {
  HttpPeer peer;
  HttpClient client(LocalSettings(peer));

  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        absl::StatusOr<HttpResponse> response = client.Send(Post(peer));
        if (response.ok() && response->status == 200) ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(peer.Requests(), 100);
  EXPECT_LE(peer.Connections(), 4);
}

TEST(HttpClientTest, SuccessIsSent) {
  HttpPeer peer({"--respond", testing::Respond(200)});
  const SendResult result = Exchange(peer, LocalSettings(peer));
  EXPECT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(result.message_id(), "id");
}

TEST(HttpClientTest, BadRequestIsPermanentWithTheReason) {
  HttpPeer peer(
      {"--respond", testing::Respond(400, {},
                                     R"({"errors":[{"message":"bad from",)"
                                     R"("field":"from.email"}]})")});
  const SendResult result = Exchange(peer, LocalSettings(peer));
  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_EQ(result.error(),
            "test: HTTP 400: message=bad from; field=from.email");
}

TEST(HttpClientTest, ForbiddenIsPermanent) {
  HttpPeer peer(
      {"--respond", testing::Respond(403, {}, R"({"message":"denied"})")});
  const SendResult result = Exchange(peer, LocalSettings(peer));
  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(result.error(), HasSubstr("HTTP 403: message=denied"));
}

TEST(HttpClientTest, TooManyRequestsRetriesAfterTheGivenDelay) {
  HttpPeer peer({"--respond",
                 testing::Respond(429, {{"Retry-After", "7"}}, "slow down")});
  const SendResult result = Exchange(peer, LocalSettings(peer));
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(result.retry_after(), absl::Seconds(7));
  EXPECT_THAT(result.error(), HasSubstr("HTTP 429: slow down"));
}

TEST(HttpClientTest, ServerErrorIsRetryable) {
  HttpPeer peer({"--respond", testing::Respond(500, {}, "<html>oops</html>")});
  const SendResult result = Exchange(peer, LocalSettings(peer));
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_EQ(result.retry_after(), std::nullopt);
}

TEST(HttpClientTest, SlowAnswerPastTheTimeoutIsRetryable) {
  HttpPeer peer({"--respond", R"({"status": 200, "delay_ms": 3000})"});
  HttpSettings settings = LocalSettings(peer);
  settings.timeout = absl::Milliseconds(500);

  const absl::Time start = absl::Now();
  const SendResult result = Exchange(peer, settings);

  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_THAT(result.error(), HasSubstr("timeout 500ms"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(HttpClientTest, DroppedConnectionIsRetryable) {
  HttpPeer peer({"--respond", R"({"drop": true})"});
  const SendResult result = Exchange(peer, LocalSettings(peer));
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_THAT(result.error(), HasSubstr("POST http://127.0.0.1"));
}

// The URL of a peer that has stopped: its port refuses connections.
std::string ClosedPortUrl() {
  HttpPeer gone;
  return gone.Url("");
}

TEST(HttpClientTest, RefusedConnectionIsRetryable) {
  const std::string url = ClosedPortUrl();
  HttpSettings settings;
  settings.base_url = url;
  HttpClient client(settings);
  HttpRequest request;
  request.url = url + "/v1/send";

  const SendResult result =
      ToSendResult("test", client.Send(request), NoMessageId, {});

  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
}

TEST(HttpClientTest, ASecretEchoedInTheErrorBodyIsMasked) {
  HttpPeer peer(
      {"--respond",
       testing::Respond(401, {}, R"({"message":"bad key SG.secret-1"})")});
  const SendResult result =
      Exchange(peer, LocalSettings(peer), {"SG.secret-1"});
  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_THAT(result.error(), Not(HasSubstr("SG.secret-1")));
  EXPECT_THAT(result.error(), HasSubstr("bad key [redacted]"));
}

TEST(HttpClientTest, AHeaderWithALineBreakIsNotSent) {
  HttpPeer peer;
  HttpClient client(LocalSettings(peer));
  HttpRequest request = Post(peer);
  request.headers.emplace_back("X-Evil", "a\r\nBcc: someone@example.com");

  absl::StatusOr<HttpResponse> response = client.Send(request);

  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(peer.Requests(), 0);
  EXPECT_EQ(ToSendResult("test", response, NoMessageId, {}).kind(),
            SendResult::Kind::kPermanent);
}

class HttpClientTlsTest : public testing::WithTestCerts<HttpClientTlsTest> {
 protected:
  HttpPeer TlsPeer() {
    return HttpPeer({"--tls", "--cert", certs() + "/server.pem", "--key",
                     certs() + "/server.key"});
  }
};

TEST_F(HttpClientTlsTest, TrustsAServerSignedByTheConfiguredCa) {
  HttpPeer peer = TlsPeer();
  HttpSettings settings = LocalSettings(peer);
  settings.ca_file = certs() + "/ca.pem";

  const SendResult result = Exchange(peer, settings);

  EXPECT_EQ(result.kind(), SendResult::Kind::kSent) << result.error();
  EXPECT_EQ(peer.Requests(), 1);
}

TEST_F(HttpClientTlsTest, RefusesAServerItCannotVerify) {
  HttpPeer peer = TlsPeer();

  const SendResult result = Exchange(peer, LocalSettings(peer));

  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_THAT(result.error(), HasSubstr("certificate did not verify"));
  EXPECT_EQ(peer.Requests(), 0) << "nothing may be sent to an unverified peer";
}

TEST_F(HttpClientTlsTest, CheckReachableConnectsAndSendsNoRequest) {
  HttpPeer peer = TlsPeer();
  HttpSettings settings = LocalSettings(peer);
  settings.ca_file = certs() + "/ca.pem";
  HttpClient client(settings);

  const absl::Status status = client.CheckReachable();

  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(peer.Requests(), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (peer.Connections() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(peer.Connections(), 1);
}

TEST_F(HttpClientTlsTest, CheckReachableRefusesAServerItCannotVerify) {
  HttpPeer peer = TlsPeer();
  HttpClient client(LocalSettings(peer));

  const absl::Status status = client.CheckReachable();

  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("certificate did not verify"));
  EXPECT_THAT(status.message(), HasSubstr("connecting to https://localhost:"));
}

TEST(HttpClientTest, CheckReachableReportsARefusedConnection) {
  const std::string url = ClosedPortUrl();
  HttpSettings settings;
  settings.base_url = url;
  HttpClient client(settings);

  const absl::Status status = client.CheckReachable();

  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr(url));
}

TEST(HttpClientProxyTest, HonoursTheProxyFromTheEnvironment) {
  HttpPeer proxy({"--respond", testing::Respond(202)});
  ScopedEnv env("http_proxy", proxy.Url(""));
  HttpSettings settings;
  settings.base_url = "http://mail-api.invalid";
  HttpClient client(settings);
  HttpRequest request;
  request.url = "http://mail-api.invalid/v3/mail/send";

  absl::StatusOr<HttpResponse> response = client.Send(request);

  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 202);
  EXPECT_EQ(proxy.Request(1)["target"], "http://mail-api.invalid/v3/mail/send");
}

TEST(HttpClientProxyTest, TunnelsHttpsThroughTheProxy) {
  HttpPeer proxy;
  ScopedEnv env("https_proxy", proxy.Url(""));
  HttpSettings settings;
  settings.base_url = "https://mail-api.invalid";
  HttpClient client(settings);
  HttpRequest request;
  request.url = "https://mail-api.invalid/v3/mail/send";

  const absl::StatusOr<HttpResponse> response = client.Send(request);

  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(proxy.Requests(), 1);
  EXPECT_EQ(proxy.Request(1)["method"], "CONNECT");
  EXPECT_EQ(proxy.Request(1)["target"], "mail-api.invalid:443");
}

ProviderSettings Section(std::map<std::string, std::string> values) {
  return ProviderSettings("providers.mail", std::move(values));
}

TEST(HttpSettingsTest, DefaultsToTheProvidersEndpointWithVerification) {
  absl::StatusOr<HttpSettings> settings =
      HttpSettings::Parse(Section({}), "https://api.example.com");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->base_url, "https://api.example.com");
  EXPECT_TRUE(settings->verify_peer);
  EXPECT_EQ(settings->timeout, absl::Seconds(20));
}

TEST(HttpSettingsTest, ReadsEveryKey) {
  absl::StatusOr<HttpSettings> settings = HttpSettings::Parse(
      Section({{"endpoint", "https://vpce.example.com:8443/"},
               {"connect_timeout", "2s"},
               {"timeout", "750ms"},
               {"pool_size", "3"},
               {"idle_timeout", "10s"},
               {"proxy", "http://proxy.internal:3128"}}),
      "https://api.example.com");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->base_url, "https://vpce.example.com:8443");
  EXPECT_EQ(settings->connect_timeout, absl::Seconds(2));
  EXPECT_EQ(settings->timeout, absl::Milliseconds(750));
  EXPECT_EQ(settings->pool_size, 3);
  EXPECT_EQ(settings->idle_timeout, absl::Seconds(10));
  EXPECT_EQ(settings->proxy, "http://proxy.internal:3128");
}

TEST(HttpSettingsTest, AllowsPlainHttpOnlyToLoopback) {
  EXPECT_TRUE(
      HttpSettings::Parse(Section({{"endpoint", "http://127.0.0.1:99"}}),
                          "https://x.example")
          .ok());
  EXPECT_TRUE(HttpSettings::Parse(Section({{"endpoint", "http://localhost"}}),
                                  "https://x.example")
                  .ok());
  const absl::Status status =
      HttpSettings::Parse(Section({{"endpoint", "http://api.example.com"}}),
                          "https://x.example")
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("providers.mail.endpoint: plain http"));
}

TEST(HttpSettingsTest, RefusesMalformedSettingsNamingTheKey) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{{"endpoint", "ftp://api.example.com"}}, "providers.mail.endpoint"},
          {{{"endpoint", "https://api.example.com/v3"}},
           "providers.mail.endpoint"},
          {{{"endpoint", "https://user:pw@api.example.com"}},
           "providers.mail.endpoint"},
          {{{"endpoint", "not a url"}}, "providers.mail.endpoint"},
          {{{"timeout", "soon"}}, "providers.mail.timeout"},
          {{{"connect_timeout", "0s"}}, "providers.mail.connect_timeout"},
          {{{"pool_size", "0"}}, "providers.mail.pool_size"},
          {{{"verify_peer", "no"}}, "providers.mail.verify_peer"},
          {{{"ca_file", "/nonexistent/ca.pem"}}, "providers.mail.ca_file"},
      };
  for (const auto& [values, key] : cases) {
    const absl::Status status =
        HttpSettings::Parse(Section(values), "https://x.example").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(status.message(), HasSubstr(key + ":"));
  }
}

TEST(RetryAfterTest, ReadsSecondsAndDates) {
  const absl::Time now = absl::FromUnixSeconds(784111777);  // 06 Nov 1994.
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:37 GMT", now),
            absl::Seconds(60));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now),
            absl::ZeroDuration())
      << "a date in the past means now";
}

TEST(RetryAfterTest, CapsLongWaitsAndIgnoresGarbage) {
  const absl::Time now = absl::Now();
  EXPECT_EQ(ParseRetryAfter("86400", now), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("12abc", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
}

TEST(SummarizeErrorBodyTest, TakesTheReasonsOutOfJson) {
  EXPECT_EQ(SummarizeErrorBody(R"({"message":"Email address is not )"
                               R"(verified.","other":"x"})",
                               {}),
            "message=Email address is not verified.");
  EXPECT_EQ(SummarizeErrorBody(R"({"ErrorCode":300,"Message":"Invalid"})", {}),
            "ErrorCode=300; Message=Invalid");
}

TEST(SummarizeErrorBodyTest, KeepsItToOneShortValidLine) {
  const std::string summary = SummarizeErrorBody(
      "line one\r\nline\ttwo \xff\xfe" + std::string(900, 'x'), {});
  EXPECT_EQ(summary.rfind("line one line two ??x", 0), 0u) << summary;
  EXPECT_LE(summary.size(), 310u);
  EXPECT_TRUE(absl::EndsWith(summary, "..."));
  EXPECT_EQ(summary.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace authcode::providers::http
