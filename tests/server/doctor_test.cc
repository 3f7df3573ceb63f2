// The sender doctor's checks on hand-written record sets: every pass, warn
// and fail they can give, and the report around them.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/config.h"
#include "server/doctor/checks.h"
#include "server/doctor/doctor.h"
#include "server/doctor/records.h"
#include "server/doctor/spf.h"
#include "tests/support/files.h"

namespace authcode::doctor {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "public key bytes of the configured key";

providers::DkimPublicKey Key(const std::string& domain = "example.com",
                             const std::string& type = "rsa",
                             const std::string& bytes = kKey) {
  return {domain, "sel", type, bytes};
}

std::string KeyRecord(const std::string& bytes = kKey,
                      const std::string& type = "rsa") {
  return absl::StrCat("v=DKIM1; k=", type, "; p=", absl::Base64Escape(bytes));
}

// From example.com through one SMTP relay that needs
// include:_spf.relay.test, signs as example.com and logs in as
// example.com.
Sender Example() {
  Sender sender;
  sender.from_domain = "example.com";
  Sender::Provider relay;
  relay.instance = "relay";
  relay.type = "smtp";
  relay.spf_includes = std::vector<std::string>{"_spf.relay.test"};
  relay.dkim = Key();
  relay.identity_domains = {"example.com"};
  sender.providers.push_back(relay);
  return sender;
}

// Records that pass every check for Example().
RecordSet Good() {
  return {
      {"example.com",
       TxtAnswer::Records({"google-site-verification=abc",
                           "v=spf1 include:_spf.relay.test -all"})},
      {"_spf.relay.test", TxtAnswer::Records({"v=spf1 ip4:192.0.2.0/24 -all"})},
      {"sel._domainkey.example.com", TxtAnswer::Records({KeyRecord()})},
      {"_dmarc.example.com",
       TxtAnswer::Records({"v=DMARC1; p=reject; rua=mailto:d@example.com"})},
  };
}

// "check=verdict" for each finding, space-separated.
std::string Verdicts(const std::vector<Finding>& findings) {
  std::vector<std::string> parts;
  for (const Finding& f : findings) {
    parts.push_back(absl::StrCat(f.check, "=", VerdictName(f.verdict)));
  }
  return absl::StrJoin(parts, " ");
}

// The first finding of `check`; fails the test when there is none.
Finding Get(const std::vector<Finding>& findings, const std::string& check) {
  for (const Finding& f : findings) {
    if (f.check == check) return f;
  }
  ADD_FAILURE() << "no finding for " << check << " in " << Verdicts(findings);
  return {check, Verdict::kPass, "", ""};
}

// --- Records -------------------------------------------------------------

TEST(DoctorRecordsTest, ParsesTagLists) {
  const std::optional<TagList> tags = ParseTagList(" v = DKIM1 ;k=rsa;p= ;");
  ASSERT_TRUE(tags.has_value());
  EXPECT_EQ(TagValue(*tags, "v"), "DKIM1");
  EXPECT_EQ(TagValue(*tags, "p"), "");
  EXPECT_EQ(TagValue(*tags, "h"), std::nullopt);
  EXPECT_FALSE(ParseTagList("v=DKIM1; garbage").has_value());
  EXPECT_FALSE(ParseTagList("p=a; p=b").has_value()) << "a tag twice";
  EXPECT_FALSE(ParseTagList("=x").has_value());
}

TEST(DoctorRecordsTest, QuotesLongRecordsInStringsOf255) {
  EXPECT_EQ(QuotedTxt("v=spf1 -all"), "\"v=spf1 -all\"");
  EXPECT_EQ(QuotedTxt(""), "\"\"");
  const std::string quoted = QuotedTxt(std::string(600, 'k'));
  EXPECT_EQ(quoted, absl::StrCat("\"", std::string(255, 'k'), "\" \"",
                                 std::string(255, 'k'), "\" \"",
                                 std::string(90, 'k'), "\""));
}

TEST(DoctorRecordsTest, DescribesEachKindOfAnswer) {
  EXPECT_EQ(Describe(TxtAnswer::NoData()), "no TXT records");
  EXPECT_EQ(Describe(TxtAnswer::NxDomain()), "does not exist (NXDOMAIN)");
  EXPECT_EQ(Describe(TxtAnswer::Timeout()), "the lookup timed out");
  EXPECT_EQ(Describe(TxtAnswer::Error("SERVFAIL")),
            "the lookup failed: SERVFAIL");
  EXPECT_EQ(Describe(TxtAnswer::Records({"a", "b"})), "2 TXT records");
  const RecordSet none;
  EXPECT_TRUE(LookupIn(none)("absent.test").failed())
      << "a name never looked up is not taken for one without records";
}

// --- SPF -----------------------------------------------------------------

TEST(DoctorSpfTest, ParsesTermsAndEditsRecords) {
  const SpfRecord spf = ParseSpf(
      "v=spf1 a mx:mail.test/24 INCLUDE:X.test exists:%{i}.e.test ptr "
      "ip4:192.0.2.1 redirect=r.test ~all");
  EXPECT_EQ(spf.includes, std::vector<std::string>{"x.test"});
  EXPECT_EQ(spf.redirect, "r.test");
  EXPECT_EQ(spf.all, '~');
  EXPECT_EQ(spf.lookups, 6);
  EXPECT_EQ(ParseSpf("v=spf1 all").all, '+');

  EXPECT_EQ(WithTerm("v=spf1 mx -all", "include:a.test"),
            "v=spf1 mx include:a.test -all");
  EXPECT_EQ(WithTerm("v=spf1 mx", "include:a.test"),
            "v=spf1 mx include:a.test");
  EXPECT_EQ(WithAll("v=spf1 mx ?all", "~all"), "v=spf1 mx ~all");
  EXPECT_EQ(WithAll("v=spf1 mx exp=e.test", "~all"),
            "v=spf1 mx ~all exp=e.test");
  EXPECT_EQ(SpfRecords(TxtAnswer::Records(
                {"v=spf10", "V=SPF1 -all", "x v=spf1", "v=spf1"})),
            (std::vector<std::string>{"V=SPF1 -all", "v=spf1"}));
}

TEST(DoctorSpfTest, PassesARecordThatCoversTheProvider) {
  const std::vector<Finding> findings = CheckSpf(Example(), Good());
  EXPECT_EQ(Verdicts(findings),
            "spf=pass spf.all=pass spf.lookups=pass spf.include=pass");
  EXPECT_THAT(Get(findings, "spf").finding,
              HasSubstr("\"v=spf1 include:_spf.relay.test -all\""));
  EXPECT_THAT(Get(findings, "spf.lookups").finding, HasSubstr("1 of the 10"));
  EXPECT_THAT(Get(findings, "spf.include").finding,
              HasSubstr("relay (smtp): the record reaches "
                        "include:_spf.relay.test"));
  for (const Finding& f : findings) EXPECT_EQ(f.fix, "") << f.check;
}

TEST(DoctorSpfTest, FailsWithoutARecordAndSuggestsOne) {
  for (const TxtAnswer& answer : {TxtAnswer::NoData(), TxtAnswer::NxDomain(),
                                  TxtAnswer::Records({"not spf"})}) {
    RecordSet records = Good();
    records["example.com"] = answer;
    const std::vector<Finding> findings = CheckSpf(Example(), records);
    EXPECT_EQ(Verdicts(findings), "spf=fail");
    EXPECT_THAT(findings[0].finding, HasSubstr("no SPF record at example.com"));
    EXPECT_EQ(findings[0].fix,
              "publish TXT example.com \"v=spf1 include:_spf.relay.test "
              "~all\"");
  }
}

TEST(DoctorSpfTest, FailsOnTwoRecordsAndMergesThem) {
  RecordSet records = Good();
  records["example.com"] = TxtAnswer::Records(
      {"v=spf1 include:_spf.relay.test -all", "v=spf1 mx ip4:192.0.2.9 ~all"});
  const std::vector<Finding> findings = CheckSpf(Example(), records);
  EXPECT_EQ(Verdicts(findings), "spf=fail");
  EXPECT_THAT(findings[0].finding,
              AllOf(HasSubstr("2 SPF records"), HasSubstr("permerror")));
  EXPECT_THAT(findings[0].fix,
              HasSubstr("\"v=spf1 include:_spf.relay.test mx ip4:192.0.2.9 "
                        "-all\""));
}

TEST(DoctorSpfTest, FailsWhenTheLookupFails) {
  RecordSet records = Good();
  records["example.com"] = TxtAnswer::Timeout();
  const std::vector<Finding> findings = CheckSpf(Example(), records);
  EXPECT_EQ(Verdicts(findings), "spf=fail");
  EXPECT_THAT(findings[0].finding, HasSubstr("timed out"));
  EXPECT_THAT(findings[0].fix, HasSubstr("--resolver"));
}

TEST(DoctorSpfTest, JudgesTheAllTerm) {
  const struct {
    const char* record;
    Verdict verdict;
    const char* says;
  } cases[] = {
      {"v=spf1 include:_spf.relay.test -all", Verdict::kPass, "-all"},
      {"v=spf1 include:_spf.relay.test ~all", Verdict::kPass, "~all"},
      {"v=spf1 include:_spf.relay.test ?all", Verdict::kWarn, "neutral"},
      {"v=spf1 include:_spf.relay.test +all", Verdict::kWarn, "every host"},
      {"v=spf1 include:_spf.relay.test all", Verdict::kWarn, "every host"},
      {"v=spf1 include:_spf.relay.test", Verdict::kWarn, "no all term"},
      {"v=spf1 include:_spf.relay.test redirect=_spf.relay.test",
       Verdict::kPass, "-all"},
  };
  for (const auto& c : cases) {
    RecordSet records = Good();
    records["example.com"] = TxtAnswer::Records({c.record});
    const Finding all = Get(CheckSpf(Example(), records), "spf.all");
    EXPECT_EQ(all.verdict, c.verdict) << c.record;
    EXPECT_THAT(all.finding, HasSubstr(c.says)) << c.record;
    if (c.verdict == Verdict::kWarn) {
      EXPECT_THAT(all.fix, HasSubstr("\"v=spf1 include:_spf.relay.test ~all"))
          << c.record;
    }
  }
}

TEST(DoctorSpfTest, FollowsIncludesToFindTheProvider) {
  RecordSet records = Good();
  records["example.com"] =
      TxtAnswer::Records({"v=spf1 include:_spf.example.com -all"});
  records["_spf.example.com"] =
      TxtAnswer::Records({"v=spf1 include:_spf.relay.test ~all"});
  const std::vector<Finding> findings = CheckSpf(Example(), records);
  EXPECT_EQ(Verdicts(findings),
            "spf=pass spf.all=pass spf.lookups=pass spf.include=pass");
  EXPECT_THAT(Get(findings, "spf.lookups").finding, HasSubstr("2 of the 10"));
}

TEST(DoctorSpfTest, NamesTheMissingIncludeAndTheRecordWithIt) {
  RecordSet records = Good();
  records["example.com"] = TxtAnswer::Records({"v=spf1 mx -all"});
  const Finding include = Get(CheckSpf(Example(), records), "spf.include");
  EXPECT_EQ(include.verdict, Verdict::kFail);
  EXPECT_THAT(include.finding,
              HasSubstr("relay (smtp) sends from hosts listed at "
                        "include:_spf.relay.test, which the SPF record of "
                        "example.com lacks"));
  EXPECT_EQ(include.fix,
            "publish TXT example.com \"v=spf1 mx include:_spf.relay.test "
            "-all\"");
}

TEST(DoctorSpfTest, GivesEveryFailingProviderTheOneRecordToPublish) {
  Sender sender = Example();
  Sender::Provider api;
  api.instance = "api";
  api.type = "mailapi";
  api.spf_includes =
      std::vector<std::string>{"spf.api.test", "_spf.relay.test"};
  sender.providers.push_back(api);
  RecordSet records = Good();
  records["example.com"] = TxtAnswer::Records({"v=spf1 mx"});

  const std::vector<Finding> findings = CheckSpf(sender, records);
  EXPECT_EQ(Verdicts(findings),
            "spf=pass spf.all=warn spf.lookups=pass spf.include=fail "
            "spf.include=fail");
  const std::string fix =
      "publish TXT example.com \"v=spf1 mx include:_spf.relay.test "
      "include:spf.api.test\"";
  EXPECT_EQ(findings[3].fix, fix);
  EXPECT_EQ(findings[4].fix, fix);
  EXPECT_THAT(findings[4].finding,
              HasSubstr("api (mailapi) sends from hosts listed at "
                        "include:spf.api.test include:_spf.relay.test,"));
}

TEST(DoctorSpfTest, WarnsWhenAProviderCannotTellAndSkipsLocalOnes) {
  Sender sender = Example();
  sender.providers[0].spf_includes = std::nullopt;
  Sender::Provider console;
  console.instance = "console";
  console.type = "console";
  console.spf_includes = std::vector<std::string>{};
  sender.providers.push_back(console);

  const std::vector<Finding> findings = CheckSpf(sender, Good());
  EXPECT_EQ(Verdicts(findings),
            "spf=pass spf.all=pass spf.lookups=pass spf.include=warn")
      << "console sends nothing over the internet: no spf.include for it";
  EXPECT_THAT(Get(findings, "spf.include").finding,
              HasSubstr("relay (smtp): cannot tell"));
  EXPECT_THAT(Get(findings, "spf.include").fix,
              HasSubstr("set spf_include in [providers.relay]"));
}

TEST(DoctorSpfTest, FailsOnIncludesWithoutRecords) {
  RecordSet records = Good();
  records["example.com"] = TxtAnswer::Records(
      {"v=spf1 include:_spf.relay.test include:gone.test -all"});
  records["gone.test"] = TxtAnswer::NxDomain();
  const Finding lookups = Get(CheckSpf(Example(), records), "spf.lookups");
  EXPECT_EQ(lookups.verdict, Verdict::kFail);
  EXPECT_THAT(lookups.finding,
              AllOf(HasSubstr("include:gone.test has no SPF record"),
                    HasSubstr("permerror")));

  records["gone.test"] = TxtAnswer::Error("the server failed (SERVFAIL)");
  EXPECT_THAT(Get(CheckSpf(Example(), records), "spf.lookups").finding,
              HasSubstr("include:gone.test: the lookup failed: the server "
                        "failed (SERVFAIL)"));
}

TEST(DoctorSpfTest, FailsPastTenLookups) {
  RecordSet records = Good();
  records["example.com"] = TxtAnswer::Records(
      {"v=spf1 include:_spf.relay.test a mx a:a.test mx:b.test exists:c.test "
       "ptr a:d.test a:e.test a:f.test a:g.test -all"});
  const Finding lookups = Get(CheckSpf(Example(), records), "spf.lookups");
  EXPECT_EQ(lookups.verdict, Verdict::kFail);
  EXPECT_THAT(lookups.finding, HasSubstr("takes 11 DNS lookups"));
}

TEST(DoctorSpfTest, CollectFollowsTheIncludeTree) {
  RecordSet world = Good();
  world["example.com"] =
      TxtAnswer::Records({"v=spf1 include:_spf.example.com -all"});
  world["_spf.example.com"] =
      TxtAnswer::Records({"v=spf1 include:_spf.relay.test ~all"});
  std::vector<std::string> asked;
  const RecordSet collected = Collect(Example(), [&](const std::string& name) {
    asked.push_back(name);
    return LookupIn(world)(name);
  });
  EXPECT_EQ(asked, (std::vector<std::string>{
                       "example.com", "_spf.example.com", "_spf.relay.test",
                       "sel._domainkey.example.com", "_dmarc.example.com"}));
  EXPECT_EQ(Verdicts(CheckAll(Example(), collected)),
            Verdicts(CheckAll(Example(), world)));
}

// --- DKIM ----------------------------------------------------------------

TEST(DoctorDkimTest, PassesTheConfiguredKey) {
  const std::vector<Finding> findings = CheckDkim(Example(), Good());
  EXPECT_EQ(Verdicts(findings), "dkim=pass");
  EXPECT_THAT(findings[0].finding,
              HasSubstr("sel._domainkey.example.com publishes the configured "
                        "rsa key of relay"));

  Sender sender = Example();
  sender.providers[0].dkim =
      Key("example.com", "ed25519", std::string(32, 'e'));
  RecordSet records = Good();
  records["sel._domainkey.example.com"] =
      TxtAnswer::Records({KeyRecord(std::string(32, 'e'), "ed25519")});
  EXPECT_EQ(Verdicts(CheckDkim(sender, records)), "dkim=pass");
}

TEST(DoctorDkimTest, FailsWithoutARecordAndGivesIt) {
  const std::string long_key(300, 'r');  // Over 255 in base64.
  Sender sender = Example();
  sender.providers[0].dkim = Key("example.com", "rsa", long_key);
  RecordSet records = Good();
  records["sel._domainkey.example.com"] = TxtAnswer::NxDomain();
  const std::vector<Finding> findings = CheckDkim(sender, records);
  EXPECT_EQ(Verdicts(findings), "dkim=fail");
  EXPECT_THAT(findings[0].finding,
              HasSubstr("no DKIM key record at sel._domainkey.example.com"));
  EXPECT_EQ(findings[0].fix,
            absl::StrCat("publish TXT sel._domainkey.example.com ",
                         QuotedTxt(KeyRecord(long_key))));
  EXPECT_THAT(findings[0].fix, HasSubstr("\" \"")) << "split in strings";
}

TEST(DoctorDkimTest, FailsOnEachWayARecordCanMiss) {
  const struct {
    std::string record;
    const char* says;
  } cases[] = {
      {KeyRecord("another key"), "not the public half"},
      {"v=DKIM1; k=rsa; p=", "revoked"},
      {"v=DKIM1; k=rsa", "no p= tag"},
      {KeyRecord(kKey, "ed25519"), "k=ed25519 key, the config a k=rsa"},
      {"v=DKIM2; p=AAAA", "v=DKIM2 is not v=DKIM1"},
      {"v=DKIM1; h=sha1; p=AAAA", "h=sha1 does not allow sha256"},
      {"v=DKIM1; p=!!!", "not base64"},
      {"just some text", "not a list of tag=value pairs"},
  };
  for (const auto& c : cases) {
    RecordSet records = Good();
    records["sel._domainkey.example.com"] = TxtAnswer::Records({c.record});
    const std::vector<Finding> findings = CheckDkim(Example(), records);
    EXPECT_EQ(Verdicts(findings), "dkim=fail") << c.record;
    EXPECT_THAT(findings[0].finding, HasSubstr(c.says)) << c.record;
    EXPECT_THAT(findings[0].fix, HasSubstr(QuotedTxt(KeyRecord()))) << c.record;
  }
}

TEST(DoctorDkimTest, PassesAKeyWithoutVersionAndWithWhitespaceInP) {
  const std::string base64 = absl::Base64Escape(kKey);
  RecordSet records = Good();
  records["sel._domainkey.example.com"] = TxtAnswer::Records({absl::StrCat(
      "k=rsa; h=sha256; p=", base64.substr(0, 10), " ", base64.substr(10))});
  EXPECT_EQ(Verdicts(CheckDkim(Example(), records)), "dkim=pass");
}

TEST(DoctorDkimTest, WarnsOnTestingModeAndOnRivalRecords) {
  RecordSet records = Good();
  records["sel._domainkey.example.com"] =
      TxtAnswer::Records({KeyRecord() + "; t=s:y"});
  std::vector<Finding> findings = CheckDkim(Example(), records);
  EXPECT_EQ(Verdicts(findings), "dkim=warn");
  EXPECT_THAT(findings[0].finding, HasSubstr("t=y"));

  records["sel._domainkey.example.com"] =
      TxtAnswer::Records({KeyRecord(), KeyRecord("old key")});
  findings = CheckDkim(Example(), records);
  EXPECT_EQ(Verdicts(findings), "dkim=warn");
  EXPECT_THAT(findings[0].finding, HasSubstr("2 records and only 1 match"));

  records["sel._domainkey.example.com"] =
      TxtAnswer::Records({KeyRecord("older"), KeyRecord("old key")});
  EXPECT_EQ(Verdicts(CheckDkim(Example(), records)), "dkim=fail");
}

TEST(DoctorDkimTest, WarnsWhenNoKeyIsConfigured) {
  Sender sender = Example();
  sender.providers[0].dkim = std::nullopt;
  const std::vector<Finding> findings = CheckDkim(sender, Good());
  EXPECT_EQ(Verdicts(findings), "dkim=warn");
  EXPECT_THAT(findings[0].fix, AllOf(HasSubstr("provider signs for you"),
                                     HasSubstr("dkim_selector")));
}

TEST(DoctorDkimTest, FailsWhenTheLookupFails) {
  RecordSet records = Good();
  records["sel._domainkey.example.com"] = TxtAnswer::Timeout();
  const std::vector<Finding> findings = CheckDkim(Example(), records);
  EXPECT_EQ(Verdicts(findings), "dkim=fail");
  EXPECT_THAT(findings[0].finding, HasSubstr("timed out"));
}

TEST(DoctorDkimTest, ChecksASharedKeyOnceAndEachOtherKey) {
  Sender sender = Example();
  sender.providers.push_back(sender.providers[0]);
  sender.providers[1].instance = "backup";
  Sender::Provider other = sender.providers[0];
  other.instance = "other";
  other.dkim = Key("other.test");
  sender.providers.push_back(other);

  const std::vector<Finding> findings = CheckDkim(sender, Good());
  EXPECT_EQ(Verdicts(findings), "dkim=pass dkim=fail");
  EXPECT_THAT(findings[0].finding, HasSubstr("key of relay, backup"));
  EXPECT_THAT(findings[1].finding, HasSubstr("sel._domainkey.other.test"));
}

// --- DMARC ---------------------------------------------------------------

TEST(DoctorDmarcTest, PassesAnEnforcedAlignedRecord) {
  const std::vector<Finding> findings = CheckDmarc(Example(), Good());
  EXPECT_EQ(Verdicts(findings),
            "dmarc=pass dmarc.policy=pass dmarc.alignment=pass");
  EXPECT_THAT(Get(findings, "dmarc.policy").finding, HasSubstr("p=reject"));
  EXPECT_THAT(Get(findings, "dmarc.alignment").finding,
              HasSubstr("aligns with what relay signs as example.com"));

  RecordSet records = Good();
  records["_dmarc.example.com"] = TxtAnswer::Records({"v=DMARC1;p=Quarantine"});
  EXPECT_EQ(Verdicts(CheckDmarc(Example(), records)),
            "dmarc=pass dmarc.policy=pass dmarc.alignment=pass");
}

TEST(DoctorDmarcTest, FailsWithoutARecord) {
  for (const TxtAnswer& answer : {TxtAnswer::NxDomain(), TxtAnswer::NoData(),
                                  TxtAnswer::Records({"v=spf1 -all"})}) {
    RecordSet records = Good();
    records["_dmarc.example.com"] = answer;
    const std::vector<Finding> findings = CheckDmarc(Example(), records);
    EXPECT_EQ(Verdicts(findings), "dmarc=fail dmarc.alignment=pass");
    EXPECT_THAT(findings[0].finding,
                HasSubstr("no DMARC record at _dmarc.example.com:"));
    EXPECT_THAT(findings[0].fix,
                HasSubstr("publish TXT _dmarc.example.com \"v=DMARC1; "
                          "p=quarantine\""));
  }
}

TEST(DoctorDmarcTest, FallsBackToTheParentDomainsRecord) {
  Sender sender = Example();
  sender.from_domain = "auth.mail.example.com";
  RecordSet records = Good();
  records["_dmarc.auth.mail.example.com"] = TxtAnswer::NxDomain();
  records["_dmarc.mail.example.com"] = TxtAnswer::NoData();
  records["_dmarc.example.com"] =
      TxtAnswer::Records({"v=DMARC1; p=reject; sp=none"});
  std::vector<Finding> findings = CheckDmarc(sender, records);
  EXPECT_EQ(Verdicts(findings),
            "dmarc=pass dmarc.policy=warn dmarc.alignment=pass");
  EXPECT_THAT(Get(findings, "dmarc").finding,
              HasSubstr("organizational domain's, for auth.mail.example.com"));
  EXPECT_THAT(Get(findings, "dmarc.policy").finding, HasSubstr("sp=none"))
      << "a subdomain gets sp= where the record has one";

  records["_dmarc.example.com"] = TxtAnswer::NxDomain();
  findings = CheckDmarc(sender, records);
  EXPECT_EQ(Get(findings, "dmarc").verdict, Verdict::kFail);
  EXPECT_THAT(Get(findings, "dmarc").finding,
              HasSubstr("no DMARC record at _dmarc.auth.mail.example.com nor "
                        "at its parent domains"));
}

TEST(DoctorDmarcTest, JudgesThePolicy) {
  RecordSet records = Good();
  records["_dmarc.example.com"] = TxtAnswer::Records({"v=DMARC1; p=none"});
  Finding policy = Get(CheckDmarc(Example(), records), "dmarc.policy");
  EXPECT_EQ(policy.verdict, Verdict::kWarn);
  EXPECT_THAT(policy.fix, HasSubstr("\"v=DMARC1; p=quarantine\""));

  for (const char* record :
       {"v=DMARC1; rua=mailto:d@example.com", "v=DMARC1; p=strict"}) {
    records["_dmarc.example.com"] = TxtAnswer::Records({record});
    policy = Get(CheckDmarc(Example(), records), "dmarc.policy");
    EXPECT_EQ(policy.verdict, Verdict::kFail) << record;
    EXPECT_THAT(policy.finding, HasSubstr("no valid p=")) << record;
  }
}

TEST(DoctorDmarcTest, FailsOnTwoRecordsBadSyntaxAndLookupErrors) {
  RecordSet records = Good();
  records["_dmarc.example.com"] =
      TxtAnswer::Records({"v=DMARC1; p=reject", "v=DMARC1; p=none"});
  std::vector<Finding> findings = CheckDmarc(Example(), records);
  EXPECT_EQ(Verdicts(findings), "dmarc=fail dmarc.alignment=pass");
  EXPECT_THAT(findings[0].finding, HasSubstr("2 DMARC records"));

  records["_dmarc.example.com"] = TxtAnswer::Records({"v=DMARC1; p reject"});
  findings = CheckDmarc(Example(), records);
  EXPECT_EQ(Verdicts(findings), "dmarc=fail dmarc.alignment=pass");
  EXPECT_THAT(findings[0].finding, HasSubstr("not a list of tag=value"));

  records["_dmarc.example.com"] = TxtAnswer::Error("the server failed");
  findings = CheckDmarc(Example(), records);
  EXPECT_EQ(Verdicts(findings), "dmarc=fail dmarc.alignment=pass");
  EXPECT_THAT(findings[0].fix, HasSubstr("--resolver"));
}

TEST(DoctorDmarcTest, FailsWhenFromDoesNotAlign) {
  Sender sender = Example();
  sender.providers[0].dkim = Key("other.test");
  sender.providers[0].identity_domains = {"other.test", "login.example.com"};
  const Finding alignment = Get(CheckDmarc(sender, Good()), "dmarc.alignment");
  EXPECT_EQ(alignment.verdict, Verdict::kFail);
  EXPECT_THAT(alignment.finding, AllOf(HasSubstr("relay signs as other.test"),
                                       Not(HasSubstr("login.example.com"))));
  EXPECT_THAT(alignment.fix, HasSubstr("example.com"));
}

TEST(DoctorDmarcTest, StrictAlignmentNeedsTheSameDomain) {
  Sender sender = Example();
  sender.providers[0].dkim = Key("mail.example.com");
  sender.providers[0].identity_domains = {"mail.example.com"};
  RecordSet records = Good();
  EXPECT_EQ(Get(CheckDmarc(sender, records), "dmarc.alignment").verdict,
            Verdict::kPass)
      << "relaxed: a subdomain aligns";

  records["_dmarc.example.com"] =
      TxtAnswer::Records({"v=DMARC1; p=reject; adkim=s"});
  EXPECT_EQ(Get(CheckDmarc(sender, records), "dmarc.alignment").verdict,
            Verdict::kFail);

  sender.providers[0].dkim = std::nullopt;  // A login domain: aspf counts.
  EXPECT_EQ(Get(CheckDmarc(sender, records), "dmarc.alignment").verdict,
            Verdict::kPass);
  records["_dmarc.example.com"] =
      TxtAnswer::Records({"v=DMARC1; p=reject; aspf=s"});
  EXPECT_EQ(Get(CheckDmarc(sender, records), "dmarc.alignment").verdict,
            Verdict::kFail);
}

TEST(DoctorDmarcTest, WarnsWhenNoProviderNamesItsDomain) {
  Sender sender = Example();
  sender.providers[0].dkim = std::nullopt;
  sender.providers[0].identity_domains.clear();
  const Finding alignment = Get(CheckDmarc(sender, Good()), "dmarc.alignment");
  EXPECT_EQ(alignment.verdict, Verdict::kWarn);
  EXPECT_THAT(alignment.fix, HasSubstr("signs with DKIM as example.com"));
}

// --- The report ----------------------------------------------------------

TEST(DoctorReportTest, PassesEverythingOnGoodRecords) {
  const std::vector<Finding> findings = CheckAll(Example(), Good());
  EXPECT_EQ(Verdicts(findings),
            "spf=pass spf.all=pass spf.lookups=pass spf.include=pass "
            "dkim=pass dmarc=pass dmarc.policy=pass dmarc.alignment=pass");
  EXPECT_EQ(ExitCode(findings), kExitOk);
}

TEST(DoctorReportTest, RendersTextWithFixesAndCounts) {
  const std::vector<Finding> findings = {
      {"spf", Verdict::kPass, "one SPF record", ""},
      {"dmarc.policy", Verdict::kWarn, "p=none", "publish it"},
      {"dkim", Verdict::kFail, "no record", "publish TXT x \"y\""},
  };
  EXPECT_EQ(RenderText("example.com", "127.0.0.1:53", findings),
            "authcode doctor: From domain example.com, resolver "
            "127.0.0.1:53\n"
            "pass  spf              one SPF record\n"
            "warn  dmarc.policy     p=none\n"
            "                       fix: publish it\n"
            "fail  dkim             no record\n"
            "                       fix: publish TXT x \"y\"\n"
            "summary: 1 pass, 1 warn, 1 fail\n");
  EXPECT_EQ(ExitCode(findings), kExitFailed);
  EXPECT_EQ(ExitCode({findings[0], findings[1]}), kExitOk)
      << "warnings alone exit 0";

  const nlohmann::json json =
      nlohmann::json::parse(RenderJson("example.com", "system", findings));
  EXPECT_EQ(json["from_domain"], "example.com");
  EXPECT_EQ(json["resolver"], "system");
  ASSERT_EQ(json["checks"].size(), 3u);
  EXPECT_EQ(json["checks"][2]["check"], "dkim");
  EXPECT_EQ(json["checks"][2]["verdict"], "fail");
  EXPECT_EQ(json["checks"][2]["fix"], "publish TXT x \"y\"");
  EXPECT_EQ(json["summary"]["warn"], 1);
}

// --- From the config -----------------------------------------------------

class DoctorConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("authcode-doctor"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<Config> Load(const std::string& toml) {
    const std::string path = dir_ + "/authcode.toml";
    testing::WriteFile(path, toml);
    return LoadConfig(path,
                      {{"AUTHCODE_DATABASE_URL", "postgresql://unused"},
                       {"AUTHCODE_HASHING_KEYS",
                        "h1:" + absl::Base64Escape(std::string(32, 'h'))},
                       {"AUTHCODE_OUTBOX_KEYS",
                        "o1:" + absl::Base64Escape(std::string(32, 'o'))}});
  }

  // A new Ed25519 key as PEM in the test folder; its raw public key in
  // `public_key`.
  std::string Ed25519KeyFile(std::string* public_key) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    EXPECT_NE(key, nullptr);
    public_key->assign(32, '\0');
    size_t size = public_key->size();
    EVP_PKEY_get_raw_public_key(
        key, reinterpret_cast<unsigned char*>(public_key->data()), &size);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio, &data);
    const std::string path = dir_ + "/dkim.pem";
    testing::WriteFile(path, std::string(data, static_cast<size_t>(length)));
    BIO_free(bio);
    EVP_PKEY_free(key);
    return path;
  }

  std::string dir_;
};

TEST_F(DoctorConfigTest, ReadsTheChainsProvidersAndTheDoctorTable) {
  std::string public_key;
  const std::string key_file = Ed25519KeyFile(&public_key);
  absl::StatusOr<Config> config = Load(absl::StrCat(
      "[doctor]\nresolver = \"127.0.0.1:5353\"\ntimeout = \"2s\"\n"
      "[mail]\nfrom_address = \"no-reply@Auth.Example.COM\"\n"
      "[delivery]\nchain = [\"relay\", \"console\"]\n"
      "[providers.relay]\ntype = \"smtp\"\nhost = \"127.0.0.1\"\n"
      "security = \"none\"\nusername = \"sender@mail.example.com\"\n"
      "password = \"unused\"\nspf_include = \"_spf.relay.test, "
      "_spf2.relay.test\"\n"
      "dkim_domain = \"example.com\"\ndkim_selector = \"s1\"\n"
      "dkim_key_file = \"",
      key_file, "\"\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->doctor.resolver, "127.0.0.1:5353");
  EXPECT_EQ(config->doctor.timeout, absl::Seconds(2));

  absl::StatusOr<Sender> sender = SenderFromConfig(*config);
  ASSERT_TRUE(sender.ok()) << sender.status();
  EXPECT_EQ(sender->from_domain, "auth.example.com");
  ASSERT_EQ(sender->providers.size(), 2u);
  const Sender::Provider& console = sender->providers[0];
  EXPECT_EQ(console.instance, "console");
  EXPECT_EQ(console.spf_includes, std::vector<std::string>{});
  const Sender::Provider& relay = sender->providers[1];
  EXPECT_EQ(relay.type, "smtp");
  EXPECT_EQ(relay.spf_includes,
            (std::vector<std::string>{"_spf.relay.test", "_spf2.relay.test"}));
  ASSERT_TRUE(relay.dkim.has_value());
  EXPECT_EQ(relay.dkim->selector, "s1");
  EXPECT_EQ(relay.dkim->type, "ed25519");
  EXPECT_EQ(relay.dkim->key, public_key);
  EXPECT_EQ(relay.identity_domains,
            (std::vector<std::string>{"example.com", "mail.example.com"}));
}

TEST_F(DoctorConfigTest, RefusesWhatItCannotCheck) {
  absl::StatusOr<Config> config = Load("[doctor]\ntimeout = \"5m\"\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("doctor.timeout"));

  config = Load("[mail]\nfrom_address = \"no-reply@localhost\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<Sender> sender = SenderFromConfig(*config);
  ASSERT_FALSE(sender.ok());
  EXPECT_THAT(std::string(sender.status().message()),
              HasSubstr("mail.from_address"));

  config = Load(
      "[mail]\nfrom_address = \"a@example.com\"\n"
      "[delivery]\nchain = [\"relay\"]\n"
      "[providers.relay]\ntype = \"smtp\"\nhost = \"127.0.0.1\"\n"
      "security = \"none\"\nspf_include = \"include:_spf.relay.test\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  sender = SenderFromConfig(*config);
  ASSERT_FALSE(sender.ok());
  EXPECT_THAT(std::string(sender.status().message()),
              HasSubstr("providers.relay.spf_include"));
}

TEST_F(DoctorConfigTest, RunExitsTwoOnABadResolver) {
  absl::StatusOr<Config> config =
      Load("[mail]\nfrom_address = \"a@example.com\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  std::ostringstream out, err;
  EXPECT_EQ(doctor::Run(*config, {"not-an-address", false}, out, err),
            kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--resolver: cannot use"));
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace authcode::doctor
