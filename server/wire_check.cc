#include "server/wire_check.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "server/status_macros.h"

namespace authcode {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

// Wire types, numbered as the protobuf encoding defines them.
enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

uint32_t MakeTag(uint32_t number, WireType wire_type) {
  return (number << 3) | wire_type;
}

// protobuf's parser reads at most this many bytes of a tag (dropping the
// bits past 32), of a varint, and of a length.
constexpr int kMaxTagBytes = 5;
constexpr int kMaxVarintBytes = 10;
constexpr int kMaxLengthBytes = 5;

// It refuses lengths this close to INT_MAX (its pointer arithmetic runs up
// to 16 bytes past a limit).
constexpr uint64_t kMaxLength = INT_MAX - 16;

// A map entry's fields.
constexpr int kMapKeyNumber = 1;

// Keys longer than this are not shown in a field name.
constexpr size_t kMaxShownKey = 64;

// ---------------------------------------------------------------------------
// UTF-8.
//
// Strict UTF-8 as RFC 3629 and Unicode's table of well-formed byte
// sequences (Table 3-7) define it: no overlong forms, no surrogates
// (U+D800-U+DFFF), nothing past U+10FFFF. That is exactly what protobuf
// accepts: the tests compare the two on every string of one or two bytes,
// every three-byte one with a three-byte lead, and four-byte ones at the
// edges, and the fuzzer on whatever it finds. The validator is our own
// because a violation names the offset where the bad sequence starts:
// protobuf's validator is internal API and answers only yes or no, ICU's
// U8_NEXT would tell but ICU is not otherwise a dependency, and this takes
// twenty lines.

// The length of the well-formed sequence `s` starts with (`s` is not
// empty), or 0 when it starts with none.
size_t SequenceLength(absl::string_view s) {
  const auto at = [s](size_t i) -> unsigned {
    return i < s.size() ? static_cast<unsigned char>(s[i]) : 0;
  };
  const unsigned lead = at(0);
  if (lead < 0x80) return 1;

  // The range of the second byte; the others are any continuation byte.
  unsigned low = 0x80;
  unsigned high = 0xbf;
  size_t length;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong
    if (lead == 0xed) high = 0x9f;  // surrogate
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong
    if (lead == 0xf4) high = 0x8f;  // past U+10FFFF
  } else {
    return 0;  // a continuation byte, C0 or C1 (overlong), or F5-FF
  }

  if (at(1) < low || at(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if ((at(i) & 0xc0) != 0x80) return 0;
  }
  return length;
}

// Where the first ill-formed sequence of `s` starts, if it has one.
std::optional<size_t> FirstInvalidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t length = SequenceLength(s.substr(i));
    if (length == 0) return i;
    i += length;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Reading the wire format.

// A cursor over wire-format bytes that accepts what protobuf's parser
// (ParseContext, protobuf 3.21) accepts and nothing else: the byte limits
// above, and nothing may run past the end of the message holding it.
class WireReader {
 public:
  explicit WireReader(absl::string_view wire)
      : wire_(wire), end_(wire.size()) {}

  size_t position() const { return pos_; }
  bool AtEnd() const { return pos_ == end_; }

  bool ReadTag(uint32_t& tag) {
    uint64_t value;
    if (!ReadVarint(kMaxTagBytes, value)) return false;
    tag = static_cast<uint32_t>(value);
    return true;
  }

  // A length, which must fit in what is left of the current message.
  bool ReadLength(size_t& length) {
    uint64_t value;
    if (!ReadVarint(kMaxLengthBytes, value) || value > kMaxLength ||
        value > end_ - pos_) {
      return false;
    }
    length = static_cast<size_t>(value);
    return true;
  }

  // The next `length` bytes (at most what ReadLength allowed), consumed or
  // not.
  absl::string_view Peek(size_t length) const {
    return wire_.substr(pos_, length);
  }
  absl::string_view Take(size_t length) {
    const absl::string_view taken = Peek(length);
    pos_ += length;
    return taken;
  }

  // Skips a value of any wire type but the two group ones.
  bool SkipValue(uint32_t wire_type) {
    uint64_t ignored;
    size_t length;
    switch (wire_type) {
      case kVarint:
        return ReadVarint(kMaxVarintBytes, ignored);
      case kFixed64:
        return Skip(8);
      case kLengthDelimited:
        return ReadLength(length) && Skip(length);
      case kFixed32:
        return Skip(4);
      default:
        return false;
    }
  }

  // Skips the payload of a packed repeated field: values `width` bytes
  // wide (4 or 8), or varints when `width` is 0, which must fill it.
  bool SkipPacked(size_t width) {
    size_t length;
    if (!ReadLength(length)) return false;
    if (width != 0) return length % width == 0 && Skip(length);

    const size_t outer_end = PushLimit(length);
    uint64_t ignored;
    while (!AtEnd()) {
      if (!ReadVarint(kMaxVarintBytes, ignored)) return false;
    }
    PopLimit(outer_end);
    return true;
  }

  // Makes the next `length` bytes (at most what ReadLength allowed) all
  // there is to read, until PopLimit() is given what this returned.
  size_t PushLimit(size_t length) {
    const size_t outer_end = end_;
    end_ = pos_ + length;
    return outer_end;
  }
  void PopLimit(size_t outer_end) { end_ = outer_end; }

 private:
  bool ReadVarint(int max_bytes, uint64_t& value) {
    value = 0;
    for (int i = 0; i < max_bytes && pos_ < end_; ++i) {
      const auto byte = static_cast<unsigned char>(wire_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool Skip(size_t length) {
    if (length > end_ - pos_) return false;
    pos_ += length;
    return true;
  }

  absl::string_view wire_;
  size_t pos_ = 0;
  size_t end_;
};

// ---------------------------------------------------------------------------
// Naming what is found.

// Where bad strings in the message being walked are reported.
struct Scope {
  enum class Kind {
    // Under "<path>.<field>" ("<field>" at the top).
    kMessage,
    // A map entry: a bad key under `path`, the map's name; a bad value
    // under `value_path` ("<map>.<key>"), or under `path` when that is
    // empty because the key cannot be shown.
    kMapEntry,
    // Inside the value of a map entry whose key cannot be shown: all
    // under `path`, the map's name.
    kHiddenValue,
  };
  Kind kind = Kind::kMessage;
  std::string path;
  std::string value_path;
};

bool IsKeyChar(char c) {
  return absl::ascii_isalnum(c) || c == '_' || c == '-';
}

// The key of a map entry, read from the entry's bytes, when it may appear
// in a field name: 1 to 64 ASCII letters, digits, '_' or '-'. Else "".
// protobuf keeps the last key an entry holds, so this reads the last one.
std::string ShownKey(const FieldDescriptor& map, absl::string_view entry) {
  if (map.message_type()->map_key()->type() != FieldDescriptor::TYPE_STRING) {
    return "";
  }
  WireReader reader(entry);
  absl::string_view key;
  uint32_t tag;
  size_t length;
  while (!reader.AtEnd()) {
    if (!reader.ReadTag(tag)) return "";
    if (tag == MakeTag(kMapKeyNumber, kLengthDelimited)) {
      if (!reader.ReadLength(length)) return "";
      key = reader.Take(length);
    } else if (!reader.SkipValue(tag & 7)) {
      return "";  // a group, or bytes the walk will refuse anyway
    }
  }
  if (key.empty() || key.size() > kMaxShownKey ||
      !std::all_of(key.begin(), key.end(), IsKeyChar)) {
    return "";
  }
  return std::string(key);
}

// The name of `field` in the message at `path`; `index` counts the
// elements of a repeated field.
std::string FieldPath(absl::string_view path, const FieldDescriptor& field,
                      int index) {
  std::string name =
      path.empty() ? field.name() : absl::StrCat(path, ".", field.name());
  if (field.is_repeated() && !field.is_map()) {
    absl::StrAppend(&name, "[", index, "]");
  }
  return name;
}

std::string MustBeUtf8(size_t offset) {
  return absl::StrCat("must be valid UTF-8; the sequence at byte offset ",
                      offset, " is not");
}

// For a violation reported under a map's name: `what` is "keys" or
// "values".
std::string MustBeUtf8(absl::string_view what, size_t offset) {
  return absl::StrCat(what, " must be valid UTF-8; the sequence at byte ",
                      "offset ", offset, " of one is not");
}

// The violation for `field` (its element `index`) in `scope`, whose value
// is ill-formed from byte `offset` on.
FieldViolation Describe(const Scope& scope, const FieldDescriptor& field,
                        int index, size_t offset) {
  if (scope.kind == Scope::Kind::kMessage) {
    return {FieldPath(scope.path, field, index), MustBeUtf8(offset)};
  }
  if (scope.kind == Scope::Kind::kMapEntry) {
    if (field.number() == kMapKeyNumber) {
      return {scope.path, MustBeUtf8("keys", offset)};
    }
    if (!scope.value_path.empty()) {
      return {scope.value_path, MustBeUtf8(offset)};
    }
  }
  return {scope.path, MustBeUtf8("values", offset)};
}

// The scope of the message in `field` (its element `index`) of a message
// in `scope`; `bytes` are the message's, needed for a map entry's key.
Scope Enter(const Scope& scope, const FieldDescriptor& field, int index,
            absl::string_view bytes) {
  if (scope.kind == Scope::Kind::kHiddenValue) return scope;
  if (scope.kind == Scope::Kind::kMapEntry) {  // `field` is the value
    if (scope.value_path.empty()) {
      return {Scope::Kind::kHiddenValue, scope.path, ""};
    }
    return {Scope::Kind::kMessage, scope.value_path, ""};
  }

  std::string path = FieldPath(scope.path, field, index);
  if (!field.is_map()) return {Scope::Kind::kMessage, std::move(path), ""};
  const std::string key = ShownKey(field, bytes);
  std::string value_path = key.empty() ? "" : absl::StrCat(path, ".", key);
  return {Scope::Kind::kMapEntry, std::move(path), std::move(value_path)};
}

// ---------------------------------------------------------------------------
// Walking a message.

// Whether protobuf refuses the field's values unless they are UTF-8:
// proto3 strings. It only logs about proto2 ones.
bool ChecksUtf8(const FieldDescriptor& field) {
  return field.type() == FieldDescriptor::TYPE_STRING &&
         field.file()->syntax() == FileDescriptor::SYNTAX_PROTO3;
}

// The width of one value of a packed field: 4 or 8 bytes, 0 for varints.
size_t PackedWidth(const FieldDescriptor& field) {
  switch (field.type()) {
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
    case FieldDescriptor::TYPE_FLOAT:
      return 4;
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
    case FieldDescriptor::TYPE_DOUBLE:
      return 8;
    default:
      return 0;
  }
}

// One FindInvalidUtf8() call. Fields are looked up by number in the
// descriptor of the message being walked; a field that is unknown, or
// whose wire type is not the one its type is written with, is skipped as
// protobuf skips it into the unknown fields (reading groups through, as
// protobuf does).
class Walker {
 public:
  Walker(const Descriptor& type, absl::string_view wire)
      : type_(type),
        reader_(wire),
        depth_left_(google::protobuf::io::CodedInputStream::
                        GetDefaultRecursionLimit()) {}

  absl::StatusOr<std::vector<FieldViolation>> Run() {
    RETURN_IF_ERROR(WalkFields(&type_, Scope{}, /*end_tag=*/0));
    return std::move(violations_);
  }

 private:
  // Walks the fields of a message of type `type` (nullptr for an unknown
  // group) up to the end of the current limit or, in a group, up to
  // `end_tag`.
  absl::Status WalkFields(const Descriptor* type, const Scope& scope,
                          uint32_t end_tag) {
    std::map<int, int> elements;  // seen so far, per repeated field
    while (!reader_.AtEnd()) {
      uint32_t tag;
      if (!reader_.ReadTag(tag)) {
        return Malformed("a tag is cut short or longer than 5 bytes");
      }
      if (end_tag != 0 && tag == end_tag) return absl::OkStatus();
      RETURN_IF_ERROR(WalkField(type, scope, tag, elements));
    }
    if (end_tag != 0) return Malformed("a group is not closed");
    return absl::OkStatus();
  }

  absl::Status WalkField(const Descriptor* type, const Scope& scope,
                         uint32_t tag, std::map<int, int>& elements) {
    const uint32_t number = tag >> 3;
    const uint32_t wire_type = tag & 7;
    if (tag == 0) return Malformed("a tag is 0");
    if (wire_type == kEndGroup) {
      return Malformed("an end-group tag has no matching start-group tag");
    }
    if (number == 0) return Malformed("a field number is 0");
    const FieldDescriptor* field =
        type == nullptr ? nullptr
                        : type->FindFieldByNumber(static_cast<int>(number));
    const auto next_index = [&] {
      return field->is_repeated() ? elements[field->number()]++ : 0;
    };

    if (wire_type == kStartGroup) {
      if (field == nullptr || field->type() != FieldDescriptor::TYPE_GROUP) {
        return WalkGroup(nullptr, scope, number);
      }
      return WalkGroup(field->message_type(),
                       Enter(scope, *field, next_index(), ""), number);
    }
    if (wire_type == kLengthDelimited && field != nullptr) {
      if (ChecksUtf8(*field) ||
          field->type() == FieldDescriptor::TYPE_MESSAGE) {
        return WalkLengthDelimited(*field, scope, next_index());
      }
      if (field->is_packable()) {
        if (reader_.SkipPacked(PackedWidth(*field))) return absl::OkStatus();
        return Malformed("a packed field's values do not fill its length");
      }
    }
    if (!reader_.SkipValue(wire_type)) {
      return Malformed(wire_type > kFixed32
                           ? "a tag has wire type 6 or 7, which do not exist"
                           : "a value is cut short or malformed");
    }
    return absl::OkStatus();
  }

  // A string or a message, in a field that knows it.
  absl::Status WalkLengthDelimited(const FieldDescriptor& field,
                                   const Scope& scope, int index) {
    size_t length;
    if (!reader_.ReadLength(length)) {
      return Malformed("a length is malformed or runs past its message");
    }
    if (field.type() == FieldDescriptor::TYPE_STRING) {
      const absl::string_view value = reader_.Take(length);
      if (const std::optional<size_t> bad = FirstInvalidUtf8(value)) {
        Report(Describe(scope, field, index, *bad));
      }
      return absl::OkStatus();
    }
    return WalkMessage(*field.message_type(),
                       Enter(scope, field, index, reader_.Peek(length)),
                       length);
  }

  absl::Status WalkMessage(const Descriptor& type, const Scope& scope,
                           size_t length) {
    if (--depth_left_ < 0) return Malformed("messages are nested too deeply");
    const size_t outer_end = reader_.PushLimit(length);
    RETURN_IF_ERROR(WalkFields(&type, scope, /*end_tag=*/0));
    reader_.PopLimit(outer_end);
    ++depth_left_;
    return absl::OkStatus();
  }

  absl::Status WalkGroup(const Descriptor* type, const Scope& scope,
                         uint32_t number) {
    if (--depth_left_ < 0) return Malformed("groups are nested too deeply");
    RETURN_IF_ERROR(WalkFields(type, scope, MakeTag(number, kEndGroup)));
    ++depth_left_;
    return absl::OkStatus();
  }

  // Keeps the first violation of each name, up to kMaxUtf8Violations.
  void Report(FieldViolation violation) {
    if (violations_.size() >= kMaxUtf8Violations) return;
    for (const FieldViolation& seen : violations_) {
      if (seen.field == violation.field) return;
    }
    violations_.push_back(std::move(violation));
  }

  absl::Status Malformed(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid ", type_.full_name(), " message: ", what,
                     " (at byte ", reader_.position(), ")"));
  }

  const Descriptor& type_;
  WireReader reader_;
  int depth_left_;
  std::vector<FieldViolation> violations_;
};

}  // namespace

absl::StatusOr<std::vector<FieldViolation>> FindInvalidUtf8(
    const google::protobuf::Descriptor& type, absl::string_view wire) {
  if (wire.size() > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a valid ", type.full_name(), " message: it is longer than ",
        "protobuf's limit of 2 GiB"));
  }
  return Walker(type, wire).Run();
}

}  // namespace authcode
