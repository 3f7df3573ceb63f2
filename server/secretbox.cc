#include "server/secretbox.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace authcode {
namespace {

constexpr int kNonceSize = 12;
constexpr int kTagSize = 16;

using CipherContext =
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

SecretBox::SecretBox(std::vector<Key> keys) : keys_(std::move(keys)) {}

absl::StatusOr<Sealed> SecretBox::Seal(std::string_view plaintext,
                                       std::string_view associated_data) const {
  const Key& key = keys_.front();
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(nonce, kNonceSize) != 1) {
    return absl::InternalError("the random number generator failed");
  }

  CipherContext ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  bool ok =
      ctx != nullptr &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         Bytes(key.secret), nonce) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nonce + kNonceSize, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), nonce + kNonceSize + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize,
                          nonce + kNonceSize + plaintext.size()) == 1;
  if (!ok) return absl::InternalError("AES-256-GCM encryption failed");
  return Sealed{key.id, std::move(out)};
}

absl::StatusOr<std::string> SecretBox::Open(
    std::string_view key_id, std::string_view data,
    std::string_view associated_data) const {
  const Key* key = nullptr;
  for (const Key& k : keys_) {
    if (k.id == key_id) key = &k;
  }
  if (key == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "outbox key \"", std::string(key_id), "\" is not configured"));
  }
  if (data.size() < kNonceSize + kTagSize) {
    return absl::DataLossError("sealed payload is too short");
  }

  const size_t text_size = data.size() - kNonceSize - kTagSize;
  std::string plain(text_size, '\0');
  CipherContext ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string tag(data.substr(kNonceSize + text_size));
  int len = 0;
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  bool ok =
      ctx != nullptr &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         Bytes(key->secret), Bytes(data)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), out, &len, Bytes(data.substr(kNonceSize)),
                        static_cast<int>(text_size)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                          tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) == 1;
  if (!ok) {
    return absl::DataLossError(
        "sealed payload failed authentication (altered, or sealed for "
        "another row)");
  }
  return plain;
}

}  // namespace authcode
