#include "server/validation.h"

#include <functional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "authcode/v1/authcode.pb.h"
#include "gtest/gtest.h"
#include "server/address.h"

namespace authcode {
namespace {

using std::string_literals::operator""s;  // "..."s keeps embedded NULs.

using v1::IssueCodeRequest;
using v1::VerifyCodeRequest;

// An address of exactly 254 octets: a 64-octet local part and a domain of
// labels 63 + 63 + 61 long.
std::string LongestAddress() {
  return std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
         std::string(63, 'c') + "." + std::string(61, 'd');
}

// The longest locale accepted: 35 characters.
constexpr char kLongestLocale[] = "en-abcdefgh-abcdefgh-abcdefgh-abcde";

IssueCodeRequest GoodIssue() {
  IssueCodeRequest request;
  request.set_recipient("ada@example.com");
  request.set_purpose("login");
  request.set_locale("en");
  (*request.mutable_template_values())["app_name"] = "Acme";
  request.set_client_ip("203.0.113.7");
  return request;
}

VerifyCodeRequest GoodVerify() {
  VerifyCodeRequest request;
  request.set_recipient("ada@example.com");
  request.set_purpose("login");
  request.set_code("123456");
  return request;
}

std::string Describe(const std::vector<FieldViolation>& violations) {
  std::string out;
  for (const FieldViolation& v : violations) {
    absl::StrAppend(&out, "\n  ", v.field, ": ",
                    absl::CHexEscape(v.description));
  }
  return out.empty() ? " none" : out;
}

bool IsSafeToLog(const std::string& text) {
  return text.find_first_of("\r\n"s + '\0') == std::string::npos;
}

// Checks that `violations` is exactly one, for `field`, with a description
// that can be logged as is.
void ExpectOnlyViolation(const std::vector<FieldViolation>& violations,
                         const std::string& field) {
  ASSERT_EQ(violations.size(), 1u) << "expected one violation of " << field
                                   << ", got" << Describe(violations);
  EXPECT_EQ(violations[0].field, field) << Describe(violations);
  EXPECT_FALSE(violations[0].description.empty()) << "for " << field;
  EXPECT_TRUE(IsSafeToLog(violations[0].description))
      << "raw CR, LF or NUL in \""
      << absl::CHexEscape(violations[0].description) << "\"";
}

// A field value, named for the test output (names are identifiers).
struct Value {
  std::string name;
  std::string text;
};

void PrintTo(const Value& value, std::ostream* os) {
  *os << value.name << " \"" << absl::CHexEscape(value.text) << "\"";
}

std::string ValueName(const ::testing::TestParamInfo<Value>& info) {
  return info.param.name;
}

// ---------------------------------------------------------------------------
// The recipient of both requests. The parser's own cases, with its reasons
// and normalised forms, are in address_test.cc; these check that every
// refusal becomes exactly one violation of "recipient", with the parser's
// reason as its description.

std::vector<Value> BadAddresses() {
  return {
      {"Empty", ""},
      {"TooLong255", std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
                         std::string(63, 'c') + "." + std::string(62, 'd')},
      {"LocalPart65", std::string(65, 'a') + "@example.com"},
      {"DomainLabel64", "ada@" + std::string(64, 'a') + ".com"},
      {"CR", "ada@example.com\r"},
      {"LF", "ada@exam\nple.com"},
      {"HeaderInjection", "a@b.com\r\nBcc: x@y.com"},
      {"BareLfInjection", "a@b.com\nBcc:x@y.com"},
      {"NulInLocalPart", "ada\0@example.com"s},
      {"NulThenJunk", "ada@example.com\0evil@attacker.test"s},
      {"Tab", "ada\t@example.com"},
      {"Del", "ada\x7f@example.com"},
      {"NoAt", "ada.example.com"},
      {"TwoAts", "ada@b@example.com"},
      {"NothingBeforeAt", "@example.com"},
      {"NothingAfterAt", "ada@"},
      {"LeadingDot", ".ada@example.com"},
      {"TrailingDot", "ada.@example.com"},
      {"DoubleDot", "ad..a@example.com"},
      {"DisplayName", "Ada <ada@example.com>"},
      {"AngleBrackets", "<ada@example.com>"},
      {"QuotedLocalPart", "\"ada\"@example.com"},
      {"QuotedLocalPartWithSpace", "\"ada lovelace\"@example.com"},
      {"Ipv4Literal", "ada@[192.0.2.1]"},
      {"Ipv6Literal", "ada@[IPv6:2001:db8::1]"},
      {"BareIpv4Domain", "ada@192.0.2.1"},
      {"SingleLabelDomain", "ada@localhost"},
      {"NumericTld", "ada@example.123"},
      {"LabelLeadingHyphen", "ada@-example.com"},
      {"LabelTrailingHyphen", "ada@example-.com"},
      {"DomainLeadingDot", "ada@.example.com"},
      {"DomainTrailingDot", "ada@example.com."},
      {"DomainDoubleDot", "ada@example..com"},
      {"UnderscoreInDomain", "ada@ex_ample.com"},
      {"NonAsciiLocalPart", "ad\xC3\xA1@example.com"},
      {"NonAsciiLocalPartCyrillic",
       "\xD0\xB0"
       "da@example.com"},
      {"MixedScriptDomain", "ada@ex\xD0\xB0mple.com"},
      {"MixedScriptALabel", "ada@xn--exmple-4nf.com"},
      {"BogusALabel", "ada@xn--zz.example"},
      {"DisallowedInDomain", "ada@\xF0\x9F\x92\xA9.la"},
      {"InvalidUtf8InDomain", "ada@b\xC3.example"},
      {"Space", "ada @example.com"},
      {"TwoAddresses", "ada@example.com,bob@example.com"},
      {"Semicolon", "ada@example.com;bob@example.com"},
      {"Comment", "ada(comment)@example.com"},
  };
}

std::vector<Value> GoodAddresses() {
  return {
      {"Simple", "ada@example.com"},
      {"PlusAddressing", "ada+tag@sub.example.co.uk"},
      {"MixedCase", "Ada.Lovelace@Example.COM"},
      {"Shortest", "a@b.co"},
      {"Apostrophe", "o'brien@example.ie"},
      {"EveryAtextSymbol", "!#$%&'*+/=?^_`{|}~-@example.com"},
      {"DigitsAndHyphens", "user-42@mail-1.example.com"},
      {"NumericLabelBeforeTld", "ada@123.example.com"},
      {"PunycodeDomain", "ada@xn--bcher-kva.example"},
      {"UnicodeDomain",
       "ada@b\xC3\xBC"
       "cher.example"},
      {"Longest254Octets", LongestAddress()},
      {"LocalPart64", std::string(64, 'a') + "@example.com"},
      {"DomainLabel63", "ada@" + std::string(63, 'a') + ".com"},
  };
}

class RecipientRejectTest : public ::testing::TestWithParam<Value> {};

TEST_P(RecipientRejectTest, IssueRequestReportsOnlyRecipient) {
  IssueCodeRequest request = GoodIssue();
  request.set_recipient(GetParam().text);
  const std::vector<FieldViolation> violations = ValidateIssueRequest(request);
  ExpectOnlyViolation(violations, "recipient");

  const absl::StatusOr<std::string> parsed = ParseRecipient(GetParam().text);
  ASSERT_FALSE(parsed.ok()) << "the parser accepted it";
  EXPECT_EQ(violations.at(0).description, parsed.status().message());
}

TEST_P(RecipientRejectTest, VerifyRequestReportsOnlyRecipient) {
  VerifyCodeRequest request = GoodVerify();
  request.set_recipient(GetParam().text);
  ExpectOnlyViolation(ValidateVerifyRequest(request), "recipient");
}

INSTANTIATE_TEST_SUITE_P(Addresses, RecipientRejectTest,
                         ::testing::ValuesIn(BadAddresses()), ValueName);

class RecipientAcceptTest : public ::testing::TestWithParam<Value> {};

TEST_P(RecipientAcceptTest, AcceptsValidAddress) {
  IssueCodeRequest issue = GoodIssue();
  issue.set_recipient(GetParam().text);
  EXPECT_TRUE(ValidateIssueRequest(issue).empty())
      << Describe(ValidateIssueRequest(issue));

  VerifyCodeRequest verify = GoodVerify();
  verify.set_recipient(GetParam().text);
  EXPECT_TRUE(ValidateVerifyRequest(verify).empty())
      << Describe(ValidateVerifyRequest(verify));
}

INSTANTIATE_TEST_SUITE_P(Addresses, RecipientAcceptTest,
                         ::testing::ValuesIn(GoodAddresses()), ValueName);

TEST(RecipientTest, NamesTheLengthLimit) {
  IssueCodeRequest request = GoodIssue();
  request.set_recipient(LongestAddress() + "x");
  const std::vector<FieldViolation> violations = ValidateIssueRequest(request);
  ExpectOnlyViolation(violations, "recipient");
  EXPECT_NE(violations[0].description.find("254"), std::string::npos)
      << violations[0].description;
}

// ---------------------------------------------------------------------------
// Single bad fields in otherwise good requests.

struct IssueCase {
  std::string name;
  std::function<void(IssueCodeRequest&)> mutate;
  std::string field;
};

// Sets template value `key` to `value`.
std::function<void(IssueCodeRequest&)> TemplateValue(std::string key,
                                                     std::string value) {
  return [key, value](IssueCodeRequest& r) {
    (*r.mutable_template_values())[key] = value;
  };
}

std::function<void(IssueCodeRequest&)> Purpose(std::string purpose) {
  return [purpose](IssueCodeRequest& r) { r.set_purpose(purpose); };
}

std::function<void(IssueCodeRequest&)> Locale(std::string locale) {
  return [locale](IssueCodeRequest& r) { r.set_locale(locale); };
}

std::function<void(IssueCodeRequest&)> ClientIp(std::string ip) {
  return [ip](IssueCodeRequest& r) { r.set_client_ip(ip); };
}

// 21 distinct, individually valid template values.
void TooManyTemplateValues(IssueCodeRequest& r) {
  r.clear_template_values();
  for (int i = 0; i <= 20; ++i) {
    (*r.mutable_template_values())[absl::StrCat("value_", i)] = "x";
  }
}

// Bad purposes, shared by both requests.
std::vector<Value> BadPurposes() {
  return {
      {"Empty", ""},
      {"Uppercase", "Login"},
      {"AllUppercase", "LOGIN"},
      {"StartsWithDigit", "2fa"},
      {"StartsWithUnderscore", "_login"},
      {"StartsWithHyphen", "-login"},
      {"Space", "log in"},
      {"TrailingSpace", "login "},
      {"Dot", "log.in"},
      {"TooLong33", std::string(33, 'a')},
      {"CR", "login\r"},
      {"LF", "login\n"},
      {"HeaderInjection", "login\r\nBcc: x@y.com"},
      {"Nul", "log\0in"s},
      {"Tab", "login\t"},
      {"NonAscii", "connexi\xC3\xB3n"},
  };
}

std::vector<IssueCase> BadIssueFields() {
  std::vector<IssueCase> cases = {
      // Locale.
      {"LocaleWord", Locale("english"), "locale"},
      {"LocaleOneLetter", Locale("e"), "locale"},
      {"LocaleDoubleHyphen", Locale("en--US"), "locale"},
      {"LocaleTrailingHyphen", Locale("en-"), "locale"},
      {"LocaleLeadingHyphen", Locale("-en"), "locale"},
      {"LocaleUnderscore", Locale("en_US"), "locale"},
      {"LocaleDigitInLanguage", Locale("e1"), "locale"},
      {"LocaleSubtagTooLong", Locale("en-abcdefghi"), "locale"},
      {"LocaleTooLong36", Locale(std::string(kLongestLocale) + "f"), "locale"},
      {"LocaleSpace", Locale("de CH"), "locale"},
      {"LocaleCR", Locale("en\r"), "locale"},
      {"LocaleLF", Locale("en\n"), "locale"},
      {"LocaleHeaderInjection", Locale("en\r\nBcc: x@y.com"), "locale"},
      {"LocaleNul", Locale("en\0"s), "locale"},
      {"LocaleTab", Locale("en\t"), "locale"},
      {"LocaleNonAscii",
       Locale("fr-\xC3\x87"
              "A"),
       "locale"},
      // Template keys: a bad key is not echoed into the field name.
      {"TemplateTooMany", TooManyTemplateValues, "template_values"},
      {"TemplateKeyUppercase", TemplateValue("App_Name", "Acme"),
       "template_values"},
      {"TemplateKeyHyphen", TemplateValue("app-name", "Acme"),
       "template_values"},
      {"TemplateKeyEmpty", TemplateValue("", "Acme"), "template_values"},
      {"TemplateKeyStartsWithDigit", TemplateValue("1app", "Acme"),
       "template_values"},
      {"TemplateKeyTooLong33", TemplateValue(std::string(33, 'k'), "Acme"),
       "template_values"},
      {"TemplateKeySpace", TemplateValue("app name", "Acme"),
       "template_values"},
      {"TemplateKeyCRLF", TemplateValue("app\r\nBcc: x@y.com", "Acme"),
       "template_values"},
      {"TemplateKeyNul", TemplateValue("app\0name"s, "Acme"),
       "template_values"},
      // Reserved template keys.
      {"TemplateReservedCode", TemplateValue("code", "000000"),
       "template_values.code"},
      {"TemplateReservedExpiresInMinutes",
       TemplateValue("expires_in_minutes", "999"),
       "template_values.expires_in_minutes"},
      {"TemplateReservedRecipient", TemplateValue("recipient", "x@y.com"),
       "template_values.recipient"},
      {"TemplateReservedPurpose", TemplateValue("purpose", "login"),
       "template_values.purpose"},
      // Template values.
      {"TemplateValueTooLong257",
       TemplateValue("app_name", std::string(257, 'v')),
       "template_values.app_name"},
      {"TemplateValueTooLongMultibyte",
       TemplateValue("app_name", std::string(255, 'v') + "\xC3\xA9"),
       "template_values.app_name"},
      {"TemplateValueCR", TemplateValue("app_name", "Acme\r"),
       "template_values.app_name"},
      {"TemplateValueLF", TemplateValue("app_name", "Acme\n"),
       "template_values.app_name"},
      {"TemplateValueHeaderInjection",
       TemplateValue("app_name", "Acme\r\nBcc: x@y.com"),
       "template_values.app_name"},
      {"TemplateValueNul", TemplateValue("app_name", "Ac\0me"s),
       "template_values.app_name"},
      {"TemplateValueTab", TemplateValue("app_name", "Ac\tme"),
       "template_values.app_name"},
      {"TemplateValueDel", TemplateValue("app_name", "Ac\x7fme"),
       "template_values.app_name"},
      {"TemplateValueEscape", TemplateValue("app_name", "\x1b[31mAcme"),
       "template_values.app_name"},
      {"TemplateValueOverlong", TemplateValue("app_name", "\xC0\xAF"),
       "template_values.app_name"},
      {"TemplateValueOverlongThreeBytes",
       TemplateValue("app_name", "\xE0\x80\xAF"), "template_values.app_name"},
      {"TemplateValueSurrogate", TemplateValue("app_name", "\xED\xA0\x80"),
       "template_values.app_name"},
      {"TemplateValueTruncated", TemplateValue("app_name", "\xE2\x82"),
       "template_values.app_name"},
      {"TemplateValueTruncatedAfterText", TemplateValue("app_name", "Caf\xC3"),
       "template_values.app_name"},
      {"TemplateValueLoneContinuation", TemplateValue("app_name", "\x80"),
       "template_values.app_name"},
      {"TemplateValueByteFF", TemplateValue("app_name", "Acme\xFF"),
       "template_values.app_name"},
      {"TemplateValuePastU10FFFF",
       TemplateValue("app_name", "\xF4\x90\x80\x80"),
       "template_values.app_name"},
      {"TemplateValueLatin1", TemplateValue("app_name", "Caf\xE9"),
       "template_values.app_name"},
      {"TemplateValueNextLine", TemplateValue("app_name", "Acme\xC2\x85"),
       "template_values.app_name"},
      {"TemplateValueLineSeparator",
       TemplateValue("app_name", "Acme\xE2\x80\xA8"),
       "template_values.app_name"},
      {"TemplateValueRightToLeftOverride",
       TemplateValue("app_name",
                     "Acme \xE2\x80\xAE"
                     "gpj.exe"),
       "template_values.app_name"},
      {"TemplateValueLeftToRightEmbedding",
       TemplateValue("app_name",
                     "\xE2\x80\xAA"
                     "Acme"),
       "template_values.app_name"},
      {"TemplateValueFirstStrongIsolate",
       TemplateValue("app_name",
                     "\xE2\x81\xA8"
                     "Acme\xE2\x81\xA9"),
       "template_values.app_name"},
      // Client IP.
      {"ClientIpWord", ClientIp("garbage"), "client_ip"},
      {"ClientIpHostname", ClientIp("localhost"), "client_ip"},
      {"ClientIpOctetTooBig", ClientIp("256.1.1.1"), "client_ip"},
      {"ClientIpThreeParts", ClientIp("192.0.2"), "client_ip"},
      {"ClientIpFiveParts", ClientIp("192.0.2.1.5"), "client_ip"},
      {"ClientIpCidr", ClientIp("192.0.2.0/24"), "client_ip"},
      {"ClientIpWithPort", ClientIp("192.0.2.1:443"), "client_ip"},
      {"ClientIpLeadingSpace", ClientIp(" 192.0.2.1"), "client_ip"},
      {"ClientIpTrailingSpace", ClientIp("192.0.2.1 "), "client_ip"},
      {"ClientIpBadV6", ClientIp("2001:db8::g"), "client_ip"},
      {"ClientIpV6TwoGaps", ClientIp("2001::db8::1"), "client_ip"},
      {"ClientIpV6Zone", ClientIp("fe80::1%eth0"), "client_ip"},
      {"ClientIpTooLong", ClientIp(std::string(46, '1')), "client_ip"},
      {"ClientIpCRLF", ClientIp("192.0.2.1\r\nX-Forwarded-For: 1.1.1.1"),
       "client_ip"},
      {"ClientIpNulThenJunk", ClientIp("192.0.2.1\0junk"s), "client_ip"},
      {"ClientIpNulThenLogLine", ClientIp("192.0.2.1\0\nlevel=error fake"s),
       "client_ip"},
  };
  for (const Value& purpose : BadPurposes()) {
    cases.push_back(
        {"Purpose" + purpose.name, Purpose(purpose.text), "purpose"});
  }
  return cases;
}

void PrintTo(const IssueCase& c, std::ostream* os) { *os << c.name; }

std::string IssueCaseName(const ::testing::TestParamInfo<IssueCase>& info) {
  return info.param.name;
}

class ValidateIssueRequestBadFieldTest
    : public ::testing::TestWithParam<IssueCase> {};

TEST_P(ValidateIssueRequestBadFieldTest, ReportsExactlyTheBadField) {
  IssueCodeRequest request = GoodIssue();
  GetParam().mutate(request);
  ExpectOnlyViolation(ValidateIssueRequest(request), GetParam().field);
}

INSTANTIATE_TEST_SUITE_P(Fields, ValidateIssueRequestBadFieldTest,
                         ::testing::ValuesIn(BadIssueFields()), IssueCaseName);

struct VerifyCase {
  std::string name;
  std::function<void(VerifyCodeRequest&)> mutate;
  std::string field;
};

std::function<void(VerifyCodeRequest&)> Code(std::string code) {
  return [code](VerifyCodeRequest& r) { r.set_code(code); };
}

std::vector<VerifyCase> BadVerifyFields() {
  std::vector<VerifyCase> cases = {
      {"CodeEmpty", Code(""), "code"},
      {"CodeFiveDigits", Code("12345"), "code"},
      {"CodeElevenDigits", Code("12345678901"), "code"},
      {"CodeLetters", Code("abcdef"), "code"},
      {"CodeInnerSpace", Code("123 456"), "code"},
      {"CodeLeadingSpace", Code(" 123456"), "code"},
      {"CodeTrailingSpace", Code("123456 "), "code"},
      {"CodeTrailingLetter", Code("12345a"), "code"},
      {"CodeSixWithLetter", Code("12345a6"), "code"},
      {"CodeSign", Code("-123456"), "code"},
      {"CodePlus", Code("+123456"), "code"},
      {"CodeDecimalPoint", Code("123.456"), "code"},
      {"CodeFullWidthDigits",
       Code("\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93\xEF\xBC\x94\xEF\xBC\x95"
            "\xEF\xBC\x96"),
       "code"},
      {"CodeArabicIndicDigits",
       Code("\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6"), "code"},
      {"CodeLF", Code("123456\n"), "code"},
      {"CodeCRLF", Code("123456\r\n"), "code"},
      {"CodeNul", Code("123456\0"s), "code"},
      {"CodeTab", Code("\t123456"), "code"},
  };
  for (const Value& purpose : BadPurposes()) {
    const std::string text = purpose.text;
    cases.push_back({"Purpose" + purpose.name,
                     [text](VerifyCodeRequest& r) { r.set_purpose(text); },
                     "purpose"});
  }
  return cases;
}

void PrintTo(const VerifyCase& c, std::ostream* os) { *os << c.name; }

std::string VerifyCaseName(const ::testing::TestParamInfo<VerifyCase>& info) {
  return info.param.name;
}

class ValidateVerifyRequestBadFieldTest
    : public ::testing::TestWithParam<VerifyCase> {};

TEST_P(ValidateVerifyRequestBadFieldTest, ReportsExactlyTheBadField) {
  VerifyCodeRequest request = GoodVerify();
  GetParam().mutate(request);
  ExpectOnlyViolation(ValidateVerifyRequest(request), GetParam().field);
}

INSTANTIATE_TEST_SUITE_P(Fields, ValidateVerifyRequestBadFieldTest,
                         ::testing::ValuesIn(BadVerifyFields()),
                         VerifyCaseName);

// ---------------------------------------------------------------------------
// Good requests and several bad fields at once.

std::set<std::string> FieldsOf(const std::vector<FieldViolation>& violations) {
  std::set<std::string> fields;
  for (const FieldViolation& v : violations) fields.insert(v.field);
  return fields;
}

TEST(ValidateIssueRequestTest, AcceptsGoodRequests) {
  std::vector<IssueCodeRequest> good;

  good.push_back(GoodIssue());

  IssueCodeRequest minimal;  // Optional fields left out.
  minimal.set_recipient("ada@example.com");
  minimal.set_purpose("signup");
  good.push_back(minimal);

  IssueCodeRequest plus = GoodIssue();
  plus.set_recipient("ada+tag@sub.example.co.uk");
  plus.set_purpose("password_reset");
  plus.set_locale("de-CH");
  plus.set_client_ip("2001:db8::8a2e:370:7334");
  good.push_back(plus);

  IssueCodeRequest longest;
  longest.set_recipient(LongestAddress());
  longest.set_purpose(std::string(32, 'p'));
  longest.set_locale(kLongestLocale);
  longest.set_client_ip("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
  for (int i = 0; i < 19; ++i) {
    (*longest.mutable_template_values())[absl::StrCat("value_", i)] =
        std::string(256, 'v');
  }
  (*longest.mutable_template_values())[std::string(32, 'k')] =
      std::string(256, 'v');
  good.push_back(longest);

  IssueCodeRequest unicode = GoodIssue();
  unicode.set_locale("zh-Hant-TW");
  auto& values = *unicode.mutable_template_values();
  values["app_name"] = "Caf\xC3\xA9";                     // Café
  values["greeting"] = "\xF0\x9F\x9A\x80 Launch";         // rocket emoji
  values["company"] = "\xE6\x97\xA5\xE6\x9C\xAC";         // 日本
  values["tagline"] = "<b>bold</b> & \"quoted\" 'text'";  // escaped later
  values["empty"] = "";
  std::string accents;
  for (int i = 0; i < 128; ++i) accents += "\xC3\xA9";  // 256 bytes.
  values["long_accents"] = accents;
  good.push_back(unicode);

  for (const char* ip :
       {"192.0.2.1", "0.0.0.0", "255.255.255.255", "::", "::1",
        "::ffff:192.0.2.1", "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "FE80::1"}) {
    IssueCodeRequest with_ip = GoodIssue();
    with_ip.set_client_ip(ip);
    good.push_back(with_ip);
  }

  for (const char* locale : {"en", "de", "EN-us", "sr-Latn-RS", "es-419"}) {
    IssueCodeRequest with_locale = GoodIssue();
    with_locale.set_locale(locale);
    good.push_back(with_locale);
  }

  for (const IssueCodeRequest& request : good) {
    EXPECT_TRUE(ValidateIssueRequest(request).empty())
        << "rejected " << request.ShortDebugString() << ":"
        << Describe(ValidateIssueRequest(request));
  }
}

TEST(ValidateIssueRequestTest, AcceptsExactlyTwentyTemplateValues) {
  IssueCodeRequest request = GoodIssue();
  request.clear_template_values();
  for (int i = 0; i < 20; ++i) {
    (*request.mutable_template_values())[absl::StrCat("value_", i)] = "x";
  }
  EXPECT_TRUE(ValidateIssueRequest(request).empty())
      << Describe(ValidateIssueRequest(request));
}

TEST(ValidateIssueRequestTest, ReportsEveryBadField) {
  IssueCodeRequest request;
  request.set_recipient("Ada <ada@example.com>");
  request.set_purpose("Log In");
  request.set_locale("english");
  (*request.mutable_template_values())["app_name"] = "Acme\r\nBcc: x@y.com";
  request.set_client_ip("not-an-ip");

  const std::vector<FieldViolation> violations = ValidateIssueRequest(request);
  EXPECT_EQ(violations.size(), 5u) << Describe(violations);
  EXPECT_EQ(FieldsOf(violations),
            (std::set<std::string>{"recipient", "purpose", "locale",
                                   "template_values.app_name", "client_ip"}))
      << Describe(violations);
  for (const FieldViolation& v : violations) {
    EXPECT_TRUE(IsSafeToLog(v.description)) << v.field;
  }
}

TEST(ValidateIssueRequestTest, ReportsRequiredFieldsOfAnEmptyRequest) {
  const std::vector<FieldViolation> violations =
      ValidateIssueRequest(IssueCodeRequest());
  EXPECT_EQ(FieldsOf(violations),
            (std::set<std::string>{"recipient", "purpose"}))
      << Describe(violations);
  EXPECT_EQ(violations.size(), 2u) << Describe(violations);
}

TEST(ValidateIssueRequestTest, ReportsEachBadTemplateValue) {
  IssueCodeRequest request = GoodIssue();
  auto& values = *request.mutable_template_values();
  values["code"] = "000000";
  values["footer"] = "line\nbreak";
  values["title"] = "\xC0\xAF";

  const std::vector<FieldViolation> violations = ValidateIssueRequest(request);
  EXPECT_EQ(
      FieldsOf(violations),
      (std::set<std::string>{"template_values.code", "template_values.footer",
                             "template_values.title"}))
      << Describe(violations);
  EXPECT_EQ(violations.size(), 3u) << Describe(violations);
}

TEST(ValidateVerifyRequestTest, AcceptsGoodRequests) {
  std::vector<VerifyCodeRequest> good;
  for (const char* code : {"123456", "000000", "0123456", "1234567890"}) {
    VerifyCodeRequest request = GoodVerify();
    request.set_code(code);
    good.push_back(request);
  }
  VerifyCodeRequest plus = GoodVerify();
  plus.set_recipient("ada+tag@sub.example.co.uk");
  plus.set_purpose("password_reset");
  good.push_back(plus);
  VerifyCodeRequest longest = GoodVerify();
  longest.set_recipient(LongestAddress());
  longest.set_purpose(std::string(32, 'p'));
  good.push_back(longest);

  for (const VerifyCodeRequest& request : good) {
    EXPECT_TRUE(ValidateVerifyRequest(request).empty())
        << "rejected " << request.ShortDebugString() << ":"
        << Describe(ValidateVerifyRequest(request));
  }
}

TEST(ValidateVerifyRequestTest, ReportsEveryBadField) {
  VerifyCodeRequest request;
  request.set_recipient("a@b.com\r\nBcc: x@y.com");
  request.set_purpose("2fa");
  request.set_code("12345a");

  const std::vector<FieldViolation> violations = ValidateVerifyRequest(request);
  EXPECT_EQ(violations.size(), 3u) << Describe(violations);
  EXPECT_EQ(FieldsOf(violations),
            (std::set<std::string>{"recipient", "purpose", "code"}))
      << Describe(violations);
  for (const FieldViolation& v : violations) {
    EXPECT_TRUE(IsSafeToLog(v.description)) << v.field;
  }
}

TEST(ValidateVerifyRequestTest, ReportsRequiredFieldsOfAnEmptyRequest) {
  const std::vector<FieldViolation> violations =
      ValidateVerifyRequest(VerifyCodeRequest());
  EXPECT_EQ(FieldsOf(violations),
            (std::set<std::string>{"recipient", "purpose", "code"}))
      << Describe(violations);
  EXPECT_EQ(violations.size(), 3u) << Describe(violations);
}

TEST(CountedClientIpTest, CountsIpv4AsIsAndIpv6PerNetwork) {
  const struct {
    const char* ip;
    int prefix;
    const char* counted;
  } kCases[] = {
      {"", 64, ""},
      {"203.0.113.7", 64, "203.0.113.7"},
      // An IPv4 client reached over IPv6 is the same client.
      {"::ffff:203.0.113.7", 64, "203.0.113.7"},
      {"::FFFF:cb00:7107", 64, "203.0.113.7"},
      {"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
      {"2001:DB8:1:2::ab", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
      {"2001:db8:1:2:3:4:5:6", 56, "2001:db8:1::/56"},
      {"2001:db8:1:2ff:3:4:5:6", 56, "2001:db8:1:200::/56"},
      {"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
      {"::1", 64, "::/64"},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(CountedClientIp(c.ip, c.prefix), c.counted)
        << c.ip << " /" << c.prefix;
  }
}

}  // namespace
}  // namespace authcode
