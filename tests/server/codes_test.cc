#include "server/codes.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

// A RandomSource that hands out `script` byte by byte across calls and then
// `tail` forever, so a test knows exactly which bytes GenerateCode sees
// however it sizes its draws.
RandomSource Scripted(std::vector<uint8_t> script, uint8_t tail = 0) {
  auto next = std::make_shared<size_t>(0);
  return [script = std::move(script), tail, next](uint8_t* out, size_t size) {
    for (size_t i = 0; i < size; ++i, ++*next) {
      out[i] = *next < script.size() ? script[*next] : tail;
    }
    return true;
  };
}

// A RandomSource yielding 0, 1, ..., 255, 0, 1, ... across calls.
RandomSource CyclingBytes() {
  auto next = std::make_shared<uint8_t>(0);
  return [next](uint8_t* out, size_t size) {
    for (size_t i = 0; i < size; ++i) out[i] = (*next)++;
    return true;
  };
}

// A RandomSource that fills every draw with one byte value.
RandomSource Constant(uint8_t value) {
  return [value](uint8_t* out, size_t size) {
    for (size_t i = 0; i < size; ++i) out[i] = value;
    return true;
  };
}

// A RandomSource whose first `good_calls` draws succeed (yielding `value`)
// and every later one fails, like a broken entropy source.
RandomSource FailingAfter(int good_calls, uint8_t value = 0) {
  auto calls = std::make_shared<int>(0);
  return [good_calls, value, calls](uint8_t* out, size_t size) {
    if ((*calls)++ >= good_calls) return false;
    for (size_t i = 0; i < size; ++i) out[i] = value;
    return true;
  };
}

bool IsAsciiDigits(const std::string& s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsLowerHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// True when `id` is 8-4-4-4-12 lower-case hex digits.
bool IsCanonicalUuid(const std::string& id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? id[i] != '-' : !IsLowerHex(id[i])) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// GenerateCode

TEST(GenerateCodeTest, GivesExactlyTheRequestedNumberOfDigits) {
  for (int length = 6; length <= 10; ++length) {
    for (int i = 0; i < 100; ++i) {
      const absl::StatusOr<std::string> code =
          GenerateCode(length, SystemRandom());
      ASSERT_TRUE(code.ok()) << "length " << length << ": " << code.status();
      EXPECT_EQ(code->size(), static_cast<size_t>(length))
          << "code \"" << *code << "\"";
      EXPECT_TRUE(IsAsciiDigits(*code))
          << "code \"" << absl::CHexEscape(*code) << "\" for length " << length;
    }
  }
}

TEST(GenerateCodeTest, KeepsLeadingZeros) {
  const absl::StatusOr<std::string> code = GenerateCode(6, Constant(0));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, "000000") << "all-zero bytes must give all-zero digits";

  for (int length = 7; length <= 10; ++length) {
    const absl::StatusOr<std::string> longer =
        GenerateCode(length, Constant(0));
    ASSERT_TRUE(longer.ok()) << longer.status();
    EXPECT_EQ(*longer, std::string(length, '0')) << "length " << length;
  }
}

TEST(GenerateCodeTest, MapsEachAcceptedByteToItsLastDecimalDigit) {
  // 0 -> 0, 9 -> 9, 10 -> 0, 123 -> 3, 249 (the largest accepted) -> 9.
  const absl::StatusOr<std::string> code =
      GenerateCode(10, Scripted({0, 9, 10, 123, 249, 57, 200, 31, 88, 164}));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, "0903970184");
}

TEST(GenerateCodeTest, SkipsBytesFrom250Up) {
  const absl::StatusOr<std::string> code = GenerateCode(
      6, Scripted({250, 251, 252, 253, 254, 255, 3, 14, 25, 99, 100, 249}));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, "345909")
      << "bytes 250-255 must be dropped, not mapped onto 0-5";
}

TEST(GenerateCodeTest, SkipsRejectedBytesInterleavedWithGoodOnes) {
  const absl::StatusOr<std::string> code = GenerateCode(
      6, Scripted({255, 1, 250, 2, 253, 3, 254, 4, 251, 5, 252, 6}));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, "123456");
}

TEST(GenerateCodeTest, DrawsAgainWhenAWholeDrawIsRejected) {
  // 1000 rejected bytes is more than any single draw, so the generator has
  // to come back for more, and must not stop short or emit a digit early.
  std::vector<uint8_t> script(1000, 255);
  for (uint8_t b : {7, 8, 9, 0, 1, 2, 3, 4, 5, 6}) script.push_back(b);
  const absl::StatusOr<std::string> code =
      GenerateCode(10, Scripted(std::move(script)));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, "7890123456");
}

TEST(GenerateCodeTest, FailsWhenTheRandomSourceFails) {
  const absl::StatusOr<std::string> code = GenerateCode(6, FailingAfter(0));
  EXPECT_FALSE(code.ok()) << "got a code \"" << code.value_or("")
                          << "\" from a failing random source";
}

TEST(GenerateCodeTest, FailsWhenTheRandomSourceFailsOnALaterDraw) {
  // The first draw succeeds but holds only rejected bytes; the second fails.
  const absl::StatusOr<std::string> code =
      GenerateCode(6, FailingAfter(1, 255));
  EXPECT_FALSE(code.ok()) << "got a code \"" << code.value_or("")
                          << "\" from a failing random source";
}

TEST(GenerateCodeTest, SystemRandomDigitsAreUniform) {
  // 200,000 digits; the chi-square statistic with 9 degrees of freedom is
  // above 40 with probability under 1e-5 for a uniform source, so this is
  // a check for gross bias, not a flaky statistical test.
  constexpr int kCodes = 20000;
  constexpr int kLength = 10;
  std::array<int, 10> counts{};
  for (int i = 0; i < kCodes; ++i) {
    const absl::StatusOr<std::string> code =
        GenerateCode(kLength, SystemRandom());
    ASSERT_TRUE(code.ok()) << code.status();
    for (char c : *code) ++counts[c - '0'];
  }

  const double expected = kCodes * kLength / 10.0;
  double chi_square = 0;
  for (int count : counts) {
    chi_square += (count - expected) * (count - expected) / expected;
  }
  EXPECT_LT(chi_square, 40.0)
      << "digit counts 0-9: " << counts[0] << " " << counts[1] << " "
      << counts[2] << " " << counts[3] << " " << counts[4] << " " << counts[5]
      << " " << counts[6] << " " << counts[7] << " " << counts[8] << " "
      << counts[9];
}

TEST(GenerateCodeTest, HasNoModuloBias) {
  // Fed every byte value equally often, the accepted bytes 0-249 map onto
  // each digit exactly 25 times per cycle of 256. One code of 2500 digits
  // uses exactly ten cycles' worth of accepted bytes, so each digit must
  // appear exactly 250 times. Mapping 250-255 onto 0-5 instead of
  // redrawing would make 0-5 more frequent than 6-9.
  constexpr int kLength = 2500;
  const absl::StatusOr<std::string> code =
      GenerateCode(kLength, CyclingBytes());
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(code->size(), static_cast<size_t>(kLength));

  std::array<int, 10> counts{};
  for (char c : *code) ++counts[c - '0'];
  for (int digit = 0; digit < 10; ++digit) {
    EXPECT_EQ(counts[digit], kLength / 10) << "digit " << digit;
  }
}

// ---------------------------------------------------------------------------
// NewCodeId

TEST(NewCodeIdTest, IsACanonicalVersion4Uuid) {
  for (int i = 0; i < 1000; ++i) {
    const absl::StatusOr<std::string> id = NewCodeId(SystemRandom());
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(IsCanonicalUuid(*id)) << "\"" << *id << "\"";
    EXPECT_EQ((*id)[14], '4') << "version nibble of " << *id;
    EXPECT_NE(std::string("89ab").find((*id)[19]), std::string::npos)
        << "variant nibble of " << *id;
  }
}

TEST(NewCodeIdTest, SetsVersionAndVariantBitsOverTheRandomBytes) {
  const absl::StatusOr<std::string> zeros = NewCodeId(Constant(0x00));
  ASSERT_TRUE(zeros.ok()) << zeros.status();
  EXPECT_EQ(*zeros, "00000000-0000-4000-8000-000000000000");

  const absl::StatusOr<std::string> ones = NewCodeId(Constant(0xff));
  ASSERT_TRUE(ones.ok()) << ones.status();
  EXPECT_EQ(*ones, "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

TEST(NewCodeIdTest, LaysOutTheBytesInOrder) {
  const absl::StatusOr<std::string> id = NewCodeId(CyclingBytes());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "00010203-0405-4607-8809-0a0b0c0d0e0f");
}

TEST(NewCodeIdTest, GivesDistinctIds) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const absl::StatusOr<std::string> id = NewCodeId(SystemRandom());
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(ids.insert(*id).second) << "duplicate id " << *id;
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(NewCodeIdTest, FailsWhenTheRandomSourceFails) {
  const absl::StatusOr<std::string> id = NewCodeId(FailingAfter(0));
  EXPECT_FALSE(id.ok()) << "got an id \"" << id.value_or("")
                        << "\" from a failing random source";
}

// ---------------------------------------------------------------------------
// CodeHasher

class CodeHasherTest : public ::testing::Test {
 protected:
  static Key K1() { return {"k1", std::string(32, 'k')}; }
  static Key Old() { return {"old", std::string(32, 'o')}; }

  static std::string Hex(const std::string& bytes) {
    return absl::BytesToHexString(bytes);
  }

  static std::string DigestOf(const CodeScope& scope, const std::string& code) {
    return CodeHasher({K1()}).HashCurrent(scope, code).digest;
  }

  const CodeScope scope_{"default", "login", "ada@example.com"};
};

TEST_F(CodeHasherTest, MatchesKnownAnswer) {
  // Computed independently with Python's hmac module: HMAC-SHA256 with the
  // key b"k" * 32 over b"authcode.v1.code" followed by tenant, purpose,
  // recipient and code, each prefixed by its length as 4 big-endian bytes.
  const CodeHash hash = CodeHasher({K1()}).HashCurrent(scope_, "123456");
  EXPECT_EQ(hash.key_id, "k1");
  EXPECT_EQ(Hex(hash.digest),
            "ecef51b00385a87c02c4c6a0c938daf362cc8e18723f1d101fb25b94df7ed8bd");
}

TEST_F(CodeHasherTest, DigestIs32Bytes) {
  EXPECT_EQ(DigestOf(scope_, "123456").size(), 32u);
  EXPECT_EQ(DigestOf({"", "", ""}, "").size(), 32u) << "all fields empty";
}

TEST_F(CodeHasherTest, IsDeterministic) {
  EXPECT_EQ(Hex(DigestOf(scope_, "123456")), Hex(DigestOf(scope_, "123456")));
}

TEST_F(CodeHasherTest, DigestDependsOnEveryField) {
  const std::string base = Hex(DigestOf(scope_, "123456"));
  EXPECT_NE(Hex(DigestOf({"other", "login", "ada@example.com"}, "123456")),
            base)
      << "tenant";
  EXPECT_NE(Hex(DigestOf({"default", "signup", "ada@example.com"}, "123456")),
            base)
      << "purpose";
  EXPECT_NE(Hex(DigestOf({"default", "login", "bob@example.com"}, "123456")),
            base)
      << "recipient";
  EXPECT_NE(Hex(DigestOf(scope_, "123457")), base) << "code";
  EXPECT_NE(Hex(DigestOf(scope_, "0123456")), base) << "code leading zero";
}

TEST_F(CodeHasherTest, DigestDependsOnTheKey) {
  const CodeHash k1 = CodeHasher({K1()}).HashCurrent(scope_, "123456");
  const CodeHash other =
      CodeHasher({{"k1", std::string(32, 'j')}}).HashCurrent(scope_, "123456");
  EXPECT_NE(Hex(k1.digest), Hex(other.digest))
      << "same key id, different secret";
}

TEST_F(CodeHasherTest, FieldBoundariesMatter) {
  // Plain concatenation would make each pair the same message.
  EXPECT_NE(Hex(DigestOf({"ab", "c", "r@x.io"}, "123456")),
            Hex(DigestOf({"a", "bc", "r@x.io"}, "123456")))
      << "tenant/purpose boundary";
  EXPECT_NE(Hex(DigestOf({"t", "ab", "c@x.io"}, "123456")),
            Hex(DigestOf({"t", "abc", "@x.io"}, "123456")))
      << "purpose/recipient boundary";
  EXPECT_NE(Hex(DigestOf({"t", "p", "r@x.io1"}, "23456")),
            Hex(DigestOf({"t", "p", "r@x.io"}, "123456")))
      << "recipient/code boundary";
  EXPECT_NE(Hex(DigestOf({"", "tp", "r@x.io"}, "123456")),
            Hex(DigestOf({"tp", "", "r@x.io"}, "123456")))
      << "empty field position";
}

TEST_F(CodeHasherTest, HashAllGivesEveryKeyCurrentFirst) {
  const CodeHasher ring({K1(), Old()});
  const std::vector<CodeHash> all = ring.HashAll(scope_, "123456");
  ASSERT_EQ(all.size(), 2u);

  const CodeHash current = ring.HashCurrent(scope_, "123456");
  EXPECT_EQ(all[0].key_id, "k1") << "current key first";
  EXPECT_EQ(all[0].key_id, current.key_id);
  EXPECT_EQ(Hex(all[0].digest), Hex(current.digest))
      << "first of HashAll must equal HashCurrent";

  const CodeHash old_only = CodeHasher({Old()}).HashCurrent(scope_, "123456");
  EXPECT_EQ(all[1].key_id, "old");
  EXPECT_EQ(Hex(all[1].digest), Hex(old_only.digest))
      << "second must be the old key's hash, as it was stored under it";
  EXPECT_NE(Hex(all[0].digest), Hex(all[1].digest));
  for (const CodeHash& hash : all) {
    EXPECT_EQ(hash.digest.size(), 32u) << "key " << hash.key_id;
  }
}

TEST_F(CodeHasherTest, HashCurrentUsesTheFirstKeyOfTheRing) {
  const CodeHash hash = CodeHasher({Old(), K1()}).HashCurrent(scope_, "123456");
  EXPECT_EQ(hash.key_id, "old");
  EXPECT_EQ(Hex(hash.digest),
            Hex(CodeHasher({Old()}).HashCurrent(scope_, "123456").digest));
}

}  // namespace
}  // namespace authcode
