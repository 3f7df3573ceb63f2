#include "server/wire_check.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "authcode/v1/authcode.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/type.pb.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

using std::string_literals::operator""s;  // "..."s keeps embedded NULs.

using google::protobuf::Descriptor;
using v1::GetDeliveryRequest;
using v1::IssueCodeRequest;
using v1::VerifyCodeRequest;

// The message types the tests use: authcode's requests, and protobuf's own
// types for nesting, repeated fields and maps with message values (proto3)
// and for strings protobuf does not check (proto2).
const Descriptor& Issue() { return *IssueCodeRequest::descriptor(); }
const Descriptor& Verify() { return *VerifyCodeRequest::descriptor(); }
const Descriptor& Delivery() { return *GetDeliveryRequest::descriptor(); }
const Descriptor& StructProto() {
  return *google::protobuf::Struct::descriptor();
}
const Descriptor& ValueProto() {
  return *google::protobuf::Value::descriptor();
}
const Descriptor& TypeProto() { return *google::protobuf::Type::descriptor(); }
const Descriptor& FileProto() {
  return *google::protobuf::FileDescriptorProto::descriptor();
}

// ---------------------------------------------------------------------------
// Writing wire bytes by hand.

constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kStartGroup = 3;
constexpr int kEndGroup = 4;
constexpr int kFixed32 = 5;

std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out += static_cast<char>(0x80 | (value & 0x7f));
    value >>= 7;
  }
  out += static_cast<char>(value);
  return out;
}

std::string Tag(int number, int wire_type) {
  return Varint((static_cast<uint64_t>(number) << 3) | wire_type);
}

// A length-delimited field: a string, or a message's bytes.
std::string Field(int number, const std::string& bytes) {
  return Tag(number, kLengthDelimited) + Varint(bytes.size()) + bytes;
}

// A map entry.
std::string Entry(const std::string& key, const std::string& value) {
  return Field(1, key) + Field(2, value);
}

// ---------------------------------------------------------------------------
// Checking, and comparing with protobuf.

// Whether protobuf's own parser accepts `wire` as a `type`.
bool ProtobufParses(const Descriptor& type, const std::string& wire) {
  google::protobuf::LogSilencer quiet;  // it logs each string it refuses
  std::unique_ptr<google::protobuf::Message> message(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(&type)
          ->New());
  return message->ParsePartialFromString(wire);
}

// FindInvalidUtf8(), checking on the way the promise of wire_check.h: it
// finds nothing exactly when protobuf parses the bytes.
absl::StatusOr<std::vector<FieldViolation>> Check(const Descriptor& type,
                                                  const std::string& wire) {
  absl::StatusOr<std::vector<FieldViolation>> found =
      FindInvalidUtf8(type, wire);
  EXPECT_EQ(found.ok() && found->empty(), ProtobufParses(type, wire))
      << "disagrees with protobuf on " << absl::CHexEscape(wire);
  return found;
}

// The violations of well-formed `wire`.
std::vector<FieldViolation> Violations(const Descriptor& type,
                                       const std::string& wire) {
  absl::StatusOr<std::vector<FieldViolation>> found = Check(type, wire);
  EXPECT_TRUE(found.ok()) << found.status();
  return found.ok() ? *found : std::vector<FieldViolation>{};
}

std::vector<std::string> FieldsOf(
    const std::vector<FieldViolation>& violations) {
  std::vector<std::string> fields;
  for (const FieldViolation& v : violations) fields.push_back(v.field);
  return fields;
}

// The single violation of `wire`, or an empty one (after a failure).
FieldViolation OnlyViolation(const Descriptor& type, const std::string& wire) {
  const std::vector<FieldViolation> found = Violations(type, wire);
  EXPECT_EQ(found.size(), 1u) << ::testing::PrintToString(FieldsOf(found));
  return found.size() == 1 ? found[0] : FieldViolation{};
}

constexpr char kAtOffset2[] =
    "must be valid UTF-8; the sequence at byte offset 2 is not";

// ---------------------------------------------------------------------------
// Requests serialized by protobuf, with one field's bytes patched.

IssueCodeRequest GoodIssue() {
  IssueCodeRequest request;
  request.set_recipient("ada@example.com");
  request.set_purpose("login");
  request.set_locale("de-CH");
  (*request.mutable_template_values())["app_name"] = "Acme";
  request.set_client_ip("203.0.113.7");
  request.set_idempotency_key("f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
  return request;
}

VerifyCodeRequest GoodVerify() {
  VerifyCodeRequest request;
  request.set_recipient("ada@example.com");
  request.set_purpose("login");
  request.set_code("123456");
  return request;
}

GetDeliveryRequest GoodDelivery() {
  GetDeliveryRequest request;
  request.set_code_id("0b0e7f3c-8a59-4b5e-9b1e-3f1c2d4e5a6b");
  return request;
}

// Stands in for the bad bytes until the request is serialized: DEL
// characters, which no good field here holds.
std::string Placeholder(const std::string& bad) {
  return std::string(bad.size(), '\x7f');
}

// `serialized` with the one run of placeholder bytes for `bad` replaced
// by `bad`.
std::string Patch(std::string serialized, const std::string& bad) {
  const std::string placeholder = Placeholder(bad);
  const size_t at = serialized.find(placeholder);
  EXPECT_NE(at, std::string::npos);
  EXPECT_EQ(serialized.find(placeholder, at + 1), std::string::npos);
  return serialized.replace(at, bad.size(), bad);
}

struct PatchedField {
  std::string name;
  const Descriptor* type;
  // Serializes a good request whose field under test holds the text.
  std::function<std::string(const std::string&)> serialize;
  // The name the violation must have.
  std::string field;
};

void PrintTo(const PatchedField& c, std::ostream* os) { *os << c.name; }

// A case for the string field `field` of `good`.
PatchedField StringField(std::string name,
                         const google::protobuf::Message& good,
                         const std::string& field) {
  std::shared_ptr<google::protobuf::Message> original(good.New());
  original->CopyFrom(good);
  auto serialize = [original, field](const std::string& text) {
    std::unique_ptr<google::protobuf::Message> request(original->New());
    request->CopyFrom(*original);
    request->GetReflection()->SetString(
        request.get(), request->GetDescriptor()->FindFieldByName(field), text);
    return request->SerializeAsString();
  };
  return {std::move(name), good.GetDescriptor(), serialize, field};
}

std::vector<PatchedField> PatchedFields() {
  const IssueCodeRequest issue = GoodIssue();
  const VerifyCodeRequest verify = GoodVerify();
  return {
      StringField("Recipient", issue, "recipient"),
      StringField("Purpose", issue, "purpose"),
      StringField("Locale", issue, "locale"),
      StringField("ClientIp", issue, "client_ip"),
      StringField("IdempotencyKey", issue, "idempotency_key"),
      {"TemplateValue", &Issue(),
       [](const std::string& text) {
         IssueCodeRequest r = GoodIssue();
         (*r.mutable_template_values())["app_name"] = text;
         return r.SerializeAsString();
       },
       "template_values.app_name"},
      {"TemplateKey", &Issue(),
       [](const std::string& text) {
         IssueCodeRequest r = GoodIssue();
         (*r.mutable_template_values())[text] = "Acme";
         return r.SerializeAsString();
       },
       "template_values"},
      StringField("VerifyRecipient", verify, "recipient"),
      StringField("VerifyPurpose", verify, "purpose"),
      StringField("VerifyCode", verify, "code"),
      StringField("DeliveryCodeId", GoodDelivery(), "code_id"),
  };
}

class PatchedFieldTest : public ::testing::TestWithParam<PatchedField> {
 protected:
  // The request with its field holding "ab", `bad`, "cd".
  std::string WithBad(const std::string& bad) const {
    return Patch(GetParam().serialize("ab" + Placeholder(bad) + "cd"), bad);
  }
};

TEST_P(PatchedFieldTest, FindsNothingWhenTheFieldIsGood) {
  const std::string wire = GetParam().serialize(
      "ab\xC3\xBC"
      "cd");
  EXPECT_TRUE(ProtobufParses(*GetParam().type, wire));
  EXPECT_TRUE(Violations(*GetParam().type, wire).empty());
}

TEST_P(PatchedFieldTest, NamesTheFieldWithBadUtf8) {
  const FieldViolation found =
      OnlyViolation(*GetParam().type, WithBad("\xC0\x80"));
  EXPECT_EQ(found.field, GetParam().field);
  if (GetParam().field == "template_values") {
    EXPECT_EQ(found.description,
              "keys must be valid UTF-8; the sequence at byte offset 2 of "
              "one is not");
  } else {
    EXPECT_EQ(found.description, kAtOffset2);
  }
}

// The gap this check closes is real: protobuf refuses the very bytes.
TEST_P(PatchedFieldTest, ProtobufItselfRefusesTheBytes) {
  const std::string good = GetParam().serialize(
      "ab\xC3\xBC"
      "cd");
  const std::string bad = WithBad("\xED\xA0\x80");
  std::unique_ptr<google::protobuf::Message> request(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(GetParam().type)
          ->New());
  google::protobuf::LogSilencer quiet;
  EXPECT_TRUE(request->ParseFromString(good));
  EXPECT_FALSE(request->ParseFromString(bad));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, PatchedFieldTest, ::testing::ValuesIn(PatchedFields()),
    [](const ::testing::TestParamInfo<PatchedField>& param) {
      return param.param.name;
    });

// ---------------------------------------------------------------------------
// What is and is not UTF-8.

struct Sequence {
  std::string name;
  std::string bytes;
};

void PrintTo(const Sequence& s, std::ostream* os) { *os << s.name; }

std::string SequenceName(const ::testing::TestParamInfo<Sequence>& info) {
  return info.param.name;
}

class IllFormedTest : public ::testing::TestWithParam<Sequence> {};

// Each is put between "ab" and "cd" in the recipient.
TEST_P(IllFormedTest, IsFoundWhereItStarts) {
  IssueCodeRequest request = GoodIssue();
  request.set_recipient("ab" + Placeholder(GetParam().bytes) + "cd");
  const std::string wire = Patch(request.SerializeAsString(), GetParam().bytes);
  const FieldViolation found = OnlyViolation(Issue(), wire);
  EXPECT_EQ(found.field, "recipient");
  EXPECT_EQ(found.description, kAtOffset2);
  EXPECT_FALSE(ProtobufParses(Issue(), wire));
}

INSTANTIATE_TEST_SUITE_P(
    Sequences, IllFormedTest,
    ::testing::Values(Sequence{"OverlongTwoBytes", "\xC0\x80"},
                      Sequence{"OverlongC1", "\xC1\xBF"},
                      Sequence{"OverlongThreeBytes", "\xE0\x80\x80"},
                      Sequence{"OverlongThreeBytesHighest", "\xE0\x9F\xBF"},
                      Sequence{"OverlongFourBytes", "\xF0\x80\x80\x80"},
                      Sequence{"OverlongFourBytesHighest", "\xF0\x8F\xBF\xBF"},
                      Sequence{"HighSurrogate", "\xED\xA0\x80"},
                      Sequence{"LowSurrogate", "\xED\xBF\xBF"},
                      Sequence{"SurrogatePair", "\xED\xA0\xBD\xED\xB8\x80"},
                      Sequence{"PastMaxCodePoint", "\xF4\x90\x80\x80"},
                      Sequence{"LeadF5", "\xF5\x80\x80\x80"},
                      Sequence{"LeadFF", "\xFF"}, Sequence{"LeadFE", "\xFE"},
                      Sequence{"TruncatedTwoBytes", "\xC3"},
                      Sequence{"TruncatedThreeBytes", "\xE6\x97"},
                      Sequence{"TruncatedFourBytes", "\xF0\x9F\x98"},
                      Sequence{"LoneContinuation", "\x80"},
                      Sequence{"LoneContinuationBF", "\xBF"},

                      Sequence{"LeadThenAscii",
                               "\xC3"
                               "A"}),
    SequenceName);

class WellFormedTest : public ::testing::TestWithParam<Sequence> {};

TEST_P(WellFormedTest, PassesInEveryField) {
  IssueCodeRequest request = GoodIssue();
  const std::string text = "a" + GetParam().bytes + "z";
  request.set_recipient(text);
  request.set_purpose(text);
  (*request.mutable_template_values())[text] = text;
  (*request.mutable_template_values())["app_name"] = text;
  const std::string wire = request.SerializeAsString();
  EXPECT_TRUE(ProtobufParses(Issue(), wire));
  EXPECT_TRUE(Violations(Issue(), wire).empty());
}

INSTANTIATE_TEST_SUITE_P(
    Sequences, WellFormedTest,
    ::testing::Values(
        Sequence{"Ascii", "hello"}, Sequence{"Nul", "\0"s},
        Sequence{"UUmlaut", "\xC3\xBC"},
        Sequence{"Japanese", "\xE6\x97\xA5\xE6\x9C\xAC"},
        Sequence{"Emoji", "\xF0\x9F\x98\x80"}, Sequence{"U0080", "\xC2\x80"},
        Sequence{"U07FF", "\xDF\xBF"}, Sequence{"U0800", "\xE0\xA0\x80"},
        Sequence{"UD7FF", "\xED\x9F\xBF"}, Sequence{"UE000", "\xEE\x80\x80"},
        Sequence{"UFFFF", "\xEF\xBF\xBF"},
        Sequence{"U10000", "\xF0\x90\x80\x80"},
        Sequence{"U10FFFF", "\xF4\x8F\xBF\xBF"}),
    SequenceName);

// Our validator against protobuf's, on every string of one or two bytes,
// every three-byte one with a three-byte lead (E0-EF), and four-byte ones
// with every lead from F0 and every second byte, the rest at the edges of
// the continuation range.
TEST(FindInvalidUtf8Test, AgreesWithProtobufOnShortSequences) {
  std::vector<std::string> strings;
  for (int a = 0; a < 256; ++a) {
    strings.push_back(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b) {
      strings.push_back({static_cast<char>(a), static_cast<char>(b)});
    }
  }
  for (int a = 0xE0; a <= 0xEF; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        strings.push_back(
            {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
      }
    }
  }
  const int kEdges[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
  for (int a = 0xF0; a <= 0xFF; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c : kEdges) {
        for (int d : kEdges) {
          strings.push_back({static_cast<char>(a), static_cast<char>(b),
                             static_cast<char>(c), static_cast<char>(d)});
        }
      }
    }
  }

  int disagreements = 0;
  for (const std::string& s : strings) {
    const std::string wire = Field(1, s);
    absl::StatusOr<std::vector<FieldViolation>> found =
        FindInvalidUtf8(Delivery(), wire);
    ASSERT_TRUE(found.ok());
    if (found->empty() != ProtobufParses(Delivery(), wire) &&
        ++disagreements <= 10) {
      ADD_FAILURE() << "disagrees with protobuf on " << absl::CHexEscape(s);
    }
  }
  EXPECT_EQ(disagreements, 0);
}

TEST(FindInvalidUtf8Test, CountsTheOffsetInBytes) {
  // "a", then U+00FC in two bytes, then an overlong NUL at byte 3.
  const FieldViolation found =
      OnlyViolation(Issue(), Field(1, "a\xC3\xBC\xC0\x80"));
  EXPECT_EQ(found.description,
            "must be valid UTF-8; the sequence at byte offset 3 is not");
}

TEST(FindInvalidUtf8Test, FindsASequenceCutShortByTheEndOfTheString) {
  const FieldViolation found = OnlyViolation(Issue(), Field(2, "abc\xE6\x97"));
  EXPECT_EQ(found.field, "purpose");
  EXPECT_EQ(found.description,
            "must be valid UTF-8; the sequence at byte offset 3 is not");
}

TEST(FindInvalidUtf8Test, DescriptionsQuoteNoneOfTheInput) {
  IssueCodeRequest request;
  request.set_recipient(Placeholder("\xFF\r\n\0"s));
  const std::string wire = Patch(request.SerializeAsString(), "\xFF\r\n\0"s) +
                           Field(4, Entry("k\r\n\xFF", "v")) +
                           Field(4, Entry("\r\n", "\xFF"));
  const std::vector<FieldViolation> found = Violations(Issue(), wire);
  ASSERT_EQ(FieldsOf(found),
            (std::vector<std::string>{"recipient", "template_values"}));
  for (const FieldViolation& v : found) {
    for (char c : v.description) {
      EXPECT_TRUE(c >= ' ' && c < 0x7f) << v.description;
    }
  }
}

// ---------------------------------------------------------------------------
// Several bad fields.

TEST(FindInvalidUtf8Test, FindsNothingInGoodRequests) {
  EXPECT_TRUE(Violations(Issue(), GoodIssue().SerializeAsString()).empty());
  EXPECT_TRUE(Violations(Verify(), GoodVerify().SerializeAsString()).empty());
  EXPECT_TRUE(
      Violations(Delivery(), GoodDelivery().SerializeAsString()).empty());
  EXPECT_TRUE(Violations(Issue(), "").empty());
}

TEST(FindInvalidUtf8Test, ReportsEachBadFieldOnceInWireOrder) {
  const std::string bad = "x\xC0\x80";
  const std::string wire = Field(1, bad) + Field(2, "login") + Field(3, bad) +
                           Field(4, Entry("app_name", bad)) + Field(5, bad) +
                           Field(6, bad) + Field(1, bad) + Field(2, bad);
  EXPECT_EQ(FieldsOf(Violations(Issue(), wire)),
            (std::vector<std::string>{"recipient", "locale",
                                      "template_values.app_name", "client_ip",
                                      "idempotency_key", "purpose"}));
}

// protobuf checks every copy of a field, not only the last, which wins.
TEST(FindInvalidUtf8Test, FindsABadCopyOfAFieldSentAgainGood) {
  const std::string wire = Field(1, "\xFF") + Field(1, "ada@example.com");
  EXPECT_EQ(OnlyViolation(Issue(), wire).field, "recipient");
}

TEST(FindInvalidUtf8Test, StopsAtTheLimit) {
  std::string wire;
  for (int i = 0; i < 30; ++i) {
    wire += Field(4, Entry(absl::StrCat("key", i), "\xFF"));
  }
  const std::vector<FieldViolation> found = Violations(Issue(), wire);
  ASSERT_EQ(found.size(), kMaxUtf8Violations);
  EXPECT_EQ(found.front().field, "template_values.key0");
  EXPECT_EQ(found.back().field, "template_values.key19");
}

// ---------------------------------------------------------------------------
// Map entries.

TEST(FindInvalidUtf8Test, NamesAValueByItsKeyWhereverTheKeyIs) {
  EXPECT_EQ(
      OnlyViolation(Issue(), Field(4, Field(2, "\xFF") + Field(1, "app_name")))
          .field,
      "template_values.app_name");
  EXPECT_EQ(OnlyViolation(Issue(), Field(4, Entry("app-Name_2", "\xFF"))).field,
            "template_values.app-Name_2");
}

TEST(FindInvalidUtf8Test, NamesAValueByTheMapWhenItsKeyCannotBeShown) {
  for (const std::string& key : {""s, "a.b"s, "a b"s, "a[0]"s, "\xC3\xBC"s,
                                 "a\0b"s, "\"x\""s, std::string(65, 'k')}) {
    const FieldViolation found =
        OnlyViolation(Issue(), Field(4, Entry(key, "ok\xFF")));
    EXPECT_EQ(found.field, "template_values") << absl::CHexEscape(key);
    EXPECT_EQ(found.description,
              "values must be valid UTF-8; the sequence at byte offset 2 of "
              "one is not");
  }
  EXPECT_EQ(OnlyViolation(Issue(), Field(4, Field(2, "\xFF"))).field,
            "template_values");
  EXPECT_EQ(
      OnlyViolation(Issue(), Field(4, Entry(std::string(64, 'k'), "\xFF")))
          .field,
      "template_values." + std::string(64, 'k'));
}

TEST(FindInvalidUtf8Test, ReportsABadKeyAndItsValueOnce) {
  const FieldViolation found =
      OnlyViolation(Issue(), Field(4, Entry("\xFF", "\xFF")));
  EXPECT_EQ(found.field, "template_values");
  EXPECT_TRUE(absl::StartsWith(found.description, "keys must"))
      << found.description;
}

TEST(FindInvalidUtf8Test, ReportsEachBadValueOfAMap) {
  const std::string wire = Field(4, Entry("app_name", "\xFF")) +
                           Field(4, Entry("first_name", "ok")) +
                           Field(4, Entry("last_name", "\xC0\x80"));
  EXPECT_EQ(FieldsOf(Violations(Issue(), wire)),
            (std::vector<std::string>{"template_values.app_name",
                                      "template_values.last_name"}));
}

// ---------------------------------------------------------------------------
// Nested, repeated and map-valued messages, on protobuf's own proto3 types:
//   Struct { map<string, Value> fields = 1; }
//   Value { string string_value = 3; Struct struct_value = 5;
//           ListValue list_value = 6; }
//   ListValue { repeated Value values = 1; }
//   Type { repeated Field fields = 2; repeated string oneofs = 3;
//          SourceContext source_context = 5; }
//   Field { string name = 4; }  SourceContext { string file_name = 1; }

TEST(FindInvalidUtf8Test, NamesNestedFields) {
  EXPECT_EQ(OnlyViolation(TypeProto(), Field(5, Field(1, "\xFF"))).field,
            "source_context.file_name");
  EXPECT_EQ(OnlyViolation(StructProto(),
                          Field(1, Entry("greeting", Field(3, "\xFF"))))
                .field,
            "fields.greeting.string_value");
}

TEST(FindInvalidUtf8Test, NamesElementsOfRepeatedFieldsByIndex) {
  EXPECT_EQ(OnlyViolation(TypeProto(), Field(3, "a") + Field(2, "") +
                                           Field(3, "b") + Field(3, "\xFF"))
                .field,
            "oneofs[2]");
  EXPECT_EQ(OnlyViolation(TypeProto(),
                          Field(2, Field(4, "ok")) + Field(2, Field(4, "\xFF")))
                .field,
            "fields[1].name");
}

TEST(FindInvalidUtf8Test, NamesFieldsDeepInMapsAndLists) {
  const std::string list =
      Field(1, Field(3, "ok")) + Field(1, Field(3, "\xC0\x80"));
  const std::string inner = Field(1, Entry("b", Field(6, list)));
  const std::string wire = Field(1, Entry("a", Field(5, inner)));
  EXPECT_EQ(OnlyViolation(StructProto(), wire).field,
            "fields.a.struct_value.fields.b.list_value.values[1].string_value");
}

TEST(FindInvalidUtf8Test, NamesAnythingInAValueWithAHiddenKeyByTheMap) {
  const std::string inner = Field(1, Entry("b", Field(3, "\xFF")));
  const std::string wire = Field(1, Entry("a.b", Field(5, inner)));
  const FieldViolation found = OnlyViolation(StructProto(), wire);
  EXPECT_EQ(found.field, "fields");
  EXPECT_TRUE(absl::StartsWith(found.description, "values must"));
}

// proto2 strings are not checked by protobuf, so not here either.
TEST(FindInvalidUtf8Test, LeavesProto2StringsAlone) {
  const std::string wire = Field(1, "\xFF") + Field(2, "\xC0\x80");
  EXPECT_TRUE(ProtobufParses(FileProto(), wire));
  EXPECT_TRUE(Violations(FileProto(), wire).empty());
}

// ---------------------------------------------------------------------------
// Fields the descriptor does not know, or that come with another wire type.

TEST(FindInvalidUtf8Test, SkipsUnknownFields) {
  const std::string wire =
      GoodIssue().SerializeAsString() + Field(99, "\xFF\xC0\x80") +
      Tag(100, kVarint) + Varint(UINT64_MAX) + Tag(101, kFixed32) +
      "\xFF\xFF\xFF\xFF" + Tag(102, kFixed64) + std::string(8, '\xFF') +
      Tag(103, kStartGroup) + Field(1, "\xFF") + Tag(7, kStartGroup) +
      Tag(7, kEndGroup) + Tag(103, kEndGroup) +
      Field(4, Entry("app_name", "ok") + Field(3, "\xFF"));
  EXPECT_TRUE(ProtobufParses(Issue(), wire));
  EXPECT_TRUE(Violations(Issue(), wire).empty());
}

TEST(FindInvalidUtf8Test, SkipsAKnownFieldSentWithAnotherWireType) {
  // recipient as a varint, purpose as a group holding bad bytes.
  const std::string wire = Tag(1, kVarint) + Varint(7) + Tag(2, kStartGroup) +
                           Field(1, "\xFF") + Tag(2, kEndGroup);
  EXPECT_TRUE(ProtobufParses(Issue(), wire));
  EXPECT_TRUE(Violations(Issue(), wire).empty());
}

TEST(FindInvalidUtf8Test, ReadsTagsAndLengthsAsLongAsProtobufDoes) {
  // A five-byte tag for field 1; a five-byte length of 1.
  const std::string wire = "\x8A\x80\x80\x80\x00"s + "\x81\x80\x80\x80\x00"s +
                           "\xFF" + Tag(9, kVarint) +
                           "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x7F";
  EXPECT_EQ(OnlyViolation(Issue(), wire).field, "recipient");
}

// ---------------------------------------------------------------------------
// Bytes that are no message at all.

TEST(FindInvalidUtf8Test, RefusesWhatProtobufRefuses) {
  const std::string in_a_map_entry = Tag(1, kLengthDelimited) +
                                     "\x05"
                                     "ab";

  const std::vector<std::string> malformed = {
      "\x80"s,                             // tag cut short
      "\x8A\x80\x80\x80\x80\x00"s,         // six-byte tag
      "\x00"s,                             // tag 0
      Tag(0, kLengthDelimited) + "\x00"s,  // field number 0
      Tag(9, 6),
      Tag(9, 7),                                           // no such wire type
      Tag(9, kVarint) + "\x80",                            // varint cut short
      Tag(9, kVarint) + std::string(10, '\x80') + "\x01",  // 11-byte varint
      Tag(9, kFixed32) + "abc",                            // fixed32 cut short
      Tag(9, kFixed64) + "abcdefg",                        // fixed64 cut short
      Tag(1, kLengthDelimited) +
          "\x05"
          "ab",  // length past the end
      Tag(99, kLengthDelimited) +
          "\x05"
          "ab",  // the same, unknown
      Tag(1, kLengthDelimited) + "\x81\x80\x80\x80\x80\x00"s,  // 6-byte length
      Tag(1, kLengthDelimited) + "\xFF\xFF\xFF\xFF\x07",  // length of 2 GiB
      Field(4, in_a_map_entry) + "cdefgh",      // past the entry's end
      Field(4, "\x00"s),                        // tag 0 in an entry
      Field(4, Tag(1, kEndGroup)),              // end group in an entry
      Tag(9, kEndGroup),                        // end of no group
      Tag(9, kStartGroup),                      // group not closed
      Tag(9, kStartGroup) + Tag(8, kEndGroup),  // closed by another
      Tag(9, kStartGroup) + "\x00"s + Tag(9, kEndGroup),  // tag 0 in a group
  };
  for (const std::string& wire : malformed) {
    absl::StatusOr<std::vector<FieldViolation>> found = Check(Issue(), wire);
    ASSERT_FALSE(found.ok()) << absl::CHexEscape(wire);
    EXPECT_EQ(found.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(
        absl::StartsWith(found.status().message(),
                         "not a valid authcode.v1.IssueCodeRequest message: "))
        << found.status();
  }
}

// protobuf allows 100 levels of nested messages and groups, not 101.
TEST(FindInvalidUtf8Test, RefusesNestingDeeperThanProtobufAllows) {
  for (int levels : {100, 101}) {
    std::string groups;
    for (int i = 0; i < levels; ++i) groups += Tag(9, kStartGroup);
    for (int i = 0; i < levels; ++i) groups += Tag(9, kEndGroup);
    EXPECT_EQ(Check(Issue(), groups).ok(), levels == 100) << levels;
  }
  // Each level of Value -> Struct -> map entry -> Value is three messages.
  for (int levels : {33, 34}) {
    std::string value = Field(3, "deep");
    for (int i = 0; i < levels; ++i) {
      value = Field(5, Field(1, Entry("k", value)));
    }
    EXPECT_EQ(Check(ValueProto(), value).ok(), levels == 33) << levels;
  }
}

TEST(FindInvalidUtf8Test, ReadsPackedNumbersAsProtobufDoes) {
  // FileDescriptorProto.public_dependency = 10 is a repeated int32.
  EXPECT_TRUE(Violations(FileProto(), Field(10, "\x01\x96\x01")).empty());
  EXPECT_FALSE(Check(FileProto(), Field(10, "\x01\x96")).ok());
  // SourceCodeInfo.Location.path = 1 is packed, inside source_code_info = 9.
  EXPECT_TRUE(
      Violations(FileProto(), Field(9, Field(1, Field(1, "\x02")))).empty());
  EXPECT_FALSE(Check(FileProto(), Field(9, Field(1, Field(1, "\x80")))).ok());
}

}  // namespace
}  // namespace authcode
