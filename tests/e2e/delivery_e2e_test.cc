// Delivery with the real binary and a durable sink (a Maildir): a server
// killed with SIGKILL while hundreds of jobs are queued or being sent, then
// started again, and two servers sharing one database. Every job must
// reach the sink, and none twice except those a worker was handing to the
// provider at a kill (at most one per worker thread).
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/e2e/maildir_sink.h"
#include "tests/e2e/process.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using testing::DeliveriesIn;
using testing::KeyRing;
using testing::ListDir;
using testing::Process;
using testing::TestDatabase;

constexpr int kJobs = 500;
constexpr int kWorkers = 2;

class DeliveryE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    char tmpl[] = "/tmp/authcode-delivery-e2e.XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_ = dir_ + "/authcode.toml";
    std::ofstream(config_) << "[delivery]\n"
                           << "chain = [\"sink\"]\n"
                           << "workers = " << kWorkers << "\n"
                           << "lease = \"2s\"\n"
                           << "poll_interval = \"200ms\"\n"
                           << "[providers.sink]\n"
                           << "type = \"maildir\"\n"
                           << "path = \"" << dir_ << "/mail\"\n"
                           << "[limits]\n"
                           << "issue = [{ window = \"60s\", limit = 1000 }]\n";
    env_ = {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
            "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
            "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
            "AUTHCODE_LISTEN=127.0.0.1:0"};
  }

  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    EXPECT_EQ(system(cmd.c_str()), 0);
  }

  std::unique_ptr<Process> StartServer() {
    return std::make_unique<Process>(
        std::vector<std::string>{AUTHCODE_BINARY, "--config", config_}, env_);
  }

  std::unique_ptr<TestDatabase> db_;
  std::string dir_, config_;
  std::vector<std::string> env_;
};

// Issues `count` codes to distinct recipients from 16 callers at once,
// spread round-robin over `ports`; returns how many succeeded.
int IssueMany(const std::vector<std::string>& ports, int count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& port : ports) {
    channels.push_back(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                           grpc::InsecureChannelCredentials()));
  }
  std::atomic<int> issued{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 16; ++t) {
    callers.emplace_back([&, t] {
      for (int i = t; i < count; i += 16) {
        auto stub = v1::AuthCodeService::NewStub(channels[i % channels.size()]);
        grpc::ClientContext ctx;
        v1::IssueCodeRequest request;
        request.set_recipient(absl::StrCat("user", i, "@example.com"));
        request.set_purpose("login");
        v1::IssueCodeResponse response;
        if (stub->IssueCode(&ctx, request, &response).ok()) ++issued;
      }
    });
  }
  for (auto& t : callers) t.join();
  return issued;
}

TEST_F(DeliveryE2eTest, KillDuringDeliveryLosesNothingAndRepeatsOnlyInFlight) {
  auto server = StartServer();
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty());
  ASSERT_EQ(IssueMany({port}, kJobs), kJobs);

  // Kill while work remains: some mails out, most not.
  const std::string maildir = dir_ + "/mail";
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ListDir(maildir + "/new").size() < 20 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  server->Signal(SIGKILL);
  EXPECT_EQ(server->Wait(), 128 + SIGKILL);
  const size_t at_kill = ListDir(maildir + "/new").size();
  const std::string pending =
      db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state <> 'sent'");
  EXPECT_NE(pending, "0") << "the kill came too late to test anything";

  // Start again: the queued jobs go out at once, the leased ones when
  // their lease (2 s) runs out.
  auto restarted = StartServer();
  ASSERT_FALSE(testing::WaitForPort(*restarted).empty());
  const auto drain_deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state <> "
                     "'sent'") != "0" &&
         std::chrono::steady_clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  restarted->Signal(SIGTERM);
  EXPECT_EQ(restarted->Wait(), 0) << restarted->err();

  // Count at the sink.
  const std::map<std::string, int> seen = DeliveriesIn(maildir);
  int duplicates = 0;
  for (const auto& [id, count] : seen) duplicates += count - 1;
  EXPECT_EQ(seen.size(), static_cast<size_t>(kJobs)) << "a job was lost";
  EXPECT_LE(duplicates, kWorkers)
      << "only a send under way at the kill may repeat";
  for (const auto& row :
       db_->Query("SELECT code_id::text FROM delivery_jobs")) {
    EXPECT_EQ(seen.count(row[0]), 1u) << "job " << row[0] << " not delivered";
  }
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE payload IS "
                        "NOT NULL"),
            "0");
  std::cout << "mails at the kill: " << at_kill << ", jobs pending: " << pending
            << ", repeated after restart: " << duplicates << "\n";
}

TEST_F(DeliveryE2eTest, TwoServersDeliverAThousandJobsWithNoLossOrDuplicate) {
  constexpr int kThousand = 1000;
  auto a = StartServer();
  auto b = StartServer();
  const std::string port_a = testing::WaitForPort(*a);
  const std::string port_b = testing::WaitForPort(*b);
  ASSERT_FALSE(port_a.empty());
  ASSERT_FALSE(port_b.empty());
  ASSERT_EQ(IssueMany({port_a, port_b}, kThousand), kThousand);

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state <> "
                     "'sent'") != "0" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (Process* p : {a.get(), b.get()}) {
    p->Signal(SIGTERM);
    EXPECT_EQ(p->Wait(), 0) << p->err();
  }

  const std::map<std::string, int> seen = DeliveriesIn(dir_ + "/mail");
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThousand)) << "a job was lost";
  for (const auto& [id, count] : seen) {
    EXPECT_EQ(count, 1) << id << " was delivered " << count << " times";
  }
  // Both servers took part (each logs its sends at info level).
  EXPECT_NE(a->err().find("event=delivery.sent"), std::string::npos);
  EXPECT_NE(b->err().find("event=delivery.sent"), std::string::npos);
}

}  // namespace
}  // namespace authcode
