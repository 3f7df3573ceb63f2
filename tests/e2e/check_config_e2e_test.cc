// `authcode check-config` as an operator runs it: a good config, one bad
// config of each class (exit 2), and with --connect a database or an SMTP
// provider that cannot be reached or refuses us (exit 3) and a database
// whose schema is not migrated (exit 4). Every failure must name its
// reason on stderr.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"
#include "tests/providers/smtp/smtp_peer.h"
#include "tests/support/files.h"
#include "tests/support/peer_process.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using ::testing::HasSubstr;
using testing::KeyRing;
using ::testing::Not;
using testing::Process;
using testing::SmtpPeer;
using testing::TestDatabase;

constexpr char kSmtpPassword[] = "check-config-pa55";

// How a finished run ended.
struct Finished {
  int status = -1;
  std::string out;
  std::string err;
};

class CheckConfigE2eTest : public testing::WithTestCerts<CheckConfigE2eTest> {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    dir_ = testing::MakeTempDir("authcode-check-e2e");
    env_ = {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
            "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
            "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
            std::string("TEST_SMTP_PASSWORD=") + kSmtpPassword};
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `toml` as the config and runs `authcode --config FILE args...`.
  Finished Check(const std::string& toml,
                 const std::vector<std::string>& args = {"check-config"}) {
    const std::string config = dir_ + "/authcode.toml";
    testing::WriteFile(config, toml);
    std::vector<std::string> command = {AUTHCODE_BINARY, "--config", config};
    command.insert(command.end(), args.begin(), args.end());
    Process process(command, env_);
    Finished run;
    run.status = process.Wait();
    run.out = process.out();
    run.err = process.err();
    return run;
  }

  void UnsetEnv(const std::string& name) {
    env_.erase(std::remove_if(env_.begin(), env_.end(),
                              [&](const std::string& entry) {
                                return entry.rfind(name + "=", 0) == 0;
                              }),
               env_.end());
  }

  // Replaces (or adds) the variable NAME of "NAME=value".
  void SetEnv(const std::string& assignment) {
    UnsetEnv(assignment.substr(0, assignment.find('=')));
    env_.push_back(assignment);
  }

  void Migrate() {
    Process migrate({AUTHCODE_BINARY, "migrate"}, env_);
    ASSERT_EQ(migrate.Wait(), 0) << migrate.err();
  }

  // A chain of one SMTP instance, "relay", at `port` on localhost, trusting
  // the test CA unless `trust_ca` is false.
  static std::string SmtpConfig(int port, bool trust_ca = true) {
    return absl::StrCat(
        "[delivery]\nchain = [\"relay\"]\n"
        "[providers.relay]\ntype = \"smtp\"\nhost = \"localhost\"\n",
        "port = ", port, "\ntimeout = \"5s\"\n",
        trust_ca ? absl::StrCat("ca_file = \"", certs(), "/ca.pem\"\n") : "",
        "username = \"mailer\"\npassword_env = \"TEST_SMTP_PASSWORD\"\n");
  }

  static std::unique_ptr<SmtpPeer> StartSmtp() {
    return std::make_unique<SmtpPeer>(std::vector<std::string>{
        "--security", "starttls", "--cert", certs() + "/server.pem", "--key",
        certs() + "/server.key", "--auth",
        absl::StrCat("mailer:", kSmtpPassword)});
  }

  std::unique_ptr<TestDatabase> db_;
  std::string dir_;
  std::vector<std::string> env_;
};

// --- Good configs ----------------------------------------------------------

TEST_F(CheckConfigE2eTest, AGoodConfigPassesWithOneLinePerCheck) {
  const Finished run = Check("[codes]\nlength = 8\n");
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("ok    config: "));
  EXPECT_THAT(run.out, HasSubstr("ok    server.tls: off"));
  EXPECT_THAT(run.out, HasSubstr("ok    mail.templates: built-in"));
  EXPECT_THAT(run.out, HasSubstr("ok    providers.console: console"));
  EXPECT_THAT(run.out, HasSubstr("config OK"));
  EXPECT_THAT(run.out, Not(HasSubstr("database"))) << "offline by default";
}

TEST_F(CheckConfigE2eTest, TheFlagSpellingIsTheSameCommand) {
  const Finished run = Check("", {"--check-config"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("config OK"));
}

TEST_F(CheckConfigE2eTest, ConnectReachesTheDatabaseAndLogsInToSmtp) {
  Migrate();
  std::unique_ptr<SmtpPeer> smtp = StartSmtp();
  const Finished run =
      Check(SmtpConfig(smtp->port()), {"check-config", "--connect"});

  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("ok    database: reachable, schema current"));
  EXPECT_THAT(run.out,
              HasSubstr("ok    providers.relay: smtp, reachable (nothing "
                        "sent)"));
  const std::string commands = smtp->Commands();
  EXPECT_THAT(commands, HasSubstr("STARTTLS"));
  EXPECT_THAT(commands, HasSubstr("AUTH"));
  EXPECT_THAT(commands, HasSubstr("QUIT"));
  EXPECT_THAT(commands, Not(HasSubstr("MAIL FROM")));
  EXPECT_EQ(smtp->Messages(), 0);
  EXPECT_THAT(run.out + run.err, Not(HasSubstr(kSmtpPassword)));
}

TEST_F(CheckConfigE2eTest, AGoodTlsConfigReportsTheCertificate) {
  const Finished run = Check(absl::StrCat(
      "[server]\ntls_cert_file = \"", certs(),
      "/server.pem\"\ntls_key_file = \"", certs(), "/server.key\"\n"));
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("ok    server.tls: tls, certificate and key "
                                 "match"));
}

// --- Invalid configs: exit 2 ----------------------------------------------

TEST_F(CheckConfigE2eTest, TomlSyntaxErrorNamesTheLine) {
  const Finished run = Check("[codes]\nlength = 6\nttl = \"10m\n");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("FAIL  config: "));
  EXPECT_THAT(run.err, HasSubstr("authcode.toml:3:"));
}

TEST_F(CheckConfigE2eTest, UnknownKeyIsNamed) {
  const Finished run = Check("[codes]\nlenght = 6\n");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("codes.lenght: unknown key"));
}

TEST_F(CheckConfigE2eTest, WrongTypeIsNamed) {
  const Finished run = Check("[codes]\nlength = \"six\"\n");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("codes.length"));
  EXPECT_THAT(run.err, HasSubstr("an integer"));
}

TEST_F(CheckConfigE2eTest, OutOfRangeValueIsNamed) {
  const Finished run = Check("[codes]\nlength = 12\n");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err,
              HasSubstr("codes.length: must be between 6 and 10, got 12"));
}

TEST_F(CheckConfigE2eTest, MissingKeyRingIsNamed) {
  UnsetEnv("AUTHCODE_HASHING_KEYS");
  const Finished run = Check("");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("AUTHCODE_HASHING_KEYS"));
}

TEST_F(CheckConfigE2eTest, MalformedKeyRingIsNamedButNotQuoted) {
  SetEnv("AUTHCODE_OUTBOX_KEYS=o1:c2hvcnQtc2VjcmV0");  // "short-secret"
  const Finished run = Check("");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("AUTHCODE_OUTBOX_KEYS"));
  EXPECT_THAT(run.err, Not(HasSubstr("c2hvcnQtc2VjcmV0")));
}

TEST_F(CheckConfigE2eTest, UnknownProviderInAChainListsTheValidTypes) {
  const Finished run = Check("[delivery]\nchain = [\"console\", \"pigeon\"]\n");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err,
              HasSubstr("FAIL  providers.pigeon: unknown provider type "
                        "\"pigeon\""));
  EXPECT_THAT(run.err, HasSubstr("smtp"));
  EXPECT_THAT(run.out, HasSubstr("ok    providers.console"))
      << "the other instances are still checked";
}

TEST_F(CheckConfigE2eTest, BadProviderSettingIsNamed) {
  const Finished run = Check(
      "[delivery]\nchain = [\"relay\"]\n"
      "[providers.relay]\ntype = \"smtp\"\nhost = \"localhost\"\n"
      "port = 99999\n");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("FAIL  providers.relay.port: must be"));
}

TEST_F(CheckConfigE2eTest, UnreadableTlsFileIsNamed) {
  testing::WriteFile(dir_ + "/server.pem", "not a certificate\n");
  const Finished run = Check(absl::StrCat("[server]\ntls_cert_file = \"", dir_,
                                          "/server.pem\"\ntls_key_file = \"",
                                          certs(), "/server.key\"\n"));
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("FAIL  server.tls: "));
  EXPECT_THAT(run.err, HasSubstr("server.tls_cert_file"));
}

TEST_F(CheckConfigE2eTest, BadListenAddressIsNamed) {
  const Finished run = Check("[server]\nlisten = \"127.0.0.1\"\n");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("server.listen"));
}

TEST_F(CheckConfigE2eTest, ConnectWithoutCheckConfigIsAUsageError) {
  Process process({AUTHCODE_BINARY, "--connect", "migrate"}, env_);
  EXPECT_EQ(process.Wait(), 2);
  EXPECT_THAT(process.err(), HasSubstr("--connect goes with check-config"));
}

// --- Dependencies, with --connect: exit 3 or 4 -----------------------------

TEST_F(CheckConfigE2eTest, UnreachableDatabaseIsExit3WithoutThePassword) {
  // Nothing listens on port 1 of loopback.
  SetEnv(
      "AUTHCODE_DATABASE_URL=postgresql://authcode:pw-never-shown@"
      "127.0.0.1:1/authcode");
  const Finished run = Check("", {"check-config", "--connect"});
  EXPECT_EQ(run.status, 3);
  EXPECT_THAT(run.err, HasSubstr("FAIL  database: the database is "
                                 "unreachable"));
  EXPECT_THAT(run.err, HasSubstr("event=db.unavailable"));
  EXPECT_THAT(run.out + run.err, Not(HasSubstr("pw-never-shown")));
}

TEST_F(CheckConfigE2eTest, UnmigratedDatabaseIsExit4AndListsWhatIsPending) {
  const Finished run = Check("", {"check-config", "--connect"});
  EXPECT_EQ(run.status, 4);
  EXPECT_THAT(run.err, HasSubstr("FAIL  database: "));
  EXPECT_THAT(run.err, HasSubstr("migrations pending: 0001_init.sql"));
  EXPECT_THAT(run.err, HasSubstr("authcode migrate"));
  EXPECT_EQ(db_->Scalar("SELECT to_regclass('authcode_migrations') IS NULL"),
            "t")
      << "check-config must not migrate";
}

TEST_F(CheckConfigE2eTest, UnreachableSmtpServerIsExit3) {
  Migrate();
  const Finished run = Check(SmtpConfig(1), {"check-config", "--connect"});
  EXPECT_EQ(run.status, 3);
  EXPECT_THAT(run.err, HasSubstr("FAIL  providers.relay: smtp: connect: "
                                 "localhost:1: "));
  EXPECT_THAT(run.out, HasSubstr("ok    database"));
}

TEST_F(CheckConfigE2eTest, SmtpCertificateThatDoesNotVerifyIsExit3) {
  Migrate();
  std::unique_ptr<SmtpPeer> smtp = StartSmtp();
  const Finished run = Check(SmtpConfig(smtp->port(), /*trust_ca=*/false),
                             {"check-config", "--connect"});
  EXPECT_EQ(run.status, 3);
  EXPECT_THAT(run.err, HasSubstr("FAIL  providers.relay: "));
  EXPECT_THAT(run.err, HasSubstr("failed verification"));
  EXPECT_THAT(smtp->Commands(), Not(HasSubstr("AUTH")))
      << "no credentials to a server that did not prove who it is";
}

TEST_F(CheckConfigE2eTest, AnInvalidConfigOutranksAnUnreachableDependency) {
  SetEnv("AUTHCODE_DATABASE_URL=postgresql://authcode@127.0.0.1:1/authcode");
  const Finished run = Check("[delivery]\nchain = [\"pigeon\"]\n",
                             {"check-config", "--connect"});
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.err, HasSubstr("FAIL  providers.pigeon"));
  EXPECT_THAT(run.err, HasSubstr("FAIL  database"));
}

}  // namespace
}  // namespace authcode
