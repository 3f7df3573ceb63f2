// One-time codes: generation from a CSPRNG and keyed hashing.
//
// A code is stored only as HMAC-SHA256(key, scope || code), where scope is
// the tenant, purpose and recipient, so a hash is useless for another
// recipient and a stolen table cannot be searched offline without the key.
// Each hash carries the id of the key that made it, so keys can rotate.
//
// Thread safety: CodeHasher is immutable and may be shared.
#ifndef AUTHCODE_SERVER_CODES_H_
#define AUTHCODE_SERVER_CODES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace authcode {

// Fills `out` with `size` random bytes; false on failure. Production uses
// OpenSSL's RAND_bytes; tests inject their own.
using RandomSource = std::function<bool(uint8_t* out, size_t size)>;
RandomSource SystemRandom();

// A code of `length` decimal digits, each uniform over 0-9 (bytes of 250
// or more are drawn again, so there is no modulo bias), leading zeros kept.
absl::StatusOr<std::string> GenerateCode(int length,
                                         const RandomSource& random);

// A random (version 4) UUID in its canonical text form.
absl::StatusOr<std::string> NewCodeId(const RandomSource& random);

// What a code is bound to.
struct CodeScope {
  std::string_view tenant;
  std::string_view purpose;
  std::string_view recipient;  // Normalized.
};

struct CodeHash {
  std::string key_id;
  std::string digest;  // 32 raw bytes.
};

class CodeHasher {
 public:
  // `keys` is a ring as loaded by the config: at least one key, the first
  // one current.
  explicit CodeHasher(std::vector<Key> keys);

  // The hash to store for a new code.
  CodeHash HashCurrent(const CodeScope& scope, std::string_view code) const;

  // The candidate's hash under every key, current first, to check a guess
  // against a code made under any of them.
  std::vector<CodeHash> HashAll(const CodeScope& scope,
                                std::string_view code) const;

 private:
  static std::string Digest(const Key& key, const CodeScope& scope,
                            std::string_view code);

  std::vector<Key> keys_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_CODES_H_
