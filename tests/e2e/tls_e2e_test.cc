// The real `authcode` binary with transport security: TLS, mutual TLS with
// a required or optional client certificate, a certificate replaced on
// SIGHUP (and a bad replacement refused), and the rule that plaintext stays
// on loopback unless server.allow_plaintext says otherwise; callers named
// by their client certificate or their bearer token.
//
// Certificates come from tests/support/test_certs.py, made afresh for each
// test; clients are plain gRPC stubs, as in any caller.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"
#include "tests/support/files.h"
#include "tests/support/peer_process.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

namespace fs = std::filesystem;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using testing::KeyRing;
using ::testing::Not;
using testing::Process;
using testing::ReadFile;
using testing::TestDatabase;

// How long a test waits for a reload to show in new handshakes.
constexpr auto kReloadWait = std::chrono::seconds(10);

// A client's view of the server's transport: the roots it trusts and, for
// mutual TLS, the certificate it presents.
struct Client {
  std::string ca_file;    // Empty: a plaintext client.
  std::string cert_stem;  // "client": client.pem and client.key; or empty.
};

// A new connection, so that every call makes a handshake of its own.
std::shared_ptr<grpc::Channel> Connect(const std::string& port,
                                       const std::string& dir,
                                       const Client& client) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (!client.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(fs::path(dir) / client.ca_file);
    if (!client.cert_stem.empty()) {
      ssl.pem_cert_chain =
          ReadFile(fs::path(dir) / (client.cert_stem + ".pem"));
      ssl.pem_private_key =
          ReadFile(fs::path(dir) / (client.cert_stem + ".key"));
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   credentials, args);
}

// One health check on a new connection.
grpc::Status Check(const std::string& port, const std::string& dir,
                   const Client& client) {
  auto channel = Connect(port, dir, client);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  HealthCheckResponse response;
  const grpc::Status status = Health::NewStub(channel)->Check(
      &context, HealthCheckRequest(), &response);
  if (status.ok() && response.status() != HealthCheckResponse::SERVING) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "not SERVING");
  }
  return status;
}

// Checks until one call succeeds or kReloadWait has passed.
grpc::Status CheckUntilOk(const std::string& port, const std::string& dir,
                          const Client& client) {
  const auto deadline = std::chrono::steady_clock::now() + kReloadWait;
  grpc::Status status;
  do {
    status = Check(port, dir, client);
    if (status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  return status;
}

// Replaces `to` with a copy of `from` in one rename, as a deployment tool
// swapping certificates would.
void Replace(const fs::path& from, const fs::path& to) {
  const fs::path staged = to.string() + ".new";
  fs::copy_file(from, staged, fs::copy_options::overwrite_existing);
  fs::rename(staged, to);
}

class TlsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    dir_ = testing::MakeTempDir("authcode-tls-e2e");
    ASSERT_TRUE(testing::MakeTestCerts(dir_, /*clients=*/true));
  }

  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // Starts the binary with a config file holding `server_section` under
  // [server]. The certificate paths in it are relative: they resolve
  // beside the config file, in dir_.
  std::unique_ptr<Process> Start(const std::string& server_section) {
    const std::string config = dir_ + "/authcode.toml";
    testing::WriteFile(config, "[server]\n" + server_section);
    return std::make_unique<Process>(
        std::vector<std::string>{AUTHCODE_BINARY, "--config", config},
        std::vector<std::string>{
            "PATH=/usr/bin:/bin",
            "AUTHCODE_DATABASE_URL=" + db_->url(),
            "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
            "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
        });
  }

  std::unique_ptr<TestDatabase> db_;
  std::string dir_;
};

// The server runs on a loopback address in these tests, where callers
// need not authenticate unless [tenants] say so; off loopback it needs
// tenants, or this.
constexpr char kOpen[] = "allow_unauthenticated = true\n";

constexpr char kTls[] =
    "tls_cert_file = \"server.pem\"\n"
    "tls_key_file = \"server.key\"\n";
constexpr char kMutualTls[] =
    "tls_cert_file = \"server.pem\"\n"
    "tls_key_file = \"server.key\"\n"
    "tls_client_ca_file = \"ca.pem\"\n";

TEST_F(TlsE2eTest, ServesHealthOverTlsOnAnyAddress) {
  // With TLS, an address other than loopback needs no allow_plaintext.
  auto server = Start(absl::StrCat("listen = \"0.0.0.0:0\"\n", kTls, kOpen));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();

  const grpc::Status status = Check(port, dir_, {"ca.pem", ""});
  EXPECT_TRUE(status.ok()) << status.error_message();

  const std::string log = server->err();
  EXPECT_THAT(log, HasSubstr("transport=tls "));
  EXPECT_THAT(log, HasSubstr("event=tls.loaded"));
  EXPECT_THAT(log, Not(HasSubstr("event=server.plaintext")));
  EXPECT_THAT(log, Not(HasSubstr("PRIVATE KEY")));
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
}

TEST_F(TlsE2eTest, RefusesAPlaintextClient) {
  auto server = Start(absl::StrCat("listen = \"127.0.0.1:0\"\n", kTls));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();

  EXPECT_EQ(Check(port, dir_, {"", ""}).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A client that trusts another CA does not get through either.
  EXPECT_EQ(Check(port, dir_, {"other-ca.pem", ""}).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsE2eTest, MutualTlsAdmitsOnlyCertificatesOfTheClientCa) {
  auto server = Start(absl::StrCat("listen = \"127.0.0.1:0\"\n", kMutualTls));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();
  EXPECT_THAT(server->err(), HasSubstr("transport=mtls "));
  EXPECT_THAT(server->err(), HasSubstr("client_auth=require"));

  const grpc::Status trusted = Check(port, dir_, {"ca.pem", "client"});
  EXPECT_TRUE(trusted.ok()) << trusted.error_message();
  EXPECT_EQ(Check(port, dir_, {"ca.pem", ""}).error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "a client without a certificate";
  EXPECT_EQ(Check(port, dir_, {"ca.pem", "other-client"}).error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "a client whose certificate comes from an unrelated CA";
}

TEST_F(TlsE2eTest, OptionalClientAuthStillRefusesAForeignCertificate) {
  auto server = Start(absl::StrCat("listen = \"127.0.0.1:0\"\n", kMutualTls,
                                   "tls_client_auth = \"optional\"\n"));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();

  const grpc::Status anonymous = Check(port, dir_, {"ca.pem", ""});
  EXPECT_TRUE(anonymous.ok()) << anonymous.error_message();
  const grpc::Status trusted = Check(port, dir_, {"ca.pem", "client"});
  EXPECT_TRUE(trusted.ok()) << trusted.error_message();
  EXPECT_EQ(Check(port, dir_, {"ca.pem", "other-client"}).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsE2eTest, SighupSwapsInANewCertificate) {
  auto server = Start(absl::StrCat("listen = \"127.0.0.1:0\"\n", kTls));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();
  const grpc::Status before = Check(port, dir_, {"ca.pem", ""});
  ASSERT_TRUE(before.ok()) << before.error_message();

  // A certificate from a new CA, put where the config points, then SIGHUP.
  const std::string fresh = testing::MakeTempDir("authcode-tls-e2e-new");
  ASSERT_TRUE(testing::MakeTestCerts(fresh));
  fs::copy_file(fs::path(fresh) / "ca.pem", fs::path(dir_) / "new-ca.pem");
  Replace(fs::path(fresh) / "server.key", fs::path(dir_) / "server.key");
  Replace(fs::path(fresh) / "server.pem", fs::path(dir_) / "server.pem");
  fs::remove_all(fresh);
  server->Signal(SIGHUP);

  const grpc::Status after = CheckUntilOk(port, dir_, {"new-ca.pem", ""});
  EXPECT_TRUE(after.ok()) << after.error_message() << "\n" << server->err();
  EXPECT_EQ(Check(port, dir_, {"ca.pem", ""}).error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "a client trusting only the old CA";
  EXPECT_THAT(server->err(), HasSubstr("event=tls.reloaded"));

  // The server still stops cleanly: SIGHUP did not disturb signal handling.
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
}

TEST_F(TlsE2eTest, SighupKeepsTheOldCertificateWhenTheNewOneIsBad) {
  auto server = Start(absl::StrCat("listen = \"127.0.0.1:0\"\n", kTls));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();

  // A new certificate without its key: the pair does not match.
  const std::string fresh = testing::MakeTempDir("authcode-tls-e2e-new");
  ASSERT_TRUE(testing::MakeTestCerts(fresh));
  const std::string good_cert = ReadFile(fs::path(dir_) / "server.pem");
  Replace(fs::path(fresh) / "server.pem", fs::path(dir_) / "server.pem");
  fs::remove_all(fresh);
  server->Signal(SIGHUP);
  server->WaitFor(false, "event=tls.reload_failed .*server.tls_key_file");
  grpc::Status status = Check(port, dir_, {"ca.pem", ""});
  EXPECT_TRUE(status.ok()) << status.error_message();

  // Then a file that is no certificate at all.
  testing::WriteFile(fs::path(dir_) / "server.pem", "not a certificate\n");
  server->Signal(SIGHUP);
  server->WaitFor(false,
                  "event=tls.reload_failed .*server.tls_cert_file[^\\n]*"
                  "holds no certificate");
  status = Check(port, dir_, {"ca.pem", ""});
  EXPECT_TRUE(status.ok()) << status.error_message();

  // Repaired, the next SIGHUP takes it.
  testing::WriteFile(fs::path(dir_) / "server.pem", good_cert);
  server->Signal(SIGHUP);
  server->WaitFor(false, "event=tls.reloaded");
  status = Check(port, dir_, {"ca.pem", ""});
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(server->err(), Not(HasSubstr("PRIVATE KEY")));
}

TEST_F(TlsE2eTest, RefusesToStartWithAKeyThatIsNotTheCertificates) {
  const std::string fresh = testing::MakeTempDir("authcode-tls-e2e-new");
  ASSERT_TRUE(testing::MakeTestCerts(fresh));
  Replace(fs::path(fresh) / "server.key", fs::path(dir_) / "server.key");
  fs::remove_all(fresh);

  auto server = Start(absl::StrCat("listen = \"127.0.0.1:0\"\n", kTls));
  EXPECT_EQ(server->Wait(), 1);
  EXPECT_THAT(server->err(), HasSubstr("server.tls_key_file"));
  EXPECT_THAT(server->err(), HasSubstr("is not the key of the certificate"));
  EXPECT_THAT(server->err(), Not(HasSubstr("PRIVATE KEY")));

  // check-config reads the files too.
  Process check(
      {AUTHCODE_BINARY, "--config", dir_ + "/authcode.toml", "check-config"},
      {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
       "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
       "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o')});
  EXPECT_EQ(check.Wait(), 2);
  EXPECT_THAT(check.err(), HasSubstr("server.tls_key_file"));
}

TEST_F(TlsE2eTest, RefusesPlaintextOffLoopback) {
  auto server = Start("listen = \"0.0.0.0:0\"\n");
  const int status = server->Wait();
  EXPECT_NE(status, 0);
  EXPECT_NE(status, -1) << "still running";
  EXPECT_THAT(server->err(), HasSubstr("server.allow_plaintext"));
  EXPECT_THAT(server->err(), Not(HasSubstr("event=server.started")));
}

TEST_F(TlsE2eTest, AllowPlaintextStartsOffLoopbackAndWarns) {
  auto server = Start(
      absl::StrCat("listen = \"0.0.0.0:0\"\nallow_plaintext = true\n", kOpen));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();
  EXPECT_THAT(server->err(), HasSubstr("event=server.plaintext"));
  EXPECT_THAT(server->err(), HasSubstr("transport=plaintext "));

  grpc::Status status = Check(port, dir_, {"", ""});
  EXPECT_TRUE(status.ok()) << status.error_message();

  // Without TLS, SIGHUP has nothing to reload and does no harm.
  server->Signal(SIGHUP);
  server->WaitFor(false, "event=tls.reload_skipped");
  status = Check(port, dir_, {"", ""});
  EXPECT_TRUE(status.ok()) << status.error_message();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
}

// printf %s ac_shop-token | sha256sum
constexpr char kShopToken[] = "ac_shop-token";
constexpr char kShopDigest[] =
    "facd7bbaf0cde6ee55d466c84ca692a03b825a2b5bd158563b5480b4036d888c";

// IssueCode for ada over a new connection as `client`, with `token` as a
// bearer token unless empty.
grpc::Status IssueAs(const std::string& port, const std::string& dir,
                     const Client& client, const std::string& token) {
  auto stub = v1::AuthCodeService::NewStub(Connect(port, dir, client));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  if (!token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  v1::IssueCodeRequest request;
  request.set_recipient("ada@example.com");
  request.set_purpose("login");
  v1::IssueCodeResponse response;
  return stub->IssueCode(&context, request, &response);
}

TEST_F(TlsE2eTest, AClientCertificateOrATokenNamesTheTenant) {
  // client.pem carries spiffe://authcode.test/billing among its names.
  auto server =
      Start(absl::StrCat("listen = \"127.0.0.1:0\"\n", kMutualTls,
                         "tls_client_auth = \"optional\"\n"
                         "[tenants.billing]\n"
                         "client_names = [\"spiffe://authcode.test/billing\"]\n"
                         "[tenants.shop]\n"
                         "token_sha256 = [\"",
                         kShopDigest, "\"]\n"));
  const std::string port = testing::WaitForPort(*server);
  ASSERT_FALSE(port.empty()) << server->err();

  const grpc::Status by_certificate =
      IssueAs(port, dir_, {"ca.pem", "client"}, "");
  EXPECT_TRUE(by_certificate.ok()) << by_certificate.error_message();
  server->WaitFor(false, "tenant=billing");

  const grpc::Status by_token = IssueAs(port, dir_, {"ca.pem", ""}, kShopToken);
  EXPECT_TRUE(by_token.ok()) << by_token.error_message();
  server->WaitFor(false, "tenant=shop");

  EXPECT_EQ(IssueAs(port, dir_, {"ca.pem", ""}, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED)
      << "no certificate and no token";
  EXPECT_EQ(IssueAs(port, dir_, {"ca.pem", "client"}, kShopToken).error_code(),
            grpc::StatusCode::UNAUTHENTICATED)
      << "a certificate of one tenant with the token of another";
  EXPECT_EQ(
      IssueAs(port, dir_, {"ca.pem", "other-client"}, kShopToken).error_code(),
      grpc::StatusCode::UNAVAILABLE)
      << "an untrusted certificate fails the handshake, token or not";

  EXPECT_EQ(db_->Scalar("SELECT string_agg(tenant, ',' ORDER BY tenant) "
                        "FROM codes"),
            "billing,shop");
  EXPECT_THAT(server->err(), Not(HasSubstr(kShopToken)));
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
}

}  // namespace
}  // namespace authcode
