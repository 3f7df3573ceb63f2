// Checks of every request field, before anything touches the database.
//
// Each check returns the violations it found, one per bad field, named the
// way google.rpc.BadRequest expects (e.g. "recipient",
// "template_values.app_name"). An empty list means the request is good.
// Descriptions quote no more of the bad value than is safe to log.
//
// The recipient is checked by ParseRecipientAddress() (server/address.h),
// whose reason becomes the description; once the request is valid, the
// service asks the same parser for the address to mail and the key to
// store codes under.
#ifndef AUTHCODE_SERVER_VALIDATION_H_
#define AUTHCODE_SERVER_VALIDATION_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "authcode/v1/authcode.pb.h"

namespace authcode {

struct FieldViolation {
  std::string field;
  std::string description;
};

// Limits on what callers may send.
inline constexpr size_t kMaxTemplateValues = 20;
inline constexpr size_t kMaxTemplateValueBytes = 256;
inline constexpr int kMinCodeLength = 6;
inline constexpr int kMaxCodeLength = 10;
inline constexpr size_t kMaxIdempotencyKey = 128;

std::vector<FieldViolation> ValidateIssueRequest(
    const v1::IssueCodeRequest& request);
std::vector<FieldViolation> ValidateVerifyRequest(
    const v1::VerifyCodeRequest& request);

// A valid client_ip as per-IP limits count it: IPv4 (also when written as
// an IPv4-mapped IPv6 address) in dotted form, IPv6 as the network of its
// first `ipv6_prefix` bits ("2001:db8:1:2::/64"). Empty for empty.
std::string CountedClientIp(absl::string_view ip, int ipv6_prefix);

// True for a code id as IssueCode returns it: a lower-case canonical UUID.
bool IsCodeId(absl::string_view text);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_VALIDATION_H_
