#include "server/codes.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace authcode {
namespace {

// Bytes at or above this are redrawn: 250 is the largest multiple of 10
// that fits in a byte, so the accepted bytes map evenly onto 0-9.
constexpr uint8_t kRejectFrom = 250;

void AppendField(std::string& out, std::string_view field) {
  const uint32_t size = static_cast<uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((size >> shift) & 0xff));
  }
  out.append(field);
}

}  // namespace

RandomSource SystemRandom() {
  return [](uint8_t* out, size_t size) {
    return RAND_bytes(out, static_cast<int>(size)) == 1;
  };
}

absl::StatusOr<std::string> GenerateCode(int length,
                                         const RandomSource& random) {
  if (length < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("code length must be positive, got ", length));
  }
  std::string code;
  code.reserve(length);
  std::array<uint8_t, 32> pool;
  while (static_cast<int>(code.size()) < length) {
    if (!random(pool.data(), pool.size())) {
      return absl::InternalError("the random number generator failed");
    }
    for (uint8_t byte : pool) {
      if (byte >= kRejectFrom) continue;
      code.push_back(static_cast<char>('0' + byte % 10));
      if (static_cast<int>(code.size()) == length) break;
    }
  }
  return code;
}

absl::StatusOr<std::string> NewCodeId(const RandomSource& random) {
  std::array<uint8_t, 16> b;
  if (!random(b.data(), b.size())) {
    return absl::InternalError("the random number generator failed");
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // Version 4.
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant.
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
      b[12], b[13], b[14], b[15]);
}

CodeHasher::CodeHasher(std::vector<Key> keys) : keys_(std::move(keys)) {}

CodeHash CodeHasher::HashCurrent(const CodeScope& scope,
                                 std::string_view code) const {
  return {keys_.front().id, Digest(keys_.front(), scope, code)};
}

std::vector<CodeHash> CodeHasher::HashAll(const CodeScope& scope,
                                          std::string_view code) const {
  std::vector<CodeHash> hashes;
  hashes.reserve(keys_.size());
  for (const Key& key : keys_) {
    hashes.push_back({key.id, Digest(key, scope, code)});
  }
  return hashes;
}

std::string CodeHasher::Digest(const Key& key, const CodeScope& scope,
                               std::string_view code) {
  // Every field is length-prefixed, so no two scopes share a message.
  std::string message = "authcode.v1.code";
  AppendField(message, scope.tenant);
  AppendField(message, scope.purpose);
  AppendField(message, scope.recipient);
  AppendField(message, code);

  std::string digest(EVP_MAX_MD_SIZE, '\0');
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       reinterpret_cast<unsigned char*>(digest.data()), &size);
  digest.resize(size);
  return digest;
}

}  // namespace authcode
