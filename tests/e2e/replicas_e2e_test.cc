// Three server processes on one database, called through one client
// channel that round-robins over them, the way a team scales out: every
// rule must hold exactly as on one server. Issue limits, the per-recipient
// lock-out after failed guesses, a code issued on one replica verified on
// another, and delivery through a shared Maildir sink exactly once, each
// under parallel calls; and each test checks that all three replicas
// served its calls.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/e2e/maildir_sink.h"
#include "tests/e2e/process.h"
#include "tests/support/files.h"
#include "tests/support/kept_logs.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using testing::KeyRing;
using testing::Process;
using testing::SinkMail;
using testing::TestDatabase;

constexpr int kReplicas = 3;
constexpr int kThreads = 8;
constexpr int kIssueLimit = 5;     // Per recipient and hour.
constexpr int kMaxFailures = 20;   // Failed guesses in a row before a lock.
constexpr int kMaxAttempts = 100;  // Per code: more than kMaxFailures.

// The code in a mail whose subject is the test template's "Code NNNNNN".
std::string CodeIn(const SinkMail& mail) {
  static const std::regex code("^Code ([0-9]{6,10})$");
  std::smatch match;
  if (!std::regex_match(mail.subject, match, code)) return "";
  return testing::KeepCode(match[1].str());
}

// Runs `body(thread, i)` for i in [0, per_thread) on each of kThreads
// threads at once.
void InParallel(int per_thread, const std::function<void(int, int)>& body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) body(t, i);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

class ReplicasE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    dir_ = testing::MakeTempDir("authcode-replicas-e2e");
    // Codes in the subject, so a test reads them from the sink's headers.
    std::filesystem::create_directories(dir_ + "/templates/en");
    testing::WriteFile(dir_ + "/templates/en/login.subject", "Code {{code}}");
    const std::string config = dir_ + "/authcode.toml";
    testing::WriteFile(
        config,
        absl::StrCat("[database]\npool_size = 4\n",
                     "[codes]\nmax_attempts = ", kMaxAttempts, "\n",
                     "[limits]\nissue = [{ window = \"1h\", limit = ",
                     kIssueLimit, " }]\nmax_failures = ", kMaxFailures, "\n",
                     "[delivery]\nchain = [\"sink\"]\nworkers = 2\n"
                     "poll_interval = \"200ms\"\n"
                     "[providers.sink]\ntype = \"maildir\"\npath = \"",
                     dir_, "/mail\"\n[mail]\ntemplates_dir = \"", dir_,
                     "/templates\"\n"));
    const std::vector<std::string> env = {
        "PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
        "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
        "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
        "AUTHCODE_LISTEN=127.0.0.1:0"};

    // Started together, so their migrations race as a rolling start's do.
    for (int r = 0; r < kReplicas; ++r) {
      servers_.push_back(std::make_unique<Process>(
          std::vector<std::string>{AUTHCODE_BINARY, "--config", config}, env));
    }
    std::vector<std::string> addresses;
    for (const auto& server : servers_) {
      const std::string port = testing::WaitForPort(*server);
      ASSERT_FALSE(port.empty()) << server->err();
      addresses.push_back("127.0.0.1:" + port);
      direct_.push_back(v1::AuthCodeService::NewStub(grpc::CreateChannel(
          addresses.back(), grpc::InsecureChannelCredentials())));
    }

    // One channel over all three; each call goes to the next replica.
    grpc::ChannelArguments args;
    args.SetLoadBalancingPolicyName("round_robin");
    channel_ =
        grpc::CreateCustomChannel("ipv4:" + absl::StrJoin(addresses, ","),
                                  grpc::InsecureChannelCredentials(), args);
    ASSERT_TRUE(channel_->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(10)));
    balanced_ = v1::AuthCodeService::NewStub(channel_);
  }

  void TearDown() override {
    // Close every client connection first, so no stop waits for one.
    balanced_.reset();
    channel_.reset();
    direct_.clear();
    for (const auto& server : servers_) server->Signal(SIGTERM);
    for (const auto& server : servers_) {
      EXPECT_EQ(server->Wait(), 0) << server->err();
    }
    std::filesystem::remove_all(dir_);
  }

  // Each replica logged at least one RPC: the balancer spread the calls.
  void ExpectEveryReplicaServed() {
    for (int r = 0; r < kReplicas; ++r) {
      const std::string err = servers_[r]->err();
      int rpcs = 0;
      for (size_t at = err.find("event=rpc."); at != std::string::npos;
           at = err.find("event=rpc.", at + 1)) {
        ++rpcs;
      }
      EXPECT_GT(rpcs, 0) << "replica " << r << " served no call";
    }
  }

  static grpc::Status Issue(v1::AuthCodeService::StubInterface& stub,
                            const std::string& recipient,
                            v1::IssueCodeResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::IssueCodeRequest request;
    request.set_recipient(recipient);
    request.set_purpose("login");
    return stub.IssueCode(&context, request, response);
  }

  static v1::VerifyCodeResponse Verify(v1::AuthCodeService::StubInterface& stub,
                                       const std::string& recipient,
                                       const std::string& code) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::VerifyCodeRequest request;
    request.set_recipient(recipient);
    request.set_purpose("login");
    request.set_code(code);
    v1::VerifyCodeResponse response;
    const grpc::Status status = stub.VerifyCode(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // The code mailed for `code_id`, waiting up to 20 s for it.
  std::string WaitForCode(const std::string& code_id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      for (const SinkMail& mail : testing::MailsIn(dir_ + "/mail")) {
        if (mail.delivery_id == code_id) return CodeIn(mail);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "no mail for " << code_id;
    return "";
  }

  // Waits up to 30 s until no delivery job is queued or being sent.
  bool WaitForDeliveries() {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state IN "
                      "('queued', 'sending')") == "0") {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  std::unique_ptr<TestDatabase> db_;
  std::string dir_;
  std::vector<std::unique_ptr<Process>> servers_;
  std::vector<std::unique_ptr<v1::AuthCodeService::Stub>> direct_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AuthCodeService::Stub> balanced_;
};

TEST_F(ReplicasE2eTest, IssueLimitAdmitsExactlyItsCountAcrossReplicas) {
  std::atomic<int> issued{0}, limited{0}, other{0};
  std::mutex mu;
  std::set<std::string> code_ids;
  InParallel(10, [&](int, int) {
    v1::IssueCodeResponse response;
    const grpc::Status status =
        Issue(*balanced_, "limited@example.com", &response);
    if (status.ok()) {
      ++issued;
      std::lock_guard<std::mutex> lock(mu);
      code_ids.insert(response.code_id());
    } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++limited;
    } else {
      ++other;
    }
  });

  EXPECT_EQ(issued.load(), kIssueLimit);
  EXPECT_EQ(limited.load(), kThreads * 10 - kIssueLimit);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(code_ids.size(), static_cast<size_t>(kIssueLimit));
  ExpectEveryReplicaServed();
}

TEST_F(ReplicasE2eTest, FailedGuessLockoutIsExactAcrossReplicas) {
  const std::string recipient = "guessed@example.com";
  v1::IssueCodeResponse issued;
  ASSERT_TRUE(Issue(*balanced_, recipient, &issued).ok());
  const std::string code = WaitForCode(issued.code_id());
  ASSERT_FALSE(code.empty());
  std::string wrong = code;
  wrong.back() = wrong.back() == '0' ? '1' : '0';

  std::mutex mu;
  std::multiset<int> attempts_left;  // Of each WRONG_CODE answer.
  int locked = 0, other = 0;
  InParallel(10, [&](int, int) {
    const v1::VerifyCodeResponse response =
        Verify(*balanced_, recipient, wrong);
    std::lock_guard<std::mutex> lock(mu);
    if (response.outcome() == v1::VERIFY_OUTCOME_WRONG_CODE) {
      attempts_left.insert(response.attempts_left());
    } else if (response.outcome() == v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS &&
               response.has_locked_until()) {
      ++locked;
    } else {
      ++other;
    }
  });

  // The failures before the lock each spent one attempt, once: the code's
  // attempts went 99, 98, ... down, no number twice.
  std::multiset<int> expected;
  for (int i = 1; i < kMaxFailures; ++i) expected.insert(kMaxAttempts - i);
  EXPECT_EQ(attempts_left, expected);
  EXPECT_EQ(locked, kThreads * 10 - (kMaxFailures - 1));
  EXPECT_EQ(other, 0);

  // Locked everywhere: the right code and a new code are refused too.
  for (int r = 0; r < kReplicas; ++r) {
    const v1::VerifyCodeResponse right = Verify(*direct_[r], recipient, code);
    EXPECT_EQ(right.outcome(), v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS)
        << "replica " << r;
    v1::IssueCodeResponse again;
    EXPECT_EQ(Issue(*direct_[r], recipient, &again).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED)
        << "replica " << r;
  }
  ExpectEveryReplicaServed();
}

TEST_F(ReplicasE2eTest, ACodeIssuedOnOneReplicaVerifiesOnAnotherOnce) {
  for (int r = 0; r < kReplicas; ++r) {
    const std::string recipient = absl::StrCat("moved", r, "@example.com");
    v1::IssueCodeResponse issued;
    ASSERT_TRUE(Issue(*direct_[r], recipient, &issued).ok());
    const std::string code = WaitForCode(issued.code_id());
    ASSERT_FALSE(code.empty());

    v1::AuthCodeService::Stub& next = *direct_[(r + 1) % kReplicas];
    v1::AuthCodeService::Stub& last = *direct_[(r + 2) % kReplicas];
    EXPECT_EQ(Verify(next, recipient, code).outcome(),
              v1::VERIFY_OUTCOME_VERIFIED)
        << "issued on replica " << r;
    EXPECT_EQ(Verify(last, recipient, code).outcome(),
              v1::VERIFY_OUTCOME_NO_ACTIVE_CODE)
        << "a code verifies once, wherever it is tried";
  }
  ExpectEveryReplicaServed();
}

TEST_F(ReplicasE2eTest, EveryIssuedCodeIsDeliveredExactlyOnce) {
  constexpr int kPerThread = 25;
  std::mutex mu;
  std::map<std::string, std::string> recipient_of;  // code_id -> recipient
  InParallel(kPerThread, [&](int t, int i) {
    const std::string recipient =
        absl::StrCat("user", t, "-", i, "@example.com");
    v1::IssueCodeResponse response;
    const grpc::Status status = Issue(*balanced_, recipient, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::lock_guard<std::mutex> lock(mu);
    if (status.ok()) recipient_of[response.code_id()] = recipient;
  });
  ASSERT_EQ(recipient_of.size(), static_cast<size_t>(kThreads * kPerThread));
  ASSERT_TRUE(WaitForDeliveries());

  const std::vector<SinkMail> mails = testing::MailsIn(dir_ + "/mail");
  EXPECT_EQ(mails.size(), recipient_of.size());
  const std::map<std::string, int> seen = testing::DeliveriesIn(dir_ + "/mail");
  for (const auto& [code_id, recipient] : recipient_of) {
    EXPECT_EQ(seen.count(code_id) ? seen.at(code_id) : 0, 1)
        << code_id << " for " << recipient;
  }

  // Each mailed code verifies, through whichever replica is next.
  std::atomic<int> verified{0};
  std::atomic<size_t> next{0};
  InParallel(kPerThread, [&](int, int) {
    const size_t n = next++;
    if (n >= mails.size()) return;
    const SinkMail& mail = mails[n];
    auto it = recipient_of.find(mail.delivery_id);
    if (it == recipient_of.end()) return;
    if (Verify(*balanced_, it->second, CodeIn(mail)).outcome() ==
        v1::VERIFY_OUTCOME_VERIFIED) {
      ++verified;
    }
  });
  EXPECT_EQ(verified.load(), kThreads * kPerThread);

  // Every replica's workers took jobs from the shared queue.
  for (int r = 0; r < kReplicas; ++r) {
    EXPECT_NE(servers_[r]->err().find("event=delivery.sent"), std::string::npos)
        << "replica " << r << " sent nothing";
  }
  ExpectEveryReplicaServed();
}

}  // namespace
}  // namespace authcode
