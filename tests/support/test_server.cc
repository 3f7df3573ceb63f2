#include "tests/support/test_server.h"

#include <fstream>
#include <memory>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/spdlog.h"
#include "tests/support/kept_logs.h"

namespace authcode::testing {
namespace {

// For tests/e2e/log_scan.py (see kept_logs.h): this process's log lines
// from the first server on, and the secrets of every server's config.
void KeepInProcessLogs(const Config& config) {
  const std::string base = KeptPath(absl::StrCat("inproc-", getpid()));
  if (base.empty()) return;
  std::lock_guard<std::mutex> lock(KeptFilesMutex());
  static bool sink_added = false;
  if (!sink_added) {
    // At the first server's start, before any server thread logs.
    spdlog::default_logger()->sinks().push_back(
        std::make_shared<spdlog::sinks::basic_file_sink_mt>(base + ".err"));
    sink_added = true;
  }
  const auto ring = [](const std::vector<Key>& keys) {
    return absl::StrJoin(keys, ",", [](std::string* out, const Key& key) {
      absl::StrAppend(out, key.id, ":", absl::Base64Escape(key.secret));
    });
  };
  std::ofstream(base + ".env", std::ios::app)
      << "AUTHCODE_HASHING_KEYS=" << ring(config.hashing_keys) << "\n"
      << "AUTHCODE_OUTBOX_KEYS=" << ring(config.outbox_keys) << "\n"
      << "AUTHCODE_DATABASE_URL=" << config.database.url << "\n";
}

}  // namespace

Key TestHashingKey(const std::string& id) {
  return {id, std::string(32, id.empty() ? 'h' : id.back())};
}

Key TestOutboxKey(const std::string& id) {
  return {id, std::string(32, static_cast<char>('A' + id.size()))};
}

Config TestConfig(const std::string& database_url) {
  Config config;
  config.server.listen = "127.0.0.1:0";
  config.server.shutdown_grace = absl::Seconds(2);
  config.database.url = database_url;
  config.database.pool_size = 8;
  config.hashing_keys = {TestHashingKey()};
  config.outbox_keys = {TestOutboxKey()};
  config.delivery.chain = {"capture"};
  config.delivery.poll_interval = absl::Milliseconds(50);
  config.delivery.backoff_base = absl::Milliseconds(10);
  config.delivery.backoff_max = absl::Milliseconds(50);
  config.log.level = "warn";
  return config;
}

std::unique_ptr<v1::AuthCodeService::Stub> NewStub(int port) {
  return v1::AuthCodeService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
}

std::unique_ptr<TestServer> TestServer::Start(const Config& config,
                                              bool start_worker) {
  KeepInProcessLogs(config);
  auto test = std::unique_ptr<TestServer>(new TestServer());
  test->config_ = config;
  Server::Options options;
  options.start_worker = start_worker;
  std::vector<std::string> names = config.delivery.chain;
  for (const auto& [purpose, chain] : config.delivery.routes) {
    names.insert(names.end(), chain.begin(), chain.end());
  }
  for (const std::string& name : names) {
    if (options.providers.count(name) > 0) continue;
    auto provider = std::make_unique<CapturingProvider>();
    test->providers_[name] = provider.get();
    options.providers[name] = std::move(provider);
  }
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(config, std::move(options));
  if (!server.ok()) {
    ADD_FAILURE() << "server did not start: " << server.status();
    return nullptr;
  }
  test->server_ = *std::move(server);
  test->channel_ =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", test->server_->port()),
                          grpc::InsecureChannelCredentials());
  test->stub_ = v1::AuthCodeService::NewStub(test->channel_);
  return test;
}

TestServer::~TestServer() {
  if (server_ != nullptr) server_->Shutdown();
}

grpc::Status TestServer::Issue(const v1::IssueCodeRequest& request,
                               v1::IssueCodeResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::IssueCodeResponse ignored;
  return stub_->IssueCode(&context, request,
                          response != nullptr ? response : &ignored);
}

grpc::Status TestServer::Issue(const std::string& recipient,
                               const std::string& purpose,
                               v1::IssueCodeResponse* response) {
  v1::IssueCodeRequest request;
  request.set_recipient(recipient);
  request.set_purpose(purpose);
  return Issue(request, response);
}

v1::VerifyCodeResponse TestServer::Verify(const std::string& recipient,
                                          const std::string& purpose,
                                          const std::string& code,
                                          grpc::Status* status) {
  v1::VerifyCodeRequest request;
  request.set_recipient(recipient);
  request.set_purpose(purpose);
  request.set_code(code);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::VerifyCodeResponse response;
  grpc::Status s = stub_->VerifyCode(&context, request, &response);
  if (status != nullptr) *status = s;
  if (!s.ok()) response.Clear();
  return response;
}

std::string TestServer::IssueAndReceive(const std::string& recipient,
                                        const std::string& purpose) {
  CapturingProvider& sink = provider();
  const size_t before = sink.sent_count();
  grpc::Status status = Issue(recipient, purpose);
  if (!status.ok()) {
    ADD_FAILURE() << "IssueCode failed: " << status.error_message();
    return "";
  }
  if (!sink.WaitForSent(before + 1, absl::Seconds(10))) {
    ADD_FAILURE() << "no mail was sent for " << recipient;
    return "";
  }
  return sink.LastCodeFor(recipient, config_.codes.length).value_or("");
}

namespace {

template <typename Detail>
std::optional<Detail> DetailOf(const grpc::Status& s) {
  google::rpc::Status rich;
  if (s.error_details().empty() || !rich.ParseFromString(s.error_details())) {
    return std::nullopt;
  }
  for (const auto& any : rich.details()) {
    Detail detail;
    if (any.UnpackTo(&detail)) return detail;
  }
  return std::nullopt;
}

}  // namespace

std::optional<google::rpc::BadRequest> BadRequestOf(const grpc::Status& s) {
  return DetailOf<google::rpc::BadRequest>(s);
}

std::optional<absl::Duration> RetryDelayOf(const grpc::Status& s) {
  auto info = DetailOf<google::rpc::RetryInfo>(s);
  if (!info.has_value()) return std::nullopt;
  return absl::Seconds(info->retry_delay().seconds()) +
         absl::Nanoseconds(info->retry_delay().nanos());
}

}  // namespace authcode::testing
