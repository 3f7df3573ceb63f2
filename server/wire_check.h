// Finds the string fields of a serialized request that hold invalid UTF-8,
// before protobuf is asked to parse it.
//
// protobuf refuses to parse a proto3 message whose `string` field holds
// bytes that are not valid UTF-8, and gRPC then answers INTERNAL before any
// of our code runs. The service therefore takes requests as raw bytes and
// asks FindInvalidUtf8() first, so that the caller gets INVALID_ARGUMENT
// with a google.rpc.BadRequest field violation naming the field instead.
//
// The check walks the wire format with the message's descriptor and reads
// it exactly as protobuf 3.21's own parser does: the same limits on tags,
// varints and lengths, the same rules for groups, the same nesting limit,
// and UTF-8 checked in the same fields (proto3 `string` fields, map keys
// and values included; proto2 strings and `bytes` are not checked, as
// protobuf does not check them). So for a message type and its bytes:
//
//   FindInvalidUtf8() is OK and finds nothing
//       exactly when  ParsePartialFromArray() succeeds.
//
// proto3 has no required fields, so for authcode's requests that is also
// ParseFromArray(). Known gaps: extensions are skipped as unknown fields
// (proto3 has none), and the equivalence holds for the protobuf version
// the tests and the fuzzer (tests/fuzz/wire_check_fuzz.cc) run against; a
// newer protobuf with other limits needs them run again.
//
// Violations are named the way google.rpc.BadRequest expects, by the
// fields' proto names: "recipient", "outer.inner", "items[2]" for a
// repeated field, "template_values.app_name" for the value of a map entry
// whose key is short and plain (ASCII letters, digits, '_' and '-'), and
// "template_values" for a bad key or for the value of any other key. There
// is at most one violation per name, the first found, in wire order. The
// descriptions never quote the bad bytes; they give the offset (from 0)
// in the string where the first ill-formed UTF-8 sequence starts.
//
// Thread safety: FindInvalidUtf8() is pure and may be called from any
// thread.
#ifndef AUTHCODE_SERVER_WIRE_CHECK_H_
#define AUTHCODE_SERVER_WIRE_CHECK_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "server/validation.h"

namespace authcode {

// The most violations one call reports. A request holds a handful of
// string fields; the cap only matters for hostile ones (many map entries
// or repeated strings), whose error details must still fit in a gRPC
// trailer.
inline constexpr size_t kMaxUtf8Violations = 20;

// The string fields of `wire`, the serialized form of a message of type
// `type`, that hold invalid UTF-8 (strict: no overlong forms, surrogates
// or code points past U+10FFFF), as field violations. Empty when every
// string is valid UTF-8.
//
// Returns InvalidArgument when `wire` is not a well-formed message of that
// type at all (a truncated varint, a length past the end, an unclosed
// group, nesting deeper than protobuf allows, ...): there is no field to
// name then, and protobuf would refuse the bytes whatever their strings
// hold. The message says what is wrong and at which byte, without quoting
// any of the input.
absl::StatusOr<std::vector<FieldViolation>> FindInvalidUtf8(
    const google::protobuf::Descriptor& type, absl::string_view wire);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_WIRE_CHECK_H_
