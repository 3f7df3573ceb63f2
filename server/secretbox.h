// Authenticated encryption of delivery payloads at rest (AES-256-GCM).
//
// A sealed blob is nonce (12 bytes) || ciphertext || tag (16 bytes); the
// key id is stored beside it, and the caller's associated data (the code
// id) binds a blob to its row, so one row's payload cannot be moved to
// another. Keys never reach the database.
//
// Thread safety: immutable; may be shared.
#ifndef AUTHCODE_SERVER_SECRETBOX_H_
#define AUTHCODE_SERVER_SECRETBOX_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace authcode {

struct Sealed {
  std::string key_id;
  std::string data;
};

class SecretBox {
 public:
  // `keys`: 32-byte keys, the first one used to seal.
  explicit SecretBox(std::vector<Key> keys);

  absl::StatusOr<Sealed> Seal(std::string_view plaintext,
                              std::string_view associated_data) const;

  // NotFound when no key has `key_id`; DataLoss when the blob was altered
  // or sealed with other associated data.
  absl::StatusOr<std::string> Open(std::string_view key_id,
                                   std::string_view data,
                                   std::string_view associated_data) const;

 private:
  std::vector<Key> keys_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_SECRETBOX_H_
