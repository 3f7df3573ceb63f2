#include "server/secretbox.h"

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

// Distinctive texts, so that a leak into an error message is easy to spot.
constexpr char kPlaintext[] = "Your code is 481516, valid for 10 minutes";
constexpr char kCodeId[] = "3f1c8a52-7d1e-4b0a-9c3e-5a6b7c8d9e0f";

class SecretBoxTest : public ::testing::Test {
 protected:
  static Key Current() { return {"current", std::string(32, 'C')}; }
  static Key New() { return {"new", std::string(32, 'N')}; }
  static Key Old() { return {"old", std::string(32, 'O')}; }

  // 64 KiB covering every byte value, NUL included.
  static std::string LargeText() {
    std::string text(64 * 1024, '\0');
    for (size_t i = 0; i < text.size(); ++i) {
      text[i] = static_cast<char>((i * 131 + i / 256) & 0xff);
    }
    return text;
  }

  static Sealed MustSeal(const SecretBox& box, const std::string& plaintext,
                         const std::string& associated_data) {
    absl::StatusOr<Sealed> sealed = box.Seal(plaintext, associated_data);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    return sealed.ok() ? *sealed : Sealed{};
  }

  // Checks that `status` does not echo the plaintext or any key secret.
  static void ExpectNoSecrets(const absl::Status& status,
                              const std::string& plaintext) {
    const std::string message(status.message());
    EXPECT_EQ(message.find(plaintext), std::string::npos)
        << "message leaks the plaintext: " << message;
    for (const Key& key : {Current(), New(), Old()}) {
      EXPECT_EQ(message.find(key.secret), std::string::npos)
          << "message leaks key " << key.id << ": " << message;
    }
  }

  const SecretBox box_{{Current()}};
};

TEST_F(SecretBoxTest, OpensWhatItSealed) {
  for (const std::string& plaintext :
       {std::string(kPlaintext), std::string(), std::string(1, '\0'),
        std::string(17, 'x'), LargeText()}) {
    SCOPED_TRACE(::testing::Message() << plaintext.size() << "-byte text");
    const Sealed sealed = MustSeal(box_, plaintext, kCodeId);
    EXPECT_EQ(sealed.key_id, "current");

    const absl::StatusOr<std::string> opened =
        box_.Open(sealed.key_id, sealed.data, kCodeId);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext) << "round trip changed the text";
  }
}

TEST_F(SecretBoxTest, OpensWithEmptyAssociatedData) {
  const Sealed sealed = MustSeal(box_, kPlaintext, "");
  const absl::StatusOr<std::string> opened =
      box_.Open(sealed.key_id, sealed.data, "");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, kPlaintext);
}

TEST_F(SecretBoxTest, SealedSizeIsNoncePlusTextPlusTag) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{6}, size_t{16}, size_t{100},
                      size_t{64 * 1024}}) {
    const Sealed sealed = MustSeal(box_, std::string(size, 'a'), kCodeId);
    EXPECT_EQ(sealed.data.size(), kNonceSize + size + kTagSize)
        << "for a " << size << "-byte text";
  }
}

TEST_F(SecretBoxTest, SealedDataDoesNotHoldThePlaintext) {
  const Sealed sealed = MustSeal(box_, kPlaintext, kCodeId);
  EXPECT_EQ(sealed.data.find(kPlaintext), std::string::npos)
      << "plaintext visible in " << absl::BytesToHexString(sealed.data);
  EXPECT_EQ(sealed.data.find("481516"), std::string::npos)
      << "the code is visible in " << absl::BytesToHexString(sealed.data);

  const std::string repetitive(4096, 'A');
  const Sealed big = MustSeal(box_, repetitive, kCodeId);
  EXPECT_EQ(big.data.find(std::string(32, 'A')), std::string::npos)
      << "a run of the plaintext shows through";
}

TEST_F(SecretBoxTest, SealingTwiceGivesDifferentBlobs) {
  const Sealed first = MustSeal(box_, kPlaintext, kCodeId);
  const Sealed second = MustSeal(box_, kPlaintext, kCodeId);
  EXPECT_NE(first.data, second.data) << "same text sealed to the same bytes";
  EXPECT_NE(first.data.substr(0, kNonceSize), second.data.substr(0, kNonceSize))
      << "nonce reused";
}

TEST_F(SecretBoxTest, RejectsEverySingleByteChange) {
  const std::string plaintext = "123456";
  const Sealed sealed = MustSeal(box_, plaintext, kCodeId);
  ASSERT_EQ(sealed.data.size(), kNonceSize + plaintext.size() + kTagSize);

  for (size_t i = 0; i < sealed.data.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string altered = sealed.data;
      altered[i] = static_cast<char>(altered[i] ^ mask);
      const absl::StatusOr<std::string> opened =
          box_.Open(sealed.key_id, altered, kCodeId);
      ASSERT_FALSE(opened.ok())
          << "byte " << i << " xor " << static_cast<int>(mask)
          << " went unnoticed, opened as \"" << absl::CHexEscape(*opened)
          << "\"";
      EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
          << "byte " << i << ": " << opened.status();
      ExpectNoSecrets(opened.status(), plaintext);
    }
  }
}

TEST_F(SecretBoxTest, RejectsTruncatedOrExtendedData) {
  const Sealed sealed = MustSeal(box_, kPlaintext, kCodeId);
  const std::vector<std::string> bad = {
      "",
      sealed.data.substr(0, kNonceSize),
      sealed.data.substr(0, kNonceSize + kTagSize - 1),
      sealed.data.substr(0, sealed.data.size() - 1),
      sealed.data.substr(1),
      sealed.data + '\0',
  };
  for (const std::string& data : bad) {
    const absl::StatusOr<std::string> opened =
        box_.Open(sealed.key_id, data, kCodeId);
    ASSERT_FALSE(opened.ok()) << data.size() << "-byte blob opened";
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
        << data.size() << "-byte blob: " << opened.status();
    ExpectNoSecrets(opened.status(), kPlaintext);
  }
}

TEST_F(SecretBoxTest, RejectsOtherAssociatedData) {
  const Sealed sealed = MustSeal(box_, kPlaintext, kCodeId);
  for (const std::string& other :
       {std::string("3f1c8a52-7d1e-4b0a-9c3e-5a6b7c8d9e00"), std::string(),
        std::string(kCodeId) + "x"}) {
    const absl::StatusOr<std::string> opened =
        box_.Open(sealed.key_id, sealed.data, other);
    ASSERT_FALSE(opened.ok()) << "opened for row \"" << other << "\"";
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
        << "row \"" << other << "\": " << opened.status();
    ExpectNoSecrets(opened.status(), kPlaintext);
  }
}

TEST_F(SecretBoxTest, RejectsUnknownKeyId) {
  const Sealed sealed = MustSeal(box_, kPlaintext, kCodeId);
  const absl::StatusOr<std::string> opened =
      box_.Open("retired", sealed.data, kCodeId);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kNotFound)
      << opened.status();
  ExpectNoSecrets(opened.status(), kPlaintext);
}

TEST_F(SecretBoxTest, RejectsSameKeyIdWithAnotherSecret) {
  const Sealed sealed = MustSeal(box_, kPlaintext, kCodeId);
  const SecretBox impostor({{"current", std::string(32, 'X')}});
  const absl::StatusOr<std::string> opened =
      impostor.Open(sealed.key_id, sealed.data, kCodeId);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
      << opened.status();
  ExpectNoSecrets(opened.status(), kPlaintext);
}

TEST_F(SecretBoxTest, OpensOldBlobsAfterRotation) {
  const SecretBox before({Old()});
  const Sealed old_blob = MustSeal(before, kPlaintext, kCodeId);
  EXPECT_EQ(old_blob.key_id, "old");

  const SecretBox after({New(), Old()});
  const absl::StatusOr<std::string> opened =
      after.Open(old_blob.key_id, old_blob.data, kCodeId);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, kPlaintext);

  const Sealed new_blob = MustSeal(after, kPlaintext, kCodeId);
  EXPECT_EQ(new_blob.key_id, "new") << "new seals must use the first key";
  const absl::StatusOr<std::string> reopened =
      after.Open(new_blob.key_id, new_blob.data, kCodeId);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(*reopened, kPlaintext);

  const absl::StatusOr<std::string> by_old_ring =
      before.Open(new_blob.key_id, new_blob.data, kCodeId);
  EXPECT_EQ(by_old_ring.status().code(), absl::StatusCode::kNotFound)
      << "a ring without the new key cannot open its blobs: "
      << by_old_ring.status();
}

TEST_F(SecretBoxTest, DoesNotOpenUnderTheWrongKeyOfARing) {
  // A blob sealed under "old" but presented as "new" must fail, not be
  // tried against every key.
  const SecretBox ring({New(), Old()});
  const Sealed old_blob = MustSeal(SecretBox({Old()}), kPlaintext, kCodeId);
  const absl::StatusOr<std::string> opened =
      ring.Open("new", old_blob.data, kCodeId);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
      << opened.status();
  ExpectNoSecrets(opened.status(), kPlaintext);
}

}  // namespace
}  // namespace authcode
