// `authcode doctor`, the real binary, against a real DNS server on
// 127.0.0.1 (dnsmasq, tests/support/dns_server.h) serving one domain with
// everything right and one per failure: no SPF, two SPF records, a DKIM
// record of another key, no DMARC, and a From domain that does not align
// with the DKIM domain. DKIM keys are made by the openssl tool for the
// run: RSA 2048 (a record over 255 characters, published as two strings)
// and Ed25519.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/process.h"
#include "tests/support/dns_server.h"
#include "tests/support/files.h"

namespace authcode {
namespace {

using testing::DnsServer;
using ::testing::HasSubstr;
using testing::KeyRing;
using ::testing::Not;
using testing::Process;

// A private key made with the openssl tool, and its DKIM key record.
struct DkimKey {
  std::string pem_file;
  std::string record;  // "v=DKIM1; k=...; p=..."
};

// Makes a key of `algorithm` ("RSA" or "ED25519") in `dir`.
DkimKey MakeKey(const std::string& dir, const std::string& name,
                const std::string& algorithm) {
  const std::string pem = absl::StrCat(dir, "/", name, ".pem");
  const std::string der = absl::StrCat(dir, "/", name, ".der");
  const std::string options =
      algorithm == "RSA" ? " -pkeyopt rsa_keygen_bits:2048" : "";
  const std::string command =
      absl::StrCat("openssl genpkey -algorithm ", algorithm, options, " -out ",
                   pem, " 2>/dev/null && openssl pkey -in ", pem,
                   " -pubout -outform DER -out ", der);
  EXPECT_EQ(std::system(command.c_str()), 0) << command;

  // p= is the SubjectPublicKeyInfo for RSA, the raw key (the last 32
  // bytes of its SubjectPublicKeyInfo) for Ed25519.
  std::string key = testing::ReadFile(der);
  const bool ed25519 = algorithm == "ED25519";
  if (ed25519 && key.size() > 32) key = key.substr(key.size() - 32);
  return {pem, absl::StrCat("v=DKIM1; k=", ed25519 ? "ed25519" : "rsa",
                            "; p=", absl::Base64Escape(key))};
}

// "fail  spf              " as the report starts a finding's line.
std::string Line(const std::string& verdict, const std::string& check) {
  return absl::StrCat(
      "\n", verdict, "  ", check,
      std::string(check.size() < 16 ? 16 - check.size() : 0, ' '), " ");
}

class DoctorE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir("authcode-doctor-e2e"));
    rsa_ = new DkimKey(MakeKey(*dir_, "rsa", "RSA"));
    other_rsa_ = new DkimKey(MakeKey(*dir_, "other", "RSA"));
    ed25519_ = new DkimKey(MakeKey(*dir_, "ed", "ED25519"));
    ASSERT_GT(rsa_->record.size(), 255u) << "the RSA record needs two strings";

    const std::string spf = "v=spf1 include:_spf.relay.test -all";
    const std::string dmarc = "v=DMARC1; p=reject";
    std::vector<DnsServer::Txt> records = {
        {"_spf.relay.test", {"v=spf1 ip4:192.0.2.0/24 -all"}}};
    // Each domain: SPF, the RSA key, DMARC, unless its name says otherwise.
    for (const std::string domain :
         {"good", "nospf", "twospf", "mismatch", "nodmarc", "misaligned"}) {
      const std::string name = domain + ".test";
      if (domain != "nospf") records.push_back({name, {spf}});
      if (domain == "twospf") records.push_back({name, {"v=spf1 mx ~all"}});
      records.push_back(
          DnsServer::Split("rsa._domainkey." + name, rsa_->record));
      if (domain != "nodmarc") records.push_back({"_dmarc." + name, {dmarc}});
    }
    records.push_back({"ed.test", {spf}});
    records.push_back({"ed._domainkey.ed.test", {ed25519_->record}});
    records.push_back({"_dmarc.ed.test", {dmarc}});
    dns_ = new DnsServer({"test"}, records);
  }

  static void TearDownTestSuite() {
    delete dns_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete rsa_;
    delete other_rsa_;
    delete ed25519_;
  }

  // A config sending from no-reply@<from> through an SMTP relay that needs
  // include:_spf.relay.test, logs in as sender@<from> and signs as
  // <dkim_domain> with `key` under `selector`.
  static std::string Config(const std::string& from,
                            const std::string& dkim_domain,
                            const std::string& selector, const DkimKey& key,
                            const std::string& extra = "") {
    const std::string path = testing::TempPath("doctor-config");
    testing::WriteFile(
        path, absl::StrCat("[mail]\nfrom_address = \"no-reply@", from, "\"\n",
                           "[delivery]\nchain = [\"relay\"]\n",
                           "[providers.relay]\ntype = \"smtp\"\n",
                           "host = \"127.0.0.1\"\nsecurity = \"none\"\n",
                           "username = \"sender@", from, "\"\n",
                           "password_env = \"TEST_SMTP_PASSWORD\"\n",
                           "spf_include = \"_spf.relay.test\"\n",
                           "dkim_domain = \"", dkim_domain, "\"\n",
                           "dkim_selector = \"", selector, "\"\n",
                           "dkim_key_file = \"", key.pem_file, "\"\n", extra));
    return path;
  }

  // Runs `authcode --config <config> doctor <args>`.
  static int Doctor(const std::string& config,
                    const std::vector<std::string>& args, std::string* out,
                    std::string* err = nullptr) {
    std::vector<std::string> command = {AUTHCODE_BINARY, "--config", config,
                                        "doctor"};
    command.insert(command.end(), args.begin(), args.end());
    Process doctor(command,
                   {"PATH=/usr/bin:/bin",
                    "AUTHCODE_DATABASE_URL=postgresql://unused@127.0.0.1:1/x",
                    "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
                    "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
                    "TEST_SMTP_PASSWORD=unused"});
    const int status = doctor.Wait();
    *out = doctor.out();
    if (err != nullptr) *err = doctor.err();
    return status;
  }

  // The report for a domain set up as `from`, signed as `dkim_domain`.
  static int Check(const std::string& from, const std::string& dkim_domain,
                   std::string* out) {
    return Doctor(Config(from, dkim_domain, "rsa", *rsa_),
                  {"--resolver", dns_->address()}, out);
  }

  static std::string* dir_;
  static DkimKey* rsa_;
  static DkimKey* other_rsa_;
  static DkimKey* ed25519_;
  static DnsServer* dns_;
};

std::string* DoctorE2eTest::dir_ = nullptr;
DkimKey* DoctorE2eTest::rsa_ = nullptr;
DkimKey* DoctorE2eTest::other_rsa_ = nullptr;
DkimKey* DoctorE2eTest::ed25519_ = nullptr;
DnsServer* DoctorE2eTest::dns_ = nullptr;

TEST_F(DoctorE2eTest, PassesADomainWithEverythingRight) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Check("good.test", "good.test", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("From domain good.test, resolver 127.0.0.1:"));
  EXPECT_THAT(out, HasSubstr(Line("pass", "spf") + "one SPF record"));
  EXPECT_THAT(out, HasSubstr(Line("pass", "spf.all") + "-all"));
  EXPECT_THAT(out, HasSubstr(Line("pass", "spf.lookups")));
  EXPECT_THAT(out, HasSubstr(Line("pass", "spf.include") +
                             "relay (smtp): the record reaches "
                             "include:_spf.relay.test"));
  EXPECT_THAT(out, HasSubstr(Line("pass", "dkim") +
                             "rsa._domainkey.good.test publishes the "
                             "configured rsa key"));
  EXPECT_THAT(out, HasSubstr(Line("pass", "dmarc")));
  EXPECT_THAT(out, HasSubstr(Line("pass", "dmarc.policy") + "p=reject"));
  EXPECT_THAT(out, HasSubstr(Line("pass", "dmarc.alignment")));
  EXPECT_THAT(out, HasSubstr("summary: 8 pass, 0 warn, 0 fail"));
  EXPECT_THAT(out, Not(HasSubstr("fix:")));
}

TEST_F(DoctorE2eTest, PassesAnEd25519Key) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Doctor(Config("ed.test", "ed.test", "ed", *ed25519_),
                   {"--resolver", dns_->address()}, &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr(Line("pass", "dkim") +
                             "ed._domainkey.ed.test publishes the "
                             "configured ed25519 key"));
}

TEST_F(DoctorE2eTest, FailsWithoutSpf) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Check("nospf.test", "nospf.test", &out), 1) << out;
  EXPECT_THAT(out,
              HasSubstr(Line("fail", "spf") + "no SPF record at nospf.test"));
  EXPECT_THAT(out, HasSubstr("fix: publish TXT nospf.test \"v=spf1 "
                             "include:_spf.relay.test ~all\""));
  EXPECT_THAT(out, HasSubstr(Line("pass", "dkim")));
  EXPECT_THAT(out, HasSubstr(Line("pass", "dmarc")));
}

TEST_F(DoctorE2eTest, FailsOnTwoSpfRecords) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Check("twospf.test", "twospf.test", &out), 1) << out;
  EXPECT_THAT(out,
              HasSubstr(Line("fail", "spf") + "2 SPF records at twospf.test"));
  EXPECT_THAT(out, HasSubstr("merge them into one"));
}

TEST_F(DoctorE2eTest, FailsOnADkimRecordOfAnotherKey) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Doctor(Config("mismatch.test", "mismatch.test", "rsa", *other_rsa_),
                   {"--resolver", dns_->address()}, &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr(Line("fail", "dkim") +
                             "rsa._domainkey.mismatch.test: p= is not the "
                             "public half of the configured private key"));
  // The fix is the record of the configured key, in strings of 255.
  const std::string expected = other_rsa_->record;
  EXPECT_THAT(
      out, HasSubstr(absl::StrCat(
               "fix: publish TXT rsa._domainkey.mismatch.test \"",
               expected.substr(0, 255), "\" \"", expected.substr(255), "\"")));
  EXPECT_THAT(out, HasSubstr(Line("pass", "spf")));
}

TEST_F(DoctorE2eTest, FailsWithoutDmarc) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Check("nodmarc.test", "nodmarc.test", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr(Line("fail", "dmarc") +
                             "no DMARC record at _dmarc.nodmarc.test"));
  EXPECT_THAT(out, HasSubstr("fix: publish TXT _dmarc.nodmarc.test "
                             "\"v=DMARC1; p=quarantine\""));
}

TEST_F(DoctorE2eTest, FailsWhenFromDoesNotAlignWithTheDkimDomain) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Check("misaligned.test", "good.test", &out), 1) << out;
  EXPECT_THAT(out,
              HasSubstr(Line("pass", "dkim") + "rsa._domainkey.good.test"));
  EXPECT_THAT(out, HasSubstr(Line("fail", "dmarc.alignment") +
                             "From domain misaligned.test does not align "
                             "with what relay signs as good.test"));
  EXPECT_THAT(out, HasSubstr(Line("pass", "dmarc.policy")));
}

TEST_F(DoctorE2eTest, PrintsJson) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  EXPECT_EQ(Doctor(Config("nodmarc.test", "nodmarc.test", "rsa", *rsa_),
                   {"--resolver", dns_->address(), "--json"}, &out),
            1)
      << out;
  const nlohmann::json report = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << out;
  EXPECT_EQ(report["from_domain"], "nodmarc.test");
  EXPECT_EQ(report["summary"]["fail"], 1);
  bool found = false;
  for (const nlohmann::json& check : report["checks"]) {
    if (check["check"] != "dmarc") continue;
    found = true;
    EXPECT_EQ(check["verdict"], "fail");
    EXPECT_THAT(check["fix"].get<std::string>(), HasSubstr("v=DMARC1"));
  }
  EXPECT_TRUE(found) << out;
}

TEST_F(DoctorE2eTest, TakesTheResolverFromTheConfig) {
  ASSERT_GT(dns_->port(), 0);
  std::string out;
  const std::string config =
      Config("good.test", "good.test", "rsa", *rsa_,
             absl::StrCat("[doctor]\nresolver = \"", dns_->address(),
                          "\"\ntimeout = \"3s\"\n"));
  EXPECT_EQ(Doctor(config, {}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("resolver " + dns_->address()));
}

TEST_F(DoctorE2eTest, ExitsTwoOnUsageAndConfigErrors) {
  std::string out, err;
  const std::string config = Config("good.test", "good.test", "rsa", *rsa_);
  EXPECT_EQ(Doctor(config, {"--resolver", "dns.example"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--resolver: cannot use"));
  EXPECT_EQ(Doctor(config, {"--no-such-flag"}, &out, &err), 2);

  const std::string local = Config("localhost", "good.test", "rsa", *rsa_);
  EXPECT_EQ(Doctor(local, {"--resolver", "127.0.0.1:9"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("mail.from_address"));
}

}  // namespace
}  // namespace authcode
