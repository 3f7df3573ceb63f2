// libFuzzer target: the wire check (server/wire_check.h) fed hostile bytes.
// The first byte picks the message type, by its value modulo 6: one of
// authcode's three requests, or protobuf's own Struct or Type (proto3:
// nested and repeated messages, maps with message values) or
// FileDescriptorProto (proto2: strings protobuf does not check, packed
// numbers). The rest are the message's wire bytes. Besides never
// crashing, it asserts:
//
//   - the promise of wire_check.h: FindInvalidUtf8() is OK and finds
//     nothing exactly when protobuf parses the bytes. So what it lets
//     through, the handler can parse; what it reports or refuses, protobuf
//     would have refused too. The requests are parsed as the handler will
//     parse them, with ParseFromArray(); the other types with
//     ParsePartialFromArray(), since FileDescriptorProto has required
//     fields, which are not the wire check's business;
//   - an error is InvalidArgument, with a message in printable ASCII;
//   - there are at most kMaxUtf8Violations violations, with distinct
//     names, each starting with the name of one of the type's string or
//     message fields, and each with a description in printable ASCII.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "authcode/v1/authcode.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/type.pb.h"
#include "server/wire_check.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool IsPrintableAscii(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < ' ' || c > '~') return false;
  }
  return true;
}

struct Target {
  const google::protobuf::Message* prototype;
  bool partial;  // parse without checking required fields
};

Target Pick(uint8_t selector) {
  switch (selector % 6) {
    case 0:
      return {&authcode::v1::IssueCodeRequest::default_instance(), false};
    case 1:
      return {&authcode::v1::VerifyCodeRequest::default_instance(), false};
    case 2:
      return {&authcode::v1::GetDeliveryRequest::default_instance(), false};
    case 3:
      return {&google::protobuf::Struct::default_instance(), true};
    case 4:
      return {&google::protobuf::Type::default_instance(), true};
    default:
      return {&google::protobuf::FileDescriptorProto::default_instance(), true};
  }
}

bool ProtobufParses(const Target& target, absl::string_view wire) {
  std::unique_ptr<google::protobuf::Message> message(target.prototype->New());
  const int size = static_cast<int>(wire.size());
  return target.partial ? message->ParsePartialFromArray(wire.data(), size)
                        : message->ParseFromArray(wire.data(), size);
}

// "recipient", "template_values.app_name", "fields[2].name": the part up
// to the first '.' or '[' names a string or message field of `type`.
bool NamesAField(const Descriptor& type, const std::string& name) {
  const FieldDescriptor* field =
      type.FindFieldByName(name.substr(0, name.find_first_of(".[")));
  return field != nullptr && (field->type() == FieldDescriptor::TYPE_STRING ||
                              field->type() == FieldDescriptor::TYPE_MESSAGE);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  google::protobuf::SetLogHandler(nullptr);  // it logs each bad string
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Target target = Pick(data[0]);
  const Descriptor& type = *target.prototype->GetDescriptor();
  const absl::string_view wire(reinterpret_cast<const char*>(data + 1),
                               size - 1);

  const absl::StatusOr<std::vector<authcode::FieldViolation>> found =
      authcode::FindInvalidUtf8(type, wire);
  Check((found.ok() && found->empty()) == ProtobufParses(target, wire));
  if (!found.ok()) {
    Check(absl::IsInvalidArgument(found.status()));
    Check(IsPrintableAscii(found.status().message()));
    return 0;
  }

  Check(found->size() <= authcode::kMaxUtf8Violations);
  std::set<std::string> names;
  for (const authcode::FieldViolation& violation : *found) {
    Check(names.insert(violation.field).second);
    Check(IsPrintableAscii(violation.field));
    Check(NamesAField(type, violation.field));
    Check(IsPrintableAscii(violation.description));
  }
  return 0;
}
