#include "providers/ses/sigv4.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace authcode::providers::sigv4 {
namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";
constexpr char kAmzDateFormat[] = "%Y%m%dT%H%M%SZ";
// The "YYYYMMDD" that opens an x-amz-date is the date of the scope.
constexpr size_t kDateLength = 8;
constexpr char kDateHeader[] = "x-amz-date";
constexpr char kContentHashHeader[] = "x-amz-content-sha256";
constexpr char kTokenHeader[] = "x-amz-security-token";

using Digest = std::array<unsigned char, 32>;
// Query parameters or headers: names may repeat.
using NameValues = std::vector<std::pair<std::string, std::string>>;

absl::string_view ToAbsl(std::string_view value) {
  return absl::string_view(value.data(), value.size());
}

std::string_view AsText(const Digest& digest) {
  return std::string_view(reinterpret_cast<const char*>(digest.data()),
                          digest.size());
}

std::string Hex(const Digest& digest) {
  return absl::BytesToHexString(ToAbsl(AsText(digest)));
}

// --- OpenSSL -------------------------------------------------------------

// Sign() has no error to return, and SHA-256 or HMAC fail only when
// OpenSSL itself is unusable (no default provider, no memory left):
// nothing a caller could act on or retry.
[[noreturn]] void OpensslFailed(const char* what) {
  std::fprintf(stderr, "sigv4: OpenSSL failed: %s\n", what);
  std::abort();
}

// Both algorithms are fetched once: OpenSSL 3 otherwise looks them up by
// name on every call, which costs more than hashing a short text. A
// fetched algorithm is immutable and may be shared by all threads.
const EVP_MD* Sha256Algorithm() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) OpensslFailed("fetching SHA256");
  return md;
}

EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) OpensslFailed("fetching HMAC");
  return mac;
}

Digest Sha256(std::string_view data) {
  Digest digest;
  if (EVP_Digest(data.data(), data.size(), digest.data(), nullptr,
                 Sha256Algorithm(), nullptr) != 1) {
    OpensslFailed("SHA256");
  }
  return digest;
}

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

// HMAC-SHA256 under one key after another on a single OpenSSL context:
// the signing key takes four steps to derive and is then used once. On
// OpenSSL 3.0 this costs half of what the one-shot HMAC() does, which
// sets everything up again on each call; the five HMACs are still most
// of a signature's time.
class HmacSha256 {
 public:
  HmacSha256() : ctx_(EVP_MAC_CTX_new(HmacAlgorithm())) {
    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end()};
    if (ctx_ == nullptr || EVP_MAC_CTX_set_params(ctx_.get(), params) != 1) {
      OpensslFailed("setting up HMAC-SHA256");
    }
  }

  Digest operator()(std::string_view key, std::string_view data) {
    Digest mac;
    size_t length = 0;
    if (EVP_MAC_init(ctx_.get(),
                     reinterpret_cast<const unsigned char*>(key.data()),
                     key.size(), nullptr) != 1 ||
        EVP_MAC_update(ctx_.get(),
                       reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) != 1 ||
        EVP_MAC_final(ctx_.get(), mac.data(), &length, mac.size()) != 1 ||
        length != mac.size()) {
      OpensslFailed("HMAC-SHA256");
    }
    return mac;
  }

 private:
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx_;
};

// The key is bound to the day, region and service of the scope, so that
// a leaked signing key is worth little. It changes once a day, so caching
// it would save four of the five HMACs of a signature; Sign() stays a pure
// function instead, at about 10 microseconds a mail.
Digest SigningKey(HmacSha256& hmac, const std::string& secret,
                  std::string_view date, const Options& options) {
  const std::string secret_key = absl::StrCat("AWS4", secret);
  const Digest date_key = hmac(secret_key, date);
  const Digest region_key = hmac(AsText(date_key), options.region);
  const Digest service_key = hmac(AsText(region_key), options.service);
  return hmac(AsText(service_key), "aws4_request");
}

// --- Canonical request ---------------------------------------------------

bool IsUnreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// RFC 3986 percent-encoding of every byte outside the unreserved set
// ('/' too, unless `keep_slash`), with the upper-case hex SigV4 asks for.
void AppendEncoded(std::string_view text, bool keep_slash, std::string* out) {
  static constexpr char kHexDigits[] = "0123456789ABCDEF";
  for (const char c : text) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out->push_back(c);
      continue;
    }
    const unsigned char byte = static_cast<unsigned char>(c);
    out->push_back('%');
    out->push_back(kHexDigits[byte >> 4]);
    out->push_back(kHexDigits[byte & 0xF]);
  }
}

// `path` (not empty) with "." and ".." segments resolved and empty ones
// dropped. A trailing slash stays: "/a/" and "/a" may name different
// resources.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }

  std::string normalized;
  normalized.reserve(path.size() + 1);
  for (const std::string_view segment : segments) {
    absl::StrAppend(&normalized, "/", ToAbsl(segment));
  }
  if (normalized.empty() || path.back() == '/') normalized.push_back('/');
  return normalized;
}

void AppendCanonicalUri(std::string_view path, bool normalize,
                        std::string* out) {
  if (path.empty()) {
    out->push_back('/');
  } else if (normalize) {
    AppendEncoded(NormalizePath(path), /*keep_slash=*/true, out);
  } else {
    AppendEncoded(path, /*keep_slash=*/true, out);
  }
}

// Sorted on the encoded forms, as the server sees them: a name and value
// that encode differently must sort by their encodings.
void AppendCanonicalQuery(const NameValues& query, std::string* out) {
  NameValues encoded(query.size());
  for (size_t i = 0; i < query.size(); ++i) {
    AppendEncoded(query[i].first, /*keep_slash=*/false, &encoded[i].first);
    AppendEncoded(query[i].second, /*keep_slash=*/false, &encoded[i].second);
  }
  std::sort(encoded.begin(), encoded.end());

  for (size_t i = 0; i < encoded.size(); ++i) {
    if (i > 0) out->push_back('&');
    absl::StrAppend(out, encoded[i].first, "=", encoded[i].second);
  }
}

struct HeaderToSign {
  std::string name;        // Lower case.
  std::string_view value;  // As given; trimmed when written out.
};

// The request's headers and the signed ones Sign() adds, sorted by name.
// The sort is stable: the values of a repeated name are joined in the
// order they are sent.
std::vector<HeaderToSign> HeadersToSign(const Request& request,
                                        const NameValues& added,
                                        const Options& options) {
  std::vector<HeaderToSign> headers;
  headers.reserve(request.headers.size() + added.size());
  for (const auto& [name, value] : request.headers) {
    headers.push_back({absl::AsciiStrToLower(ToAbsl(name)), value});
  }
  for (const auto& [name, value] : added) {
    if (name == kTokenHeader && !options.sign_session_token) continue;
    headers.push_back({name, value});
  }

  std::stable_sort(headers.begin(), headers.end(),
                   [](const HeaderToSign& a, const HeaderToSign& b) {
                     return a.name < b.name;
                   });
  return headers;
}

bool IsSpace(char c) {
  return absl::ascii_isspace(static_cast<unsigned char>(c));
}

// The words of `value`, one space between each: the value trimmed and
// every inner run of whitespace made one space. The line breaks of a
// folded (obs-fold) value are whitespace too, so the value comes out on
// one line, as RFC 7230 3.2.4 has a recipient read it.
void AppendCollapsed(std::string_view value, std::string* out) {
  size_t start = 0;
  bool first = true;
  while (true) {
    while (start < value.size() && IsSpace(value[start])) ++start;
    if (start == value.size()) return;
    size_t end = start;
    while (end < value.size() && !IsSpace(value[end])) ++end;

    if (!first) out->push_back(' ');
    out->append(value.data() + start, end - start);
    first = false;
    start = end;
  }
}

// One "name:value\n" line per name, a repeated name's values joined with
// commas; and the names, joined with semicolons, into `signed_headers`.
void AppendCanonicalHeaders(const std::vector<HeaderToSign>& headers,
                            std::string* out, std::string* signed_headers) {
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string& name = headers[i].name;
    if (i > 0 && name == headers[i - 1].name) {
      out->push_back(',');
    } else {
      if (i > 0) {
        out->push_back('\n');
        signed_headers->push_back(';');
      }
      absl::StrAppend(out, name, ":");
      signed_headers->append(name);
    }
    AppendCollapsed(headers[i].value, out);
  }
  out->push_back('\n');
}

struct CanonicalRequest {
  std::string text;
  std::string signed_headers;
};

CanonicalRequest Canonicalize(const Request& request, const Options& options,
                              const std::vector<HeaderToSign>& headers,
                              std::string_view payload_hash) {
  CanonicalRequest canonical;
  std::string& text = canonical.text;
  absl::StrAppend(&text, request.method, "\n");
  AppendCanonicalUri(request.path, options.normalize_path, &text);
  text.push_back('\n');
  AppendCanonicalQuery(request.query, &text);
  text.push_back('\n');
  AppendCanonicalHeaders(headers, &text, &canonical.signed_headers);
  absl::StrAppend(&text, "\n", canonical.signed_headers, "\n",
                  ToAbsl(payload_hash));
  return canonical;
}

// --- Signature -----------------------------------------------------------

// The headers Sign() adds ahead of Authorization: x-amz-date, then
// x-amz-content-sha256 and x-amz-security-token when they apply.
NameValues AddedHeaders(const std::string& amz_date,
                        const std::string& payload_hash,
                        const Credentials& credentials,
                        const Options& options) {
  NameValues added;
  added.reserve(4);  // Room for Authorization, appended last.
  added.emplace_back(kDateHeader, amz_date);
  if (options.sign_body) added.emplace_back(kContentHashHeader, payload_hash);
  if (!credentials.session_token.empty()) {
    added.emplace_back(kTokenHeader, credentials.session_token);
  }
  return added;
}

}  // namespace

Signature Sign(const Request& request, const Credentials& credentials,
               const Options& options, absl::Time now) {
  const std::string amz_date =
      absl::FormatTime(kAmzDateFormat, now, absl::UTCTimeZone());
  const std::string_view date =
      std::string_view(amz_date).substr(0, kDateLength);
  const std::string scope = absl::StrCat(ToAbsl(date), "/", options.region, "/",
                                         options.service, "/aws4_request");
  const std::string payload_hash = HexSha256(request.payload);

  Signature result;
  result.headers = AddedHeaders(amz_date, payload_hash, credentials, options);
  CanonicalRequest canonical = Canonicalize(
      request, options, HeadersToSign(request, result.headers, options),
      payload_hash);
  result.canonical_request = std::move(canonical.text);

  result.string_to_sign =
      absl::StrCat(kAlgorithm, "\n", amz_date, "\n", scope, "\n",
                   HexSha256(result.canonical_request));
  HmacSha256 hmac;
  const Digest key =
      SigningKey(hmac, credentials.secret_access_key, date, options);
  result.signature = Hex(hmac(AsText(key), result.string_to_sign));

  result.authorization =
      absl::StrCat(kAlgorithm, " Credential=", credentials.access_key_id, "/",
                   scope, ", SignedHeaders=", canonical.signed_headers,
                   ", Signature=", result.signature);
  result.headers.emplace_back("authorization", result.authorization);
  return result;
}

std::string HexSha256(std::string_view data) { return Hex(Sha256(data)); }

}  // namespace authcode::providers::sigv4
