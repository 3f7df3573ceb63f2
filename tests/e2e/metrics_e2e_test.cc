// The metrics endpoint of the real binary: a known sequence of calls, the
// mails delivered through the console provider, then a scrape of /metrics
// over plain HTTP whose counters must match the calls exactly.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using ::testing::HasSubstr;
using testing::KeyRing;
using ::testing::Not;
using testing::Process;
using testing::TestDatabase;

struct HttpResponse {
  int status = 0;
  std::string head;  // Status line and headers.
  std::string body;
};

// One HTTP/1.1 request to 127.0.0.1:`port`, the answer read to the end
// (Connection: close). Status 0 when no answer came within 10 s.
HttpResponse Fetch(int port, const std::string& method,
                   const std::string& path) {
  HttpResponse response;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return response;
  }
  const std::string request =
      absl::StrCat(method, " ", path,
                   " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   "Content-Length: 0\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return response;
  }
  std::string raw;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) raw.append(buffer, n);
  close(fd);

  const size_t blank = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || blank == std::string::npos ||
      !absl::SimpleAtoi(raw.substr(9, 3), &response.status)) {
    return response;
  }
  response.head = raw.substr(0, blank);
  response.body = raw.substr(blank + 4);
  return response;
}

// The value of the sample line `series` (name and labels exactly as
// rendered), or -1 when the scrape has no such line.
double Sample(const std::string& scrape, const std::string& series) {
  const std::string prefix = "\n" + series + " ";
  const size_t at = scrape.find(prefix);
  if (at == std::string::npos) return -1;
  const size_t start = at + prefix.size();
  double value = -1;
  if (!absl::SimpleAtod(scrape.substr(start, scrape.find('\n', start) - start),
                        &value)) {
    return -1;
  }
  return value;
}

std::string Rpc(const std::string& method, const std::string& code) {
  return absl::StrCat("{method=\"", method, "\",code=\"", code, "\"}");
}

class MetricsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    env_ = {"PATH=/usr/bin:/bin",
            "AUTHCODE_DATABASE_URL=" + db_->url(),
            "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
            "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
            "AUTHCODE_LISTEN=127.0.0.1:0",
            "AUTHCODE_METRICS_LISTEN=127.0.0.1:0"};
  }

  std::unique_ptr<TestDatabase> db_;
  std::vector<std::string> env_;
};

TEST_F(MetricsE2eTest, ScrapeCountsAKnownSequenceOfCalls) {
  Process server({AUTHCODE_BINARY}, env_);
  const std::string grpc_port = testing::WaitForPort(server);
  const std::string metrics_port =
      server.WaitFor(false, "event=metrics.started .*port=([0-9]+)");
  ASSERT_FALSE(grpc_port.empty());
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(metrics_port, &port));
  ASSERT_GT(port, 0);
  auto api = v1::AuthCodeService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port),
                          grpc::InsecureChannelCredentials()));

  const auto issue = [&](const std::string& recipient,
                         v1::IssueCodeResponse* issued) {
    grpc::ClientContext ctx;
    v1::IssueCodeRequest request;
    request.set_recipient(recipient);
    request.set_purpose("login");
    return api->IssueCode(&ctx, request, issued).error_code();
  };
  const auto verify = [&](const std::string& recipient,
                          const std::string& code) {
    grpc::ClientContext ctx;
    v1::VerifyCodeRequest request;
    request.set_recipient(recipient);
    request.set_purpose("login");
    request.set_code(code);
    v1::VerifyCodeResponse response;
    EXPECT_TRUE(api->VerifyCode(&ctx, request, &response).ok());
    return response.outcome();
  };
  // The code in the console provider's print of `code_id`'s mail.
  const auto code_of = [&](const std::string& code_id) {
    return server.WaitFor(true, code_id + "[^]*?\\b([0-9]{6})\\b");
  };

  // Three codes issued, one refused by the recipient's limit (1 a
  // minute), one malformed.
  v1::IssueCodeResponse ada, bob, cyd, unused;
  ASSERT_EQ(issue("ada@example.com", &ada), grpc::StatusCode::OK);
  ASSERT_EQ(issue("bob@example.com", &bob), grpc::StatusCode::OK);
  ASSERT_EQ(issue("cyd@example.com", &cyd), grpc::StatusCode::OK);
  EXPECT_EQ(issue("ada@example.com", &unused),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(issue("not an address", &unused),
            grpc::StatusCode::INVALID_ARGUMENT);

  // The mails go out; one right code, two wrong ones, one with no code.
  const std::string ada_code = code_of(ada.code_id());
  const std::string bob_code = code_of(bob.code_id());
  ASSERT_EQ(code_of(cyd.code_id()).size(), 6u);
  ASSERT_EQ(ada_code.size(), 6u);
  ASSERT_EQ(bob_code.size(), 6u);
  std::string wrong = bob_code;
  wrong[0] = static_cast<char>('0' + (wrong[0] - '0' + 1) % 10);
  EXPECT_EQ(verify("ada@example.com", ada_code), v1::VERIFY_OUTCOME_VERIFIED);
  EXPECT_EQ(verify("bob@example.com", wrong), v1::VERIFY_OUTCOME_WRONG_CODE);
  EXPECT_EQ(verify("bob@example.com", wrong), v1::VERIFY_OUTCOME_WRONG_CODE);
  EXPECT_EQ(verify("dan@example.com", "123456"),
            v1::VERIFY_OUTCOME_NO_ACTIVE_CODE);

  // GetDelivery, found and not.
  const auto delivery = [&](const std::string& code_id) {
    grpc::ClientContext ctx;
    v1::GetDeliveryRequest request;
    request.set_code_id(code_id);
    v1::GetDeliveryResponse response;
    return api->GetDelivery(&ctx, request, &response).error_code();
  };
  EXPECT_EQ(delivery(ada.code_id()), grpc::StatusCode::OK);
  EXPECT_EQ(delivery("00000000-0000-4000-8000-000000000000"),
            grpc::StatusCode::NOT_FOUND);

  // Scrapes until every delivery is recorded and the outbox (read at
  // most once a second) is seen empty.
  HttpResponse scrape;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    scrape = Fetch(port, "GET", "/metrics");
  } while (
      (Sample(
           scrape.body,
           "authcode_delivery_latency_seconds_count{provider=\"console\"}") !=
           3 ||
       Sample(scrape.body, "authcode_outbox_jobs{state=\"queued\"}") != 0 ||
       Sample(scrape.body, "authcode_outbox_jobs{state=\"sending\"}") != 0) &&
      std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(scrape.status, 200) << scrape.head;
  EXPECT_THAT(scrape.head,
              HasSubstr("Content-Type: text/plain; version=0.0.4"));
  const std::string& m = scrape.body;

  // RPCs by method and status; the histogram counts every one.
  const auto rpcs = [&](const std::string& method, const std::string& code) {
    return Sample(m, "authcode_rpc_requests_total" + Rpc(method, code));
  };
  EXPECT_EQ(rpcs("IssueCode", "OK"), 3) << m;
  EXPECT_EQ(rpcs("IssueCode", "RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(rpcs("IssueCode", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(rpcs("VerifyCode", "OK"), 4);
  EXPECT_EQ(rpcs("GetDelivery", "OK"), 1);
  EXPECT_EQ(rpcs("GetDelivery", "NOT_FOUND"), 1);
  EXPECT_EQ(
      Sample(m, "authcode_rpc_duration_seconds_count" + Rpc("IssueCode", "OK")),
      3);
  EXPECT_EQ(Sample(m,
                   "authcode_rpc_duration_seconds_bucket{method="
                   "\"VerifyCode\",code=\"OK\",le=\"+Inf\"}"),
            4);
  EXPECT_GT(
      Sample(m, "authcode_rpc_duration_seconds_sum" + Rpc("IssueCode", "OK")),
      0);
  EXPECT_THAT(m, Not(HasSubstr("code=\"INTERNAL\"")));

  // Verify outcomes and issue refusals.
  const auto outcome = [&](const std::string& name) {
    return Sample(m,
                  "authcode_verify_outcomes_total{outcome=\"" + name + "\"}");
  };
  EXPECT_EQ(outcome("verified"), 1);
  EXPECT_EQ(outcome("wrong_code"), 2);
  EXPECT_EQ(outcome("no_active_code"), 1);
  EXPECT_EQ(outcome("expired"), 0);
  EXPECT_EQ(outcome("too_many_attempts"), 0);
  const auto refused = [&](const std::string& scope) {
    return Sample(m, "authcode_rate_limited_total{scope=\"" + scope + "\"}");
  };
  EXPECT_EQ(refused("recipient"), 1);
  EXPECT_EQ(refused("ip"), 0);
  EXPECT_EQ(refused("tenant_ceiling"), 0);
  EXPECT_EQ(refused("lockout"), 0);

  // Deliveries, their latency, the empty outbox.
  EXPECT_EQ(Sample(m,
                   "authcode_deliveries_total{provider=\"console\","
                   "result=\"sent\"}"),
            3);
  EXPECT_EQ(Sample(m,
                   "authcode_provider_sends_total{provider=\"console\","
                   "result=\"sent\"}"),
            3);
  EXPECT_THAT(m, Not(HasSubstr("result=\"failed\"")));
  EXPECT_EQ(Sample(m,
                   "authcode_delivery_latency_seconds_bucket{provider="
                   "\"console\",le=\"+Inf\"}"),
            3);
  EXPECT_EQ(Sample(m, "authcode_outbox_jobs{state=\"queued\"}"), 0);
  EXPECT_EQ(Sample(m, "authcode_outbox_jobs{state=\"sending\"}"), 0);
  EXPECT_EQ(Sample(m, "authcode_outbox_oldest_queued_age_seconds"), 0);
  EXPECT_EQ(Sample(m, "authcode_outbox_read_failures_total"), 0);

  // The pools: 8 connections for RPCs and 16 workers + 1 by default.
  EXPECT_EQ(Sample(m, "authcode_db_pool_size{pool=\"rpc\"}"), 8);
  EXPECT_EQ(Sample(m, "authcode_db_pool_size{pool=\"background\"}"), 17);
  // Whether the health check holds the one connection right now or not.
  EXPECT_GE(
      Sample(m, "authcode_db_pool_connections{pool=\"rpc\",state=\"idle\"}") +
          Sample(m,
                 "authcode_db_pool_connections{pool=\"rpc\",state=\"in_use\"}"),
      1);
  EXPECT_EQ(Sample(m, "authcode_db_pool_waiting{pool=\"background\"}"), 0);
  EXPECT_EQ(Sample(m, "authcode_build_info{version=\"0.1.0\"}"), 1);
  EXPECT_GT(Sample(m, "authcode_start_time_seconds"), 1.7e9);

  // Only GET /metrics.
  const HttpResponse elsewhere = Fetch(port, "GET", "/");
  EXPECT_EQ(elsewhere.status, 404);
  const HttpResponse posted = Fetch(port, "POST", "/metrics");
  EXPECT_EQ(posted.status, 405);
  EXPECT_THAT(posted.head, HasSubstr("Allow: GET, HEAD"));

  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0) << server.err();
  // A scrape is no RPC: nothing of it reaches the log but the start.
  EXPECT_THAT(server.err(), Not(HasSubstr("metrics.http_error")));
}

TEST_F(MetricsE2eTest, APortInUseStopsStartUpNamingTheSetting) {
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(listen(taken, 1), 0);
  socklen_t size = sizeof(address);
  ASSERT_EQ(getsockname(taken, reinterpret_cast<sockaddr*>(&address), &size),
            0);
  const std::string listen_at =
      absl::StrCat("127.0.0.1:", ntohs(address.sin_port));

  std::vector<std::string> env = env_;
  env.back() = "AUTHCODE_METRICS_LISTEN=" + listen_at;
  Process server({AUTHCODE_BINARY}, env);
  EXPECT_EQ(server.Wait(), 1);
  EXPECT_THAT(server.err(),
              HasSubstr("metrics.listen: cannot listen on " + listen_at));
  close(taken);
}

}  // namespace
}  // namespace authcode
