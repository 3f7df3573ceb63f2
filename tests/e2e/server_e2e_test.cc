// The real `authcode` binary, started the way an operator would, with the
// console provider: health, reflection, an issue/verify round trip with the
// code read from the console, the subcommands, and a clean stop.
//
// This binary links no server code, only generated stubs, so it also
// proves the API is usable from a plain client.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestDatabase;

// A child process with its stdout and stderr collected in the background.
class Process {
 public:
  Process(const std::vector<std::string>& args,
          const std::vector<std::string>& env) {
    int out[2], err[2];
    EXPECT_EQ(pipe(out), 0);
    EXPECT_EQ(pipe(err), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      close(out[0]);
      close(err[0]);
      std::vector<char*> argv, envp;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    readers_.emplace_back([this, fd = out[0]] { Drain(fd, stdout_); });
    readers_.emplace_back([this, fd = err[0]] { Drain(fd, stderr_); });
  }

  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }

  // Waits for the exit status (or -1 past the timeout).
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    exited_ = true;
    for (std::thread& t : readers_) t.join();
    readers_.clear();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  void Signal(int sig) { kill(pid_, sig); }

  std::string out() {
    std::lock_guard<std::mutex> lock(mu_);
    return stdout_;
  }
  std::string err() {
    std::lock_guard<std::mutex> lock(mu_);
    return stderr_;
  }

  // Waits until `pattern` matches stdout or stderr; returns the first
  // capture group.
  std::string WaitFor(bool on_stdout, const std::string& pattern,
                      std::chrono::seconds timeout = std::chrono::seconds(20)) {
    const std::regex re(pattern);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string text = on_stdout ? out() : err();
      if (std::regex_search(text, m, re)) return m.size() > 1 ? m[1] : m[0];
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "timed out waiting for /" << pattern << "/\nstdout:\n"
                  << out() << "\nstderr:\n"
                  << err();
    return "";
  }

 private:
  void Drain(int fd, std::string& into) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      into.append(buf, n);
    }
    close(fd);
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  std::mutex mu_;
  std::string stdout_, stderr_;
  std::vector<std::thread> readers_;
};

std::string KeyRing(const std::string& id, char fill) {
  return absl::StrCat(id, ":", absl::Base64Escape(std::string(32, fill)));
}

class ServerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    env_ = {
        "PATH=/usr/bin:/bin",
        "AUTHCODE_DATABASE_URL=" + db_->url(),
        "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
        "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
        "AUTHCODE_LISTEN=127.0.0.1:0",
    };
  }

  std::unique_ptr<TestDatabase> db_;
  std::vector<std::string> env_;
};

TEST_F(ServerE2eTest, CheckConfigAcceptsTheEmbeddedDefaults) {
  Process p({AUTHCODE_BINARY, "check-config"}, env_);
  EXPECT_EQ(p.Wait(), 0) << p.err();
  EXPECT_THAT(p.out(), HasSubstr("config OK"));
}

TEST_F(ServerE2eTest, CheckConfigNamesAMissingSecret) {
  Process p({AUTHCODE_BINARY, "check-config"},
            {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
             "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o')});
  EXPECT_EQ(p.Wait(), 2);
  EXPECT_THAT(p.err(), HasSubstr("AUTHCODE_HASHING_KEYS"));
}

TEST_F(ServerE2eTest, MigrateAppliesTheSchemaAndExits) {
  Process p({AUTHCODE_BINARY, "migrate"}, env_);
  EXPECT_EQ(p.Wait(), 0) << p.err();
  EXPECT_EQ(db_->Scalar("SELECT count(*) > 0 FROM authcode_migrations"), "t");
}

TEST_F(ServerE2eTest, ServesHealthReflectionAndARoundTrip) {
  Process server({AUTHCODE_BINARY}, env_);
  const std::string port =
      server.WaitFor(false, "event=server.started .*port=([0-9]+)");
  ASSERT_FALSE(port.empty());
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());

  // The console provider says what it is.
  EXPECT_THAT(server.err(), HasSubstr("development"));

  // Health, overall and for the API.
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const char* service : {"", "authcode.v1.AuthCodeService"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }

  // Reflection lists the services and serves the API's descriptor.
  auto reflection =
      grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext rctx;
  auto stream = reflection->ServerReflectionInfo(&rctx);
  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse listed;
  ASSERT_TRUE(stream->Read(&listed));
  std::vector<std::string> services;
  for (const auto& s : listed.list_services_response().service()) {
    services.push_back(s.name());
  }
  EXPECT_THAT(services,
              ::testing::IsSupersetOf(
                  {"authcode.v1.AuthCodeService", "grpc.health.v1.Health",
                   "grpc.reflection.v1alpha.ServerReflection"}));
  grpc::reflection::v1alpha::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("authcode.v1.AuthCodeService");
  ASSERT_TRUE(stream->Write(symbol));
  grpc::reflection::v1alpha::ServerReflectionResponse described;
  ASSERT_TRUE(stream->Read(&described));
  ASSERT_GT(described.file_descriptor_response().file_descriptor_proto_size(),
            0);
  EXPECT_THAT(described.file_descriptor_response().file_descriptor_proto(0),
              HasSubstr("VerifyCode"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Issue, read the code off the console, verify.
  auto api = v1::AuthCodeService::NewStub(channel);
  v1::IssueCodeRequest issue;
  issue.set_recipient("grace@example.com");
  issue.set_purpose("login");
  v1::IssueCodeResponse issued;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(api->IssueCode(&ctx, issue, &issued).ok());
  }
  const std::string mail =
      server.WaitFor(true, issued.code_id() + "[^]*?-----\\s*$");
  const std::string code =
      server.WaitFor(true, issued.code_id() + "[^]*?\\b([0-9]{6})\\b");
  ASSERT_EQ(code.size(), 6u) << server.out();
  (void)mail;

  v1::VerifyCodeRequest verify;
  verify.set_recipient("grace@example.com");
  verify.set_purpose("login");
  verify.set_code(code);
  v1::VerifyCodeResponse verified;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(api->VerifyCode(&ctx, verify, &verified).ok());
  }
  EXPECT_EQ(verified.outcome(), v1::VERIFY_OUTCOME_VERIFIED);

  // A clean stop on SIGTERM.
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0);

  // The log has the masked recipient and never the code or a secret.
  const std::string log = server.err();
  EXPECT_THAT(log, HasSubstr("event=rpc.verify_code"));
  EXPECT_THAT(log, HasSubstr("g***@example.com"));
  EXPECT_THAT(log, Not(HasSubstr("grace@example.com")));
  EXPECT_THAT(log, Not(HasSubstr(code)));
  EXPECT_THAT(log, Not(HasSubstr(absl::Base64Escape(std::string(32, 'h')))));
  EXPECT_THAT(log, Not(HasSubstr(db_->url())));
  EXPECT_THAT(log, HasSubstr("event=server.stopped"));
}

TEST_F(ServerE2eTest, RefusesToStartWithoutADatabase) {
  std::vector<std::string> env = env_;
  env[1] = "AUTHCODE_DATABASE_URL=postgresql://x:y@127.0.0.1:1/none";
  Process server({AUTHCODE_BINARY}, env);
  EXPECT_EQ(server.Wait(), 1);
  EXPECT_THAT(server.err(), HasSubstr("database"));
  EXPECT_THAT(server.err(), Not(HasSubstr("x:y@")));
}

}  // namespace
}  // namespace authcode
