// An in-process authcode server on a real port (127.0.0.1, port 0) with a
// CapturingProvider, and a real gRPC channel to it.
#ifndef AUTHCODE_TESTS_SUPPORT_TEST_SERVER_H_
#define AUTHCODE_TESTS_SUPPORT_TEST_SERVER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/config.h"
#include "server/server.h"
#include "tests/support/capturing_provider.h"

namespace authcode::testing {

// Fixed test keys: 32 bytes each.
Key TestHashingKey(const std::string& id = "h1");
Key TestOutboxKey(const std::string& id = "o1");

// Defaults for tests: the given database, port 0, fast delivery polling.
Config TestConfig(const std::string& database_url);

class TestServer {
 public:
  // Starts the server or fails the current test (returns null). Every
  // provider instance the config's chains name is a CapturingProvider;
  // provider() is the one named "capture", provider(name) any of them.
  static std::unique_ptr<TestServer> Start(const Config& config,
                                           bool start_worker = true);
  ~TestServer();

  v1::AuthCodeService::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  CapturingProvider& provider() { return *providers_.at("capture"); }
  CapturingProvider& provider(const std::string& name) {
    return *providers_.at(name);
  }
  Server& server() { return *server_; }
  const Config& config() const { return config_; }

  // IssueCode with a 10 s deadline.
  grpc::Status Issue(const v1::IssueCodeRequest& request,
                     v1::IssueCodeResponse* response = nullptr);
  grpc::Status Issue(const std::string& recipient, const std::string& purpose,
                     v1::IssueCodeResponse* response = nullptr);
  // VerifyCode with a 10 s deadline; the outcome, or UNSPECIFIED when the
  // RPC failed (the status is in *status when given).
  v1::VerifyCodeResponse Verify(const std::string& recipient,
                                const std::string& purpose,
                                const std::string& code,
                                grpc::Status* status = nullptr);

  // Issues a code and waits for its mail; returns the code (or "" and
  // fails the test).
  std::string IssueAndReceive(const std::string& recipient,
                              const std::string& purpose);

 private:
  TestServer() = default;

  Config config_;
  std::map<std::string, CapturingProvider*> providers_;  // Owned by server_.
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AuthCodeService::Stub> stub_;
};

std::unique_ptr<v1::AuthCodeService::Stub> NewStub(int port);

// The error details a status carries, if it has that kind.
std::optional<google::rpc::BadRequest> BadRequestOf(const grpc::Status& s);
std::optional<absl::Duration> RetryDelayOf(const grpc::Status& s);

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_TEST_SERVER_H_
