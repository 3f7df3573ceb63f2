#include "server/address.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

using std::string_literals::operator""s;  // "..."s keeps embedded NULs.
using ::testing::HasSubstr;

// An address of exactly 254 octets: a 64-octet local part and a domain of
// labels 63 + 63 + 61 long.
std::string LongestAddress() {
  return std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
         std::string(63, 'c') + "." + std::string(61, 'd');
}

// 250 octets as written, 256 in ASCII: "ü" makes the last label a 63-octet
// A-label.
std::string LongOnlyInAsciiForm() {
  return std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
         std::string(63, 'c') + "." + std::string(55, 'd') + "\xC3\xBC";
}

template <typename Case>
std::string CaseName(const ::testing::TestParamInfo<Case>& param) {
  return param.param.name;
}

bool IsSafeToLog(absl::string_view text) {
  return text.find_first_of("\r\n"s + '\0') == absl::string_view::npos;
}

// ---------------------------------------------------------------------------
// Accepted addresses: what goes on the wire, and the key.

struct Accepted {
  std::string name;
  std::string input;
  std::string mailbox;
  std::string key;
};

void PrintTo(const Accepted& a, std::ostream* os) {
  *os << a.name << " \"" << absl::CHexEscape(a.input) << "\"";
}

std::vector<Accepted> AcceptedAddresses() {
  const std::string longest = LongestAddress();
  const std::string local64 = std::string(64, 'a') + "@example.com";
  const std::string label63 = "ada@" + std::string(63, 'a') + ".com";
  return {
      {"Simple", "ada@example.com", "ada@example.com", "ada@example.com"},
      {"MixedCase", "Ada.Lovelace@Example.COM", "Ada.Lovelace@Example.COM",
       "ada.lovelace@example.com"},
      {"PlusAddressing", "ada+tag@sub.example.co.uk",
       "ada+tag@sub.example.co.uk", "ada+tag@sub.example.co.uk"},
      {"Shortest", "a@b.co", "a@b.co", "a@b.co"},
      {"Apostrophe", "O'Brien@example.ie", "O'Brien@example.ie",
       "o'brien@example.ie"},
      {"EveryAtextSymbol", "!#$%&'*+/=?^_`{|}~-@example.com",
       "!#$%&'*+/=?^_`{|}~-@example.com", "!#$%&'*+/=?^_`{|}~-@example.com"},
      {"InnerDots", "a.d.a@example.com", "a.d.a@example.com",
       "a.d.a@example.com"},
      {"DigitsAndHyphens", "user-42@mail-1.example.com",
       "user-42@mail-1.example.com", "user-42@mail-1.example.com"},
      {"NumericLabelBeforeTld", "ada@123.example.com", "ada@123.example.com",
       "ada@123.example.com"},
      {"DoubleHyphenNotALabel", "ada@r3--sn-abc.example.com",
       "ada@r3--sn-abc.example.com", "ada@r3--sn-abc.example.com"},
      {"Longest254Octets", longest, longest, longest},
      {"LocalPart64", local64, local64, local64},
      {"DomainLabel63", label63, label63, label63},
      // Internationalized domains: one A-label form, whatever was written.
      {"ALabel", "ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example",
       "ada@xn--bcher-kva.example"},
      {"ALabelUpperCase", "ada@XN--BCHER-KVA.example",
       "ada@XN--BCHER-KVA.example", "ada@xn--bcher-kva.example"},
      {"ULabel",
       "ada@b\xC3\xBC"
       "cher.example",
       "ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"},
      {"ULabelUpperCase",
       "Ada@B\xC3\x9C"
       "CHER.Example",
       "Ada@xn--bcher-kva.Example", "ada@xn--bcher-kva.example"},
      {"ULabelDecomposed",
       "ada@bu\xCC\x88"
       "cher.example",
       "ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"},
      {"IdeographicFullStop",
       "ada@b\xC3\xBC"
       "cher\xE3\x80\x82"
       "example",
       "ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"},
      {"EszettKept",
       "ada@stra\xC3\x9F"
       "e.de",
       "ada@xn--strae-oqa.de", "ada@xn--strae-oqa.de"},
      {"AllCyrillic",
       "ada@\xD0\xBF\xD1\x80\xD0\xB8\xD0\xBC\xD0\xB5\xD1\x80.\xD1\x80\xD1\x84",
       "ada@xn--e1afmkfd.xn--p1ai", "ada@xn--e1afmkfd.xn--p1ai"},
      {"Japanese", "ada@\xE4\xBE\x8B\xE3\x81\x88.jp", "ada@xn--r8jz45g.jp",
       "ada@xn--r8jz45g.jp"},
      // Full-width Latin letters are the same domain as the ASCII ones.
      {"FullWidthLetters",
       "ada@\xEF\xBD\x85\xEF\xBD\x98\xEF\xBD\x81\xEF\xBD\x8D\xEF\xBD\x90\xEF"
       "\xBD\x8C\xEF\xBD\x85.com",
       "ada@example.com", "ada@example.com"},
  };
}

class AcceptedAddressTest : public ::testing::TestWithParam<Accepted> {};

TEST_P(AcceptedAddressTest, GivesTheWireFormAndTheKey) {
  const absl::StatusOr<Recipient> parsed =
      ParseRecipientAddress(GetParam().input);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->mailbox, GetParam().mailbox);
  EXPECT_EQ(parsed->key, GetParam().key);

  const absl::StatusOr<std::string> key = ParseRecipient(GetParam().input);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, GetParam().key);
}

TEST_P(AcceptedAddressTest, ParsingTheResultChangesNothing) {
  const absl::StatusOr<Recipient> parsed =
      ParseRecipientAddress(GetParam().input);
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  const absl::StatusOr<Recipient> again = ParseRecipientAddress(parsed->key);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->mailbox, parsed->key);
  EXPECT_EQ(again->key, parsed->key);

  const absl::StatusOr<std::string> mailbox = ParseRecipient(parsed->mailbox);
  ASSERT_TRUE(mailbox.ok()) << mailbox.status();
  EXPECT_EQ(*mailbox, parsed->key);
}

INSTANTIATE_TEST_SUITE_P(Addresses, AcceptedAddressTest,
                         ::testing::ValuesIn(AcceptedAddresses()),
                         CaseName<Accepted>);

TEST(ParseRecipientTest, EveryFormOfAnIdnIsOneRecipient) {
  const std::vector<std::string> forms = {"ada@xn--bcher-kva.example",
                                          "ADA@XN--BCHER-KVA.EXAMPLE",
                                          "ada@b\xC3\xBC"
                                          "cher.example",
                                          "Ada@B\xC3\x9C"
                                          "CHER.example",
                                          "ada@bu\xCC\x88"
                                          "cher.example",
                                          "ada@b\xC3\xBC"
                                          "cher\xEF\xBC\x8E"
                                          "example"};
  for (const std::string& form : forms) {
    const absl::StatusOr<std::string> key = ParseRecipient(form);
    ASSERT_TRUE(key.ok()) << absl::CHexEscape(form) << ": " << key.status();
    EXPECT_EQ(*key, "ada@xn--bcher-kva.example") << absl::CHexEscape(form);
  }
}

// ---------------------------------------------------------------------------
// Refused addresses, each with the words its reason must hold.

struct Refused {
  std::string name;
  std::string input;
  std::string reason;
};

void PrintTo(const Refused& r, std::ostream* os) {
  *os << r.name << " \"" << absl::CHexEscape(r.input) << "\"";
}

constexpr char kBare[] = "must be a bare address";
constexpr char kControl[] = "control characters";
constexpr char kSmtpUtf8[] = "(SMTPUTF8) are not supported";
constexpr char kIdnaRefuses[] = "IDNA2008 does not allow";

std::vector<Refused> RefusedAddresses() {
  return {
      // Size.
      {"Empty", "", "required"},
      {"TooLong255", LongestAddress() + "d", "longer than 254 octets; got 255"},
      {"Huge", std::string(100000, 'a') + "@example.com",
       "longer than 254 octets"},
      {"TooLongInAsciiForm", LongOnlyInAsciiForm(),
       "longer than 254 octets in its ASCII (xn--) form; got 256"},
      {"LocalPart65", std::string(65, 'a') + "@example.com",
       "the local part is longer than 64 octets; got 65"},
      {"DomainLabel64", "ada@" + std::string(64, 'a') + ".com",
       "is longer than 63 octets; got 64"},
      {"Domain257",
       "a@" + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
           std::string(63, 'd') + "." + std::string(63, 'e') + ".f",
       "the domain is longer than 255 octets; got 257"},
      {"ULabelTooLong", "ada@" + std::string(60, 'd') + "\xC3\xBC.example",
       "longer than 63 octets in its ASCII (xn--) form"},
      // Control characters and header injection.
      {"CR", "ada@example.com\r", kControl},
      {"LF", "ada@exam\nple.com", kControl},
      {"HeaderInjection", "a@b.com\r\nBcc: x@y.com", kControl},
      {"NulInLocalPart", "ada\0@example.com"s, kControl},
      {"NulThenSecondAddress", "ada@example.com\0evil@attacker.test"s,
       kControl},
      {"Tab", "ada\t@example.com", kControl},
      {"Del", "ada\x7f@example.com", kControl},
      // Display names, quotes, comments, lists.
      {"DisplayName", "Ada <ada@example.com>", kBare},
      {"AngleBrackets", "<ada@example.com>", kBare},
      {"QuotedLocalPart", "\"ada\"@example.com", kBare},
      {"QuotedAt", "\"a@b\"@example.com", kBare},
      {"Comment", "ada(comment)@example.com", kBare},
      {"TwoAddresses", "ada@example.com, bob@example.com", kBare},
      {"TwoAddressesNoSpace", "ada@example.com,bob@example.com", kBare},
      {"Semicolon", "ada@example.com;bob@example.com", kBare},
      {"Group", "team:ada@example.com;", kBare},
      {"Backslash", "a\\@b@example.com", kBare},
      {"Space", "ada @example.com", kBare},
      // '@'.
      {"NoAt", "ada.example.com", "must contain '@'"},
      {"TwoAts", "ada@b@example.com", "exactly one '@'"},
      {"NothingBeforeAt", "@example.com", "the local part (before '@') is"},
      {"NothingAfterAt", "ada@", "has no domain after '@'"},
      // The local part.
      {"LeadingDot", ".ada@example.com", "may not start or end with '.'"},
      {"TrailingDot", "ada.@example.com", "may not start or end with '.'"},
      {"DoubleDot", "ad..a@example.com", "or hold '..'"},
      {"NonAsciiLocalPart", "ad\xC3\xA1@example.com", kSmtpUtf8},
      {"CyrillicLetterInLocalPart",
       "\xD0\xB0"
       "da@example.com",
       kSmtpUtf8},
      {"InvalidUtf8InLocalPart", "ad\xC3@example.com", kSmtpUtf8},
      {"FullWidthAt",
       "ada\xEF\xBC\xA0"
       "example.com",
       "must contain '@'"},
      // IP addresses.
      {"Ipv4Literal", "ada@[192.0.2.1]", "IP address literals"},
      {"Ipv6Literal", "ada@[IPv6:2001:db8::1]", "IP address literals"},
      {"BareIpv4", "ada@192.0.2.1", "IP addresses are not accepted"},
      // Domain syntax.
      {"SingleLabel", "ada@localhost", "at least two labels"},
      {"NumericTld", "ada@example.123", "top-level domain"},
      {"LabelLeadingHyphen", "ada@-example.com", "starts or ends with '-'"},
      {"LabelTrailingHyphen", "ada@example-.com", "starts or ends with '-'"},
      {"DomainLeadingDot", "ada@.example.com", "empty label"},
      {"DomainTrailingDot", "ada@example.com.", "empty label"},
      {"DomainDoubleDot", "ada@example..com", "empty label"},
      {"Underscore", "ada@ex_ample.com", "only letters, digits, '-' and '.'"},
      {"Percent", "ada@ex%41mple.com", "only letters, digits, '-' and '.'"},
      {"SqlQuote", "ada@example.com'--", "only letters, digits"},
      // Internationalized domains that IDNA2008 refuses.
      {"BogusALabel", "ada@xn--zz.example", "not a valid A-label"},
      {"EmojiALabel", "ada@xn--ls8h.la", kIdnaRefuses},
      {"Emoji", "ada@\xF0\x9F\x92\xA9.la", kIdnaRefuses},
      {"OneDotLeader",
       "ada@example\xE2\x80\xA4"
       "com",
       kIdnaRefuses},
      {"RightToLeftOverride", "ada@exa\xE2\x80\xAEmple.com", kIdnaRefuses},
      {"NextLine", "ada@exa\xC2\x85mple.com", kIdnaRefuses},
      {"LineSeparator", "ada@exa\xE2\x80\xA8mple.com", kIdnaRefuses},
      {"ZeroWidthJoiner", "ada@exa\xE2\x80\x8Dmple.com", "joiner"},
      {"FullWidthAtInDomain", "ada@exa\xEF\xBC\xA0mple.com",
       "only letters, digits, '-' and '.'"},
      {"InvalidUtf8InDomain", "ada@b\xC3.example", "not valid UTF-8"},
      {"OverlongDotInDomain",
       "ada@example\xC0\xAE"
       "com",
       "not valid UTF-8"},
      {"SurrogateInDomain", "ada@b\xED\xA0\x80.example", "not valid UTF-8"},
      // Look-alikes.
      {"CyrillicAInLatinLabel", "ada@ex\xD0\xB0mple.com",
       "mixes Latin and Cyrillic letters"},
      {"GreekOmicronInLatinLabel", "ada@go\xCE\xBFgle.com",
       "mixes Latin and Greek letters"},
      {"MixedScriptALabel", "ada@xn--exmple-4nf.com",
       "mixes Latin and Cyrillic letters"},
  };
}

class RefusedAddressTest : public ::testing::TestWithParam<Refused> {};

TEST_P(RefusedAddressTest, SaysWhyInWordsSafeToLog) {
  const absl::StatusOr<Recipient> parsed =
      ParseRecipientAddress(GetParam().input);
  ASSERT_FALSE(parsed.ok()) << "accepted as " << parsed->mailbox;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()),
              HasSubstr(GetParam().reason));
  EXPECT_TRUE(IsSafeToLog(parsed.status().message()))
      << absl::CHexEscape(parsed.status().message());
  EXPECT_LT(parsed.status().message().size(), 200u)
      << "quotes too much of the input";

  EXPECT_EQ(ParseRecipient(GetParam().input).status(), parsed.status());
}

INSTANTIATE_TEST_SUITE_P(Addresses, RefusedAddressTest,
                         ::testing::ValuesIn(RefusedAddresses()),
                         CaseName<Refused>);

}  // namespace
}  // namespace authcode
