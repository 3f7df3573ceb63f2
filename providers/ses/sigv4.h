// AWS Signature Version 4 (header form), on OpenSSL's HMAC and SHA-256.
//
// Sign() turns one HTTP request into the headers that authenticate it:
// x-amz-date, x-amz-security-token when the credentials carry a session
// token, x-amz-content-sha256 when asked, and Authorization. It returns
// the intermediate texts (canonical request, string to sign) as well, so
// tests can hold each step against AWS's published test suite.
//
// The request is described as the client will send it: method, path,
// query parameters and headers (the Host header included, and none of the
// headers Sign() adds). Paths and query parameters are given decoded; the
// signer percent-encodes them the way SigV4 requires (RFC 3986 unreserved
// characters kept as is).
//
// Known shortcoming: the path is encoded once. Services other than S3
// sign the path as sent, encoded a second time, so for them a path with
// characters outside the unreserved set and '/' (a space, an '@') signs
// differently from what the service computes and is refused. SES's
// /v2/email/outbound-emails has none.
//
// Thread safety: Sign() is a pure function; call it from any thread. It
// aborts the process if OpenSSL cannot compute SHA-256 or HMAC at all (a
// broken installation), as it has no error to return.
#ifndef AUTHCODE_PROVIDERS_SES_SIGV4_H_
#define AUTHCODE_PROVIDERS_SES_SIGV4_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace authcode::providers::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // Empty for long-term credentials.
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // Decoded, e.g. "/v2/email/outbound-emails".
  // Decoded names and values, in any order; names may repeat.
  std::vector<std::pair<std::string, std::string>> query;
  // As they will be sent, in order; names may repeat and differ in case.
  // Values are signed trimmed, each run of whitespace as one space; a
  // folded value's line breaks count as whitespace.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view payload;
};

struct Options {
  std::string region;   // "eu-west-1"
  std::string service;  // "ses"
  // Removes "." and ".." segments and repeated slashes from the path
  // before signing, as every service but S3 expects.
  bool normalize_path = true;
  // Adds and signs x-amz-content-sha256 (the payload's hash), as S3 and
  // some other services require.
  bool sign_body = false;
  // Signs x-amz-security-token with the rest; when false the token is
  // still added, but after signing (an older convention some services
  // use).
  bool sign_session_token = true;
};

struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // Lower-case hex.
  std::string authorization;  // The Authorization header's value.
  // Every header to add to the request, Authorization last, names in
  // lower case.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Signs `request` as of `now` (its UTC second is used).
Signature Sign(const Request& request, const Credentials& credentials,
               const Options& options, absl::Time now);

// Lower-case hex of SHA-256(data); exposed for the payload hash.
std::string HexSha256(std::string_view data);

}  // namespace authcode::providers::sigv4

#endif  // AUTHCODE_PROVIDERS_SES_SIGV4_H_
