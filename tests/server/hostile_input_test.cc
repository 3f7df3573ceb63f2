// Hostile requests through the real service over gRPC, against a real
// PostgreSQL database: header injection, over-long fields, NUL bytes,
// invalid UTF-8, Unicode look-alikes, SQL metacharacters, huge template
// maps, malformed codes, display-name tricks and IP literals. Each must
// come back INVALID_ARGUMENT with a google.rpc.BadRequest naming the bad
// field (requests past the size cap: RESOURCE_EXHAUSTED from gRPC, before
// they are read), and together they must leave every table as it was and
// send no mail. A few unusual addresses that are valid must still work.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"
#include "tests/support/test_server.h"

namespace authcode {
namespace {

using std::string_literals::operator""s;  // "..."s keeps embedded NULs.
using testing::TestConfig;
using testing::TestDatabase;
using testing::TestServer;

// The recipient of the one legitimate code issued before the hostile
// requests; hostile VerifyCode calls aim at it, so one that got through
// would spend an attempt.
constexpr char kSeeded[] = "ada@example.com";

// A code id that exists nowhere, in the canonical form.
constexpr char kUnknownCodeId[] = "00000000-0000-4000-8000-000000000000";

v1::IssueCodeRequest GoodIssue() {
  v1::IssueCodeRequest request;
  request.set_recipient("bob@example.com");
  request.set_purpose("login");
  request.set_locale("en");
  (*request.mutable_template_values())["app_name"] = "Acme";
  return request;
}

v1::VerifyCodeRequest GoodVerify() {
  v1::VerifyCodeRequest request;
  request.set_recipient(kSeeded);
  request.set_purpose("login");
  request.set_code("123456");
  return request;
}

grpc::Status CallGetDelivery(TestServer& server, const std::string& code_id) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetDeliveryRequest request;
  request.set_code_id(code_id);
  v1::GetDeliveryResponse response;
  return server.stub().GetDelivery(&context, request, &response);
}

// One hostile request and the fields its BadRequest must name, in order.
struct Hostile {
  std::string name;
  std::function<grpc::Status(TestServer&)> call;
  std::vector<std::string> fields;
};

using IssueEdit = std::function<void(v1::IssueCodeRequest&)>;
using VerifyEdit = std::function<void(v1::VerifyCodeRequest&)>;

Hostile Issue(std::string name, std::string field, IssueEdit edit) {
  return {std::move(name),
          [edit](TestServer& s) {
            v1::IssueCodeRequest request = GoodIssue();
            edit(request);
            return s.Issue(request);
          },
          {std::move(field)}};
}

Hostile Verify(std::string name, std::string field, VerifyEdit edit) {
  return {std::move(name),
          [edit](TestServer& s) {
            v1::VerifyCodeRequest request = GoodVerify();
            edit(request);
            grpc::Status status;
            s.Verify(request.recipient(), request.purpose(), request.code(),
                     &status);
            return status;
          },
          {std::move(field)}};
}

Hostile GetDelivery(std::string name, std::string code_id) {
  return {std::move(name),
          [code_id](TestServer& s) { return CallGetDelivery(s, code_id); },
          {"code_id"}};
}

IssueEdit IssueTo(std::string text) {
  return [text](v1::IssueCodeRequest& r) { r.set_recipient(text); };
}
IssueEdit Purpose(std::string text) {
  return [text](v1::IssueCodeRequest& r) { r.set_purpose(text); };
}
IssueEdit Locale(std::string text) {
  return [text](v1::IssueCodeRequest& r) { r.set_locale(text); };
}
IssueEdit Value(std::string key, std::string value) {
  return [key, value](v1::IssueCodeRequest& r) {
    (*r.mutable_template_values())[key] = value;
  };
}
IssueEdit ClientIp(std::string text) {
  return [text](v1::IssueCodeRequest& r) { r.set_client_ip(text); };
}
IssueEdit IdempotencyKey(std::string text) {
  return [text](v1::IssueCodeRequest& r) { r.set_idempotency_key(text); };
}
VerifyEdit Code(std::string text) {
  return [text](v1::VerifyCodeRequest& r) { r.set_code(text); };
}
VerifyEdit VerifyRecipient(std::string text) {
  return [text](v1::VerifyCodeRequest& r) { r.set_recipient(text); };
}

// `count` template values named value_00, value_01, ... of `size` bytes.
IssueEdit ManyValues(int count, size_t size) {
  return [count, size](v1::IssueCodeRequest& r) {
    r.clear_template_values();
    for (int i = 0; i < count; ++i) {
      (*r.mutable_template_values())[absl::StrFormat("value_%02d", i)] =
          std::string(size, 'v');
    }
  };
}

// Twenty values at once, each past the 256-byte limit: 60 KB in all, just
// under the request size cap.
Hostile HugeValues() {
  Hostile hostile =
      Issue("TemplateMapSixtyKilobytes", "", ManyValues(20, 3000));
  hostile.fields.clear();
  for (int i = 0; i < 20; ++i) {
    hostile.fields.push_back(absl::StrFormat("template_values.value_%02d", i));
  }
  return hostile;
}

std::string LongestAddress() {
  return std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
         std::string(63, 'c') + "." + std::string(61, 'd');
}

std::vector<Hostile> HostileRequests() {
  const std::string value = "template_values.app_name";
  return {
      // Header injection: CR/LF (and Unicode line breaks) in anything that
      // could reach a header.
      Issue("RecipientCrlfBcc", "recipient",
            IssueTo("bob@example.com\r\nBcc: eve@evil.test")),
      Issue("RecipientBareLf", "recipient",
            IssueTo("bob@example.com\nBcc: eve@evil.test")),
      Issue("RecipientBareCr", "recipient", IssueTo("bob@example.com\r")),
      Issue("ValueCrlfBcc", value,
            Value("app_name", "Acme\r\nBcc: eve@evil.test")),
      Issue("ValueCrlfBody", value,
            Value("app_name", "Acme\r\n\r\n<a href=x>click</a>")),
      Issue("ValueNextLine", value, Value("app_name", "Acme\xC2\x85X: y")),
      Issue("ValueLineSeparator", value,
            Value("app_name", "Acme\xE2\x80\xA8X: y")),
      Issue("LocaleCrlf", "locale", Locale("en\r\nBcc: eve@evil.test")),
      Issue("PurposeCrlf", "purpose", Purpose("login\r\nBcc: eve@evil.test")),
      Issue("TemplateKeyCrlf", "template_values",
            Value("app\r\nBcc: eve@evil.test", "Acme")),
      Issue("ClientIpCrlf", "client_ip",
            ClientIp("192.0.2.1\r\nX-Forwarded-For: 10.0.0.1")),
      Verify("VerifyRecipientCrlf", "recipient",
             VerifyRecipient("ada@example.com\r\nBcc: eve@evil.test")),
      // Over-long fields.
      Issue("Recipient255Octets", "recipient", IssueTo(LongestAddress() + "d")),
      Issue("Recipient60Kilobytes", "recipient",
            IssueTo(std::string(60000, 'a') + "@example.com")),
      Issue("LocalPart65", "recipient",
            IssueTo(std::string(65, 'a') + "@example.com")),
      Issue("DomainLabel64", "recipient",
            IssueTo("bob@" + std::string(64, 'a') + ".com")),
      Issue("Purpose33", "purpose", Purpose(std::string(33, 'p'))),
      Issue("Purpose60Kilobytes", "purpose", Purpose(std::string(60000, 'p'))),
      Issue("Locale36", "locale",
            Locale("en-abcdefgh-abcdefgh-abcdefgh-abcdef")),
      Issue("Value257Bytes", value, Value("app_name", std::string(257, 'v'))),
      Issue("Value60Kilobytes", value,
            Value("app_name", std::string(60000, 'v'))),
      Issue("TemplateKey33", "template_values",
            Value(std::string(33, 'k'), "Acme")),
      Issue("IdempotencyKey129", "idempotency_key",
            IdempotencyKey(std::string(129, 'k'))),
      Issue("ClientIp46", "client_ip", ClientIp(std::string(46, '1'))),
      Verify("Code11Digits", "code", Code("12345678901")),
      Verify("Code60Kilobytes", "code", Code(std::string(60000, '1'))),
      GetDelivery("CodeId37", std::string(kUnknownCodeId) + "0"),
      // NUL bytes, which C string handling would cut the value at.
      Issue("RecipientNulSecondAddress", "recipient",
            IssueTo("bob@example.com\0eve@evil.test"s)),
      Issue("PurposeNul", "purpose", Purpose("login\0admin"s)),
      Issue("LocaleNul", "locale", Locale("en\0"s)),
      Issue("ValueNul", value, Value("app_name", "Ac\0me"s)),
      Issue("TemplateKeyNul", "template_values", Value("app\0name"s, "Acme")),
      Issue("ClientIpNulJunk", "client_ip", ClientIp("192.0.2.1\0junk"s)),
      Issue("IdempotencyKeyNul", "idempotency_key",
            IdempotencyKey("key\0other"s)),
      Verify("CodeNul", "code", Code("123456\0"s)),
      GetDelivery("CodeIdNul", std::string(kUnknownCodeId) + "\0"s),
      // Unicode look-alikes.
      Issue("CyrillicAInDomain", "recipient",
            IssueTo("bob@ex\xD0\xB0mple.com")),
      Issue("GreekOmicronInDomain", "recipient",
            IssueTo("bob@go\xCE\xBFgle.com")),
      Issue("MixedScriptALabel", "recipient",
            IssueTo("bob@xn--exmple-4nf.com")),
      Issue("CyrillicInLocalPart", "recipient",
            IssueTo("b\xD0\xBE"
                    "b@example.com")),
      Issue("FullWidthAt", "recipient",
            IssueTo("bob\xEF\xBC\xA0"
                    "example.com")),
      Issue("OneDotLeaderInDomain", "recipient",
            IssueTo("bob@example\xE2\x80\xA4"
                    "com")),
      Issue("RightToLeftOverrideInDomain", "recipient",
            IssueTo("bob@exa\xE2\x80\xAEmple.com")),
      Issue("RightToLeftOverrideInValue", value,
            Value("app_name",
                  "Acme \xE2\x80\xAE"
                  "gpj.exe")),
      Issue("FullWidthPurpose", "purpose",
            Purpose("\xEF\xBD\x8C\xEF\xBD\x8F\xEF\xBD\x87\xEF\xBD\x89"
                    "\xEF\xBD\x8E")),
      // SQL metacharacters: refused by the syntax of each field, and never
      // near SQL text anyway (every statement is parameterised).
      Issue("RecipientDropTable", "recipient",
            IssueTo("bob'; DROP TABLE codes; --@example.com")),
      Issue("RecipientQuoteInDomain", "recipient",
            IssueTo("bob@example.com' OR '1'='1")),
      Issue("RecipientBackslash", "recipient", IssueTo("bob\\@example.com")),
      Issue("PurposeDropTable", "purpose",
            Purpose("login'; DROP TABLE codes; --")),
      Issue("PurposePercent", "purpose", Purpose("%")),
      Issue("PurposeUnderscoreWildcard", "purpose", Purpose("_")),
      Issue("PurposeBackslash", "purpose", Purpose("login\\")),
      Issue("LocaleQuote", "locale", Locale("en'--")),
      Issue("TemplateKeyQuote", "template_values",
            Value("app_name'); DROP TABLE codes; --", "Acme")),
      Verify("CodeQuote", "code", Code("12345'")),
      Verify("CodePercent", "code", Code("%%%%%%")),
      Verify("CodeBackslash", "code", Code("\\\\\\\\\\\\")),
      GetDelivery("CodeIdDropTable", "'; DROP TABLE delivery_jobs; --"),
      GetDelivery("CodeIdPercent", "%"),
      // Huge template maps.
      Issue("TemplateMap21Entries", "template_values", ManyValues(21, 1)),
      Issue("TemplateMap2000Entries", "template_values", ManyValues(2000, 8)),
      HugeValues(),
      Issue("TemplateReservedCode", "template_values.code",
            Value("code", "000000")),
      Issue("TemplateReservedRecipient", "template_values.recipient",
            Value("recipient", "eve@evil.test")),
      // Malformed codes.
      Verify("CodeLetters", "code", Code("abcdef")),
      Verify("CodeFiveDigits", "code", Code("12345")),
      Verify("CodeArabicIndicDigits", "code",
             Code("\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6")),
      Verify("CodeFullWidthDigits", "code",
             Code("\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93\xEF\xBC\x94\xEF\xBC"
                  "\x95\xEF\xBC\x96")),
      Verify("CodeSuperscriptDigits", "code",
             Code("\xC2\xB9\xC2\xB2\xC2\xB3\xE2\x81\xB4\xE2\x81\xB5\xE2\x81"
                  "\xB6")),
      Verify("CodeSpaces", "code", Code(" 123456")),
      Verify("CodeSign", "code", Code("+123456")),
      Verify("CodeExponent", "code", Code("1e5678")),
      Verify("CodeEmpty", "code", Code("")),
      // Display-name tricks.
      Issue("DisplayName", "recipient", IssueTo("Bob <bob@example.com>")),
      Issue("DisplayNameHidingAnother", "recipient",
            IssueTo("\"bob@example.com\" <eve@evil.test>")),
      Issue("CommentHidingAnother", "recipient",
            IssueTo("eve@evil.test(bob@example.com)")),
      Issue("ListOfTwo", "recipient",
            IssueTo("bob@example.com, eve@evil.test")),
      Issue("ListSemicolon", "recipient",
            IssueTo("bob@example.com;eve@evil.test")),
      Issue("Group", "recipient", IssueTo("undisclosed-recipients:;")),
      Issue("TwoAts", "recipient", IssueTo("bob@evil.test@example.com")),
      // IP literals and bare IP addresses.
      Issue("Ipv4Literal", "recipient", IssueTo("bob@[127.0.0.1]")),
      Issue("Ipv6Literal", "recipient", IssueTo("bob@[IPv6:::1]")),
      Issue("BareIpv4", "recipient", IssueTo("bob@127.0.0.1")),
      Issue("SingleLabelHost", "recipient", IssueTo("root@localhost")),
      // Code ids that are not what IssueCode returns.
      GetDelivery("CodeIdUpperCase", "00000000-0000-4000-8000-00000000000A"),
      GetDelivery("CodeIdEmpty", ""),
  };
}

// Strings that are not UTF-8. A proto3 string must be UTF-8, and
// protobuf's parser would refuse the whole request with a bare INTERNAL;
// the service checks the raw request first (server/wire_check.h) and
// names the field.
std::vector<Hostile> InvalidUtf8Requests() {
  const std::string value = "template_values.app_name";
  return {
      Issue("ValueLatin1", value, Value("app_name", "Caf\xE9")),
      Issue("ValueOverlongSlash", value, Value("app_name", "\xC0\xAF")),
      Issue("ValueSurrogate", value, Value("app_name", "\xED\xA0\x80")),
      Issue("ValueTruncated", value, Value("app_name", "Caf\xC3")),
      Issue("ValuePastU10FFFF", value, Value("app_name", "\xF4\x90\x80\x80")),
      Issue("TemplateKeyLatin1", "template_values", Value("caf\xE9", "Acme")),
      Issue("RecipientInvalidDomain", "recipient",
            IssueTo("bob@b\xC3.example")),
      Issue("RecipientOverlongDot", "recipient",
            IssueTo("bob@example\xC0\xAE"
                    "com")),
      Issue("PurposeLatin1", "purpose", Purpose("log\xEDn")),
      Issue("LocaleLoneContinuation", "locale", Locale("en-\x80")),
      Issue("ClientIpLatin1", "client_ip", ClientIp("192.0.2.1\xA0")),
      Issue("IdempotencyKeyByteFF", "idempotency_key", IdempotencyKey("k\xFF")),
      Verify("CodeByteFF", "code", Code("12345\xFF")),
      Verify("VerifyRecipientLatin1", "recipient",
             VerifyRecipient("b\xF6"
                             "b@example.com")),
      GetDelivery("CodeIdLatin1", "\xE9"),
  };
}

// Requests past server.max_request_bytes (64 KiB by default): gRPC refuses
// them with RESOURCE_EXHAUSTED before they are read, so no field is named.
std::vector<Hostile> OversizedRequests() {
  Hostile huge_map =
      Issue("TemplateMapTwoMegabytes", "", ManyValues(20, 1 << 17));
  huge_map.fields.clear();
  return {
      Issue("Recipient100Kilobytes", "",
            IssueTo(std::string(100000, 'a') + "@example.com")),
      Issue("Purpose1Megabyte", "", Purpose(std::string(1 << 20, 'p'))),
      Issue("Value1Megabyte", "", Value("app_name", std::string(1 << 20, 'v'))),
      huge_map,
      Issue("TemplateMap10000Entries", "", ManyValues(10000, 8)),
      Verify("Code1Megabyte", "", Code(std::string(1 << 20, '1'))),
  };
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    server_ = TestServer::Start(TestConfig(db_->url()));
    ASSERT_NE(server_, nullptr);
  }

  // Every table of the schema, as the migrations left it.
  std::vector<std::string> Tables() const {
    std::vector<std::string> tables;
    for (const auto& row :
         db_->Query("SELECT tablename FROM pg_tables WHERE schemaname = "
                    "current_schema() ORDER BY tablename")) {
      tables.push_back(row.at(0));
    }
    return tables;
  }

  // For each table, its row count and a digest of its contents, so an
  // update shows as well as an insert or a delete.
  std::map<std::string, std::string> Snapshot() const {
    std::map<std::string, std::string> snapshot;
    for (const std::string& table : Tables()) {
      snapshot[table] = db_->Scalar(absl::StrCat(
          "SELECT count(*) || ' rows, ' || coalesce(md5(string_agg(t::text, "
          "'|' ORDER BY t::text)), 'empty') FROM ",
          table, " t"));
    }
    return snapshot;
  }

  // Waits until no delivery job is queued or being sent.
  void WaitForQuietOutbox() const {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (db_->Scalar("SELECT count(*) FROM delivery_jobs WHERE state IN "
                       "('queued', 'sending')") != "0") {
      ASSERT_LT(absl::Now(), deadline) << "the seeded mail was not sent";
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<TestServer> server_;
};

std::string Fields(const google::rpc::BadRequest& details) {
  std::vector<std::string> fields;
  for (const auto& v : details.field_violations()) fields.push_back(v.field());
  return absl::StrJoin(fields, ", ");
}

TEST_F(HostileInputTest, RefusesEachAsInvalidArgumentAndChangesNothing) {
  TestServer& s = *server_;
  // One real code first, so that "unchanged" is about rows that exist.
  const std::string code = s.IssueAndReceive(kSeeded, "login");
  ASSERT_FALSE(code.empty());
  WaitForQuietOutbox();
  const std::map<std::string, std::string> before = Snapshot();
  for (const char* table : {"codes", "delivery_jobs", "recipient_limits",
                            "idempotency_keys", "provider_quota"}) {
    EXPECT_EQ(before.count(table), 1u) << "no table " << table;
  }
  const size_t attempts_before = s.provider().attempts().size();

  std::vector<Hostile> requests = HostileRequests();
  for (Hostile& hostile : InvalidUtf8Requests()) {
    requests.push_back(std::move(hostile));
  }
  ASSERT_GE(requests.size(), 30u);
  std::set<std::string> names;
  for (const Hostile& hostile : requests) {
    SCOPED_TRACE(hostile.name);
    EXPECT_TRUE(names.insert(hostile.name).second) << "duplicate name";
    const grpc::Status status = hostile.call(s);
    ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    const std::optional<google::rpc::BadRequest> details =
        testing::BadRequestOf(status);
    ASSERT_TRUE(details.has_value()) << "no google.rpc.BadRequest";
    std::vector<std::string> fields;
    for (const auto& violation : details->field_violations()) {
      fields.push_back(violation.field());
      EXPECT_FALSE(violation.description().empty()) << violation.field();
      EXPECT_LT(violation.description().size(), 300u) << violation.field();
      EXPECT_EQ(violation.description().find_first_of("\r\n"s + '\0'),
                std::string::npos)
          << absl::CHexEscape(violation.description());
    }
    EXPECT_EQ(fields, hostile.fields) << Fields(*details);
    EXPECT_EQ(status.error_message().find_first_of("\r\n"s + '\0'),
              std::string::npos)
        << absl::CHexEscape(status.error_message());
  }

  for (const Hostile& hostile : OversizedRequests()) {
    SCOPED_TRACE(hostile.name);
    EXPECT_TRUE(names.insert(hostile.name).second) << "duplicate name";
    const grpc::Status status = hostile.call(s);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << status.error_message();
    EXPECT_THAT(status.error_message(),
                ::testing::HasSubstr("larger than max"));
  }

  // Let a delivery poll or two pass, in case anything was queued after all.
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(s.provider().attempts().size(), attempts_before)
      << "a hostile request reached the provider";

  // The seeded code still has all its attempts.
  EXPECT_EQ(s.Verify(kSeeded, "login", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
}

// ---------------------------------------------------------------------------
// Unusual addresses that are valid, and must work end to end.

struct Unusual {
  std::string address;  // As the caller writes it.
  std::string mailbox;  // Where the mail must go.
};

// The mail IssueCode(address) sent, or nullopt (and a failure).
std::optional<providers::Message> IssueAndRead(TestServer& s,
                                               const std::string& address) {
  const size_t before = s.provider().sent_count();
  const grpc::Status status = s.Issue(address, "login");
  if (!status.ok()) {
    ADD_FAILURE() << "IssueCode failed: " << status.error_message();
    return std::nullopt;
  }
  if (!s.provider().WaitForSent(before + 1, absl::Seconds(10))) {
    ADD_FAILURE() << "no mail was sent";
    return std::nullopt;
  }
  return s.provider().sent().back();
}

TEST_F(HostileInputTest, AcceptsUnusualButValidAddresses) {
  TestServer& s = *server_;
  const std::vector<Unusual> addresses = {
      {"ada+tag@example.com", "ada+tag@example.com"},
      {"ada.b.lovelace@mail.eu.sub.example.co.uk",
       "ada.b.lovelace@mail.eu.sub.example.co.uk"},
      {std::string(64, 'a') + "@example.com",
       std::string(64, 'a') + "@example.com"},
      {LongestAddress(), LongestAddress()},
      {"ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"},
      {"Bob@B\xC3\x9C"
       "CHER.example",
       "Bob@xn--bcher-kva.example"},
      {"o'brien@example.ie", "o'brien@example.ie"},
      // Legal atext that means something to SQL: stored as it is.
      {"x'or'1'='1@example.com", "x'or'1'='1@example.com"},
      {"100%_off@example.com", "100%_off@example.com"},
      {"!#$&*/=?^`{|}~-@example.com", "!#$&*/=?^`{|}~-@example.com"},
  };
  for (const Unusual& unusual : addresses) {
    SCOPED_TRACE(absl::CHexEscape(unusual.address));
    const std::optional<providers::Message> mail =
        IssueAndRead(s, unusual.address);
    ASSERT_TRUE(mail.has_value());
    EXPECT_EQ(mail->to_address, unusual.mailbox);
    const std::string code = testing::FindCode(mail->text, 6);
    EXPECT_EQ(s.Verify(unusual.address, "login", code).outcome(),
              v1::VERIFY_OUTCOME_VERIFIED);
  }
  // "100%_off" is stored as itself, not as a pattern.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM recipient_limits WHERE "
                        "recipient = '100%_off@example.com'"),
            "1");
}

TEST_F(HostileInputTest, EveryFormOfAnInternationalDomainIsOneRecipient) {
  TestServer& s = *server_;
  const std::optional<providers::Message> mail = IssueAndRead(s,
                                                              "ada@b\xC3\xBC"
                                                              "cher.example");
  ASSERT_TRUE(mail.has_value());
  EXPECT_EQ(mail->to_address, "ada@xn--bcher-kva.example");
  const std::string code = testing::FindCode(mail->text, 6);

  // The A-label form shares the code and the issue limit.
  EXPECT_EQ(s.Issue("ADA@XN--BCHER-KVA.EXAMPLE", "login").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.Verify("Ada@xn--bcher-kva.example", "login", code).outcome(),
            v1::VERIFY_OUTCOME_VERIFIED);
  EXPECT_EQ(db_->Scalar("SELECT string_agg(recipient, ',') FROM "
                        "recipient_limits"),
            "ada@xn--bcher-kva.example");
}

}  // namespace
}  // namespace authcode
