#include "providers/message/dkim.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "providers/message/mime.h"
#include "tests/support/files.h"

namespace authcode::providers {
namespace {

namespace fs = std::filesystem;
using Canon = DkimCanonicalization;
using testing::ReadFile;
using testing::TempPath;
using testing::WriteFile;

// --- Files and processes ---------------------------------------------------

// The shared DKIM vectors: AUTHCODE_DKIM_VECTORS, or ../shared/vectors/dkim
// beside the project (found from this file's path).
fs::path VectorsDir() {
  if (const char* dir = std::getenv("AUTHCODE_DKIM_VECTORS")) return dir;
  return fs::path(__FILE__)
             .parent_path()
             .parent_path()
             .parent_path()
             .parent_path()
             .parent_path() /
         "shared" / "vectors" / "dkim";
}

// --- The independent verifier: Debian's python3-dkim ----------------------

// Verifies every DKIM-Signature of the message in argv[1], answering key
// queries from the JSON object in argv[2] ({"sel._domainkey.dom": "v=..."})
// instead of DNS.
constexpr char kVerifierScript[] = R"py(
import json, sys
import dkim

message = open(sys.argv[1], "rb").read()
records = json.load(open(sys.argv[2]))
queried = []

def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    queried.append(name)
    record = records.get(name.rstrip("."))
    return record.encode() if record is not None else None

d = dkim.DKIM(message)
count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
results, errors = [], []
for i in range(count):
    try:
        results.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
        errors.append("")
    except dkim.DKIMException as e:
        results.append(False)
        errors.append(str(e))
print(json.dumps({"results": results, "errors": errors, "queried": queried}))
)py";

// What python3-dkim says of each signature; null (and a failed test) when
// the verifier could not run.
nlohmann::json VerifyWithDkimpy(const std::string& message,
                                const nlohmann::json& records) {
  const std::string script = TempPath("dkim_verify.py");
  const std::string input = TempPath("dkim_input.eml");
  const std::string keys = TempPath("dkim_keys.json");
  const std::string output = TempPath("dkim_output.json");
  WriteFile(script, kVerifierScript);
  WriteFile(input, message);
  WriteFile(keys, records.dump());
  const std::string command =
      absl::StrCat("/usr/bin/python3 ", script, " ", input, " ", keys, " > ",
                   output, " 2>&1");
  const int status = std::system(command.c_str());
  const std::string result = ReadFile(output);
  for (const std::string& path : {script, input, keys, output}) {
    std::remove(path.c_str());
  }
  EXPECT_EQ(status, 0) << "python3-dkim failed (is the Debian package "
                          "python3-dkim installed? see "
                          "scripts/install-deps.sh): "
                       << result;
  if (status != 0) return nlohmann::json();
  return nlohmann::json::parse(result);
}

// True when python3-dkim accepts the single signature on `message`.
bool Verifies(const std::string& message, const nlohmann::json& records) {
  const nlohmann::json verdict = VerifyWithDkimpy(message, records);
  if (verdict.is_null()) return false;
  EXPECT_EQ(verdict.at("results").size(), 1u) << verdict;
  return verdict.at("results") == nlohmann::json::array({true});
}

// --- Keys made at test time ------------------------------------------------

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

PkeyPtr Generate(const char* type, size_t rsa_bits = 0) {
  EVP_PKEY* key = rsa_bits > 0
                      ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, rsa_bits)
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  EXPECT_NE(key, nullptr) << "generating a " << type << " key";
  return PkeyPtr(key);
}

PkeyPtr GenerateEc() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EXPECT_NE(key, nullptr);
  return key;
}

std::string Pem(EVP_PKEY* key, const EVP_CIPHER* cipher = nullptr) {
  BIO* bio = BIO_new(BIO_s_mem());
  static unsigned char kPassword[] = "secret";
  EXPECT_EQ(
      PEM_write_bio_PrivateKey(bio, key, cipher, cipher ? kPassword : nullptr,
                               cipher ? 6 : 0, nullptr, nullptr),
      1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string RawEd25519(EVP_PKEY* key, bool private_part) {
  std::string raw(32, '\0');
  size_t size = raw.size();
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  EXPECT_EQ(private_part ? EVP_PKEY_get_raw_private_key(key, out, &size)
                         : EVP_PKEY_get_raw_public_key(key, out, &size),
            1);
  raw.resize(size);
  return raw;
}

// The DNS TXT record publishing `key`'s public half (RFC 6376 3.6.1,
// RFC 8463 4).
std::string TxtRecord(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
    return absl::StrCat("v=DKIM1; k=ed25519; p=",
                        absl::Base64Escape(RawEd25519(key, false)));
  }
  unsigned char* der = nullptr;
  const int size = i2d_PUBKEY(key, &der);
  EXPECT_GT(size, 0);
  const std::string spki(reinterpret_cast<char*>(der),
                         static_cast<size_t>(size));
  OPENSSL_free(der);
  return absl::StrCat("v=DKIM1; k=rsa; p=", absl::Base64Escape(spki));
}

// --- Messages ---------------------------------------------------------------

struct Field {
  std::string name;
  std::string value;  // After the colon, folds kept, no final CRLF.
};

// The header fields and the body of a CRLF message, split here rather than
// by the code under test.
std::pair<std::vector<Field>, std::string> SplitMessage(
    const std::string& message) {
  const size_t end = message.find("\r\n\r\n");
  std::vector<Field> fields;
  for (absl::string_view line :
       absl::StrSplit(message.substr(0, end), "\r\n")) {
    if (line[0] == ' ' || line[0] == '\t') {
      absl::StrAppend(&fields.back().value, "\r\n", line);
    } else {
      const size_t colon = line.find(':');
      fields.push_back({std::string(line.substr(0, colon)),
                        std::string(line.substr(colon + 1))});
    }
  }
  return {fields, message.substr(end + 4)};
}

std::string WithoutWhitespace(std::string text) {
  text.erase(std::remove_if(text.begin(), text.end(),
                            [](char c) { return absl::ascii_isspace(c); }),
             text.end());
  return text;
}

// The value of tag `tag` in a DKIM-Signature value, whitespace removed.
std::string Tag(const std::string& value, const std::string& tag) {
  for (absl::string_view spec : absl::StrSplit(value, ';')) {
    const std::vector<std::string> parts =
        absl::StrSplit(spec, absl::MaxSplits('=', 1));
    if (parts.size() == 2 && WithoutWhitespace(parts[0]) == tag) {
      return WithoutWhitespace(parts[1]);
    }
  }
  return "<no " + tag + "=>";
}

Message Mail() {
  Message message;
  message.from_address = "no-reply@mail.example.com";
  message.from_name = "Zoë from Example";
  message.to_address = "alice@example.org";
  message.subject = "Ihr Anmeldecode für heute: 493027";
  message.text =
      "Code: 493027\n.leading dot\ntrailing   \n\n" + std::string(300, 'x');
  message.html = "<p>Code: <b>493027</b></p>\n<p>Grüße ✓</p>\n";
  message.headers = {{"X-Purpose", "login"}};
  return message;
}

std::string BuildMail(MimeOptions::Encoding encoding) {
  MimeOptions options;
  options.encoding = encoding;
  absl::StatusOr<MimeMessage> mime = BuildMime(Mail(), options);
  EXPECT_TRUE(mime.ok()) << mime.status();
  return mime.ok() ? mime->data : "";
}

absl::StatusOr<std::unique_ptr<DkimSigner>> Signer(
    const std::string& private_key, const std::string& selector = "sel") {
  DkimOptions options;
  options.domain = "mail.example.com";
  options.selector = selector;
  options.private_key = private_key;
  return DkimSigner::Create(options);
}

// --- Canonicalization: RFC 6376 3.4.5 ---------------------------------------

class DkimVectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(VectorsDir())) {
      GTEST_SKIP() << "the DKIM test vectors are missing: no folder "
                   << VectorsDir()
                   << " (set AUTHCODE_DKIM_VECTORS to their location)";
    }
  }
  static std::string Vector(const std::string& name) {
    return ReadFile(VectorsDir() / name);
  }
};

TEST_F(DkimVectorsTest, CanonicalizesRfc6376Example) {
  const auto [fields, body] = SplitMessage(Vector("rfc6376-3.4.5/input.eml"));
  ASSERT_EQ(fields.size(), 2u);

  const std::pair<Canon, std::string> canons[] = {{Canon::kRelaxed, "relaxed"},
                                                  {Canon::kSimple, "simple"}};
  for (const auto& [canon, name] : canons) {
    std::string headers;
    for (const Field& field : fields) {
      headers += CanonicalizeHeader(canon, field.name, field.value);
    }
    EXPECT_EQ(headers, Vector(absl::StrCat("rfc6376-3.4.5/expected-", name,
                                           "-headers.bin")))
        << name;
    EXPECT_EQ(
        CanonicalizeBody(canon, body),
        Vector(absl::StrCat("rfc6376-3.4.5/expected-", name, "-body.bin")))
        << name;
  }
}

TEST_F(DkimVectorsTest, BodyHashesMatchPublishedValues) {
  const std::string body =
      SplitMessage(Vector("rfc8463-appendix-a/unsigned-message.crlf.eml"))
          .second;
  EXPECT_EQ(DkimBodyHash(Canon::kSimple, body),
            "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=");
  EXPECT_EQ(DkimBodyHash(Canon::kRelaxed, body),
            "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
  EXPECT_EQ(DkimBodyHash(Canon::kSimple, ""),
            "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
  EXPECT_EQ(DkimBodyHash(Canon::kRelaxed, ""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

TEST(DkimCanonicalizationTest, EdgeCases) {
  // Relaxed: no space after the colon, inner runs to one space, the value
  // trimmed, the name lower-cased and trimmed.
  EXPECT_EQ(
      CanonicalizeHeader(Canon::kRelaxed, "Subject ", " \tRe:  a\r\n \tb  "),
      "subject:Re: a b\r\n");
  EXPECT_EQ(CanonicalizeHeader(Canon::kRelaxed, "X-Empty", "   "),
            "x-empty:\r\n");
  EXPECT_EQ(CanonicalizeHeader(Canon::kSimple, "X-Empty", "   "),
            "X-Empty:   \r\n");
  // Bodies: a missing final CRLF is added; empty lines at the end dropped;
  // whitespace-only lines are empty in relaxed.
  EXPECT_EQ(CanonicalizeBody(Canon::kSimple, "a"), "a\r\n");
  EXPECT_EQ(CanonicalizeBody(Canon::kRelaxed, "a \t"), "a\r\n");
  EXPECT_EQ(CanonicalizeBody(Canon::kSimple, "\r\n\r\n"), "\r\n");
  EXPECT_EQ(CanonicalizeBody(Canon::kRelaxed, "a\r\n \t\r\n\r\n"), "a\r\n");
  EXPECT_EQ(CanonicalizeBody(Canon::kSimple, "a\r\n \t\r\n\r\n"),
            "a\r\n \t\r\n");
  EXPECT_EQ(CanonicalizeBody(Canon::kRelaxed, "\r\n\r\n"), "");
}

// --- RFC 8463 Appendix A -----------------------------------------------------

struct PublishedSignature {
  std::string algorithm;
  std::string key_file;
  std::string selector;
  std::string input_file;  // The exact data the published b= signs.
  absl::Time time;
};

class Rfc8463Test : public DkimVectorsTest,
                    public ::testing::WithParamInterface<PublishedSignature> {
 protected:
  DkimOptions Options() const {
    DkimOptions options;
    options.domain = "football.example.com";
    options.selector = GetParam().selector;
    options.private_key = Vector("rfc8463-appendix-a/" + GetParam().key_file);
    options.header_canon = Canon::kSimple;
    options.body_canon = Canon::kSimple;
    options.signed_headers = {"from",       "to",   "subject", "date",
                              "message-id", "from", "subject", "date"};
    return options;
  }

  // The published DKIM-Signature value of this algorithm.
  std::string PublishedValue() const {
    const auto fields =
        SplitMessage(Vector("rfc8463-appendix-a/signed-message.crlf.eml"))
            .first;
    for (const Field& field : fields) {
      if (field.name == "DKIM-Signature" &&
          Tag(field.value, "a") == GetParam().algorithm) {
        return field.value;
      }
    }
    ADD_FAILURE() << "no " << GetParam().algorithm << " signature";
    return "";
  }

  static nlohmann::json PublishedRecords() {
    nlohmann::json records;
    for (const char* selector : {"brisbane", "test"}) {
      const std::string name =
          absl::StrCat(selector, "._domainkey.football.example.com");
      std::string record =
          Vector(absl::StrCat("rfc8463-appendix-a/", name, ".txt"));
      while (!record.empty() && absl::ascii_isspace(record.back())) {
        record.pop_back();
      }
      records[name] = record;
    }
    return records;
  }
};

// Sign() lays its field out differently from the published one (no i= or
// q=, no spaces around ':' in h=), so its b= cannot equal the published b=;
// the exact data the published b= signs is rebuilt here instead, and signed
// by the same code Sign() uses.
TEST_P(Rfc8463Test, ReproducesPublishedSignatureByteForByte) {
  absl::StatusOr<std::unique_ptr<DkimSigner>> signer =
      DkimSigner::Create(Options());
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ((*signer)->algorithm(), GetParam().algorithm);

  const auto [fields, body] =
      SplitMessage(Vector("rfc8463-appendix-a/unsigned-message.crlf.eml"));
  const std::string published = PublishedValue();
  EXPECT_EQ(DkimBodyHash(Canon::kSimple, body), Tag(published, "bh"));

  // h= is from:to:subject:date:message-id plus over-signed names that
  // select nothing more; each header appears once.
  std::string data;
  for (const char* name : {"From", "To", "Subject", "Date", "Message-ID"}) {
    for (const Field& field : fields) {
      if (field.name == name) {
        data += CanonicalizeHeader(Canon::kSimple, field.name, field.value);
      }
    }
  }
  const std::string empty_b = std::regex_replace(
      published, std::regex(R"(([;\s]b=)[\sA-Za-z0-9+/=]*$)"), "$1");
  data += CanonicalizeHeader(Canon::kSimple, "DKIM-Signature", empty_b);
  data.resize(data.size() - 2);  // No final CRLF.
  ASSERT_EQ(data, Vector("rfc8463-appendix-a/" + GetParam().input_file));

  const absl::StatusOr<std::string> signature = (*signer)->SignatureOf(data);
  ASSERT_TRUE(signature.ok()) << signature.status();
  EXPECT_EQ(*signature, Tag(published, "b"));
}

TEST_P(Rfc8463Test, SignVerifiesAgainstPublishedKeys) {
  absl::StatusOr<std::unique_ptr<DkimSigner>> signer =
      DkimSigner::Create(Options());
  ASSERT_TRUE(signer.ok()) << signer.status();
  const std::string unsigned_message =
      Vector("rfc8463-appendix-a/unsigned-message.crlf.eml");
  absl::StatusOr<std::string> header =
      (*signer)->Sign(unsigned_message, GetParam().time);
  ASSERT_TRUE(header.ok()) << header.status();

  const std::string value = header->substr(header->find(':') + 1);
  const std::string published = PublishedValue();
  for (const char* tag : {"v", "a", "c", "d", "s", "t", "bh"}) {
    EXPECT_EQ(Tag(value, tag), Tag(published, tag)) << tag;
  }
  EXPECT_EQ(Tag(value, "h"), Tag(published, "h"));

  const nlohmann::json verdict =
      VerifyWithDkimpy(*header + unsigned_message, PublishedRecords());
  ASSERT_FALSE(verdict.is_null());
  EXPECT_EQ(verdict.at("results"), nlohmann::json::array({true})) << verdict;
  EXPECT_EQ(verdict.at("queried"),
            nlohmann::json::array({absl::StrCat(
                GetParam().selector, "._domainkey.football.example.com.")}));
}

INSTANTIATE_TEST_SUITE_P(
    Algorithms, Rfc8463Test,
    ::testing::Values(PublishedSignature{"ed25519-sha256",
                                         "ed25519-private-seed.b64", "brisbane",
                                         "ed25519-signature-input.simple.bin",
                                         absl::FromUnixSeconds(1518460054)},
                      PublishedSignature{"rsa-sha256", "rsa-private.pem",
                                         "test",
                                         "rsa-signature-input.simple.bin",
                                         absl::FromUnixSeconds(1527915362)}),
    [](const auto& param_info) {
      return param_info.param.selector == "test" ? "Rsa" : "Ed25519";
    });

// --- Sign, then verify with python3-dkim -------------------------------------

enum class KeyForm { kRsaPem, kEd25519Pem, kEd25519Seed };

class DkimSignTest : public ::testing::TestWithParam<KeyForm> {
 protected:
  void SetUp() override {
    key_ = GetParam() == KeyForm::kRsaPem ? Generate("RSA", 2048)
                                          : Generate("ED25519");
    ASSERT_NE(key_, nullptr);
    private_key_ = GetParam() == KeyForm::kEd25519Seed
                       ? absl::Base64Escape(RawEd25519(key_.get(), true))
                       : Pem(key_.get());
    records_["sel._domainkey.mail.example.com"] = TxtRecord(key_.get());
  }

  std::unique_ptr<DkimSigner> SignerOrDie() {
    absl::StatusOr<std::unique_ptr<DkimSigner>> signer = Signer(private_key_);
    EXPECT_TRUE(signer.ok()) << signer.status();
    return signer.ok() ? *std::move(signer) : nullptr;
  }

  // `message` with a signature made now in front.
  std::string Signed(const DkimSigner& signer, const std::string& message) {
    absl::StatusOr<std::string> header = signer.Sign(message);
    EXPECT_TRUE(header.ok()) << header.status();
    return header.ok() ? *header + message : "";
  }

  PkeyPtr key_;
  std::string private_key_;
  nlohmann::json records_;
};

TEST_P(DkimSignTest, BuiltMailVerifies) {
  std::unique_ptr<DkimSigner> signer = SignerOrDie();
  ASSERT_NE(signer, nullptr);
  EXPECT_EQ(signer->algorithm(),
            GetParam() == KeyForm::kRsaPem ? "rsa-sha256" : "ed25519-sha256");
  EXPECT_EQ(signer->domain(), "mail.example.com");

  for (const auto encoding : {MimeOptions::Encoding::kQuotedPrintable,
                              MimeOptions::Encoding::kBase64}) {
    const std::string message = BuildMail(encoding);
    const std::string signed_message = Signed(*signer, message);
    const nlohmann::json verdict = VerifyWithDkimpy(signed_message, records_);
    ASSERT_FALSE(verdict.is_null());
    EXPECT_EQ(verdict.at("results"), nlohmann::json::array({true}))
        << verdict << "\n"
        << signed_message;
  }
}

TEST_P(DkimSignTest, FieldIsFoldedCrlfWithSensibleTags) {
  std::unique_ptr<DkimSigner> signer = SignerOrDie();
  ASSERT_NE(signer, nullptr);
  const absl::Time now = absl::FromUnixSeconds(1709647387);
  absl::StatusOr<std::string> header =
      signer->Sign(BuildMail(MimeOptions::Encoding::kQuotedPrintable), now);
  ASSERT_TRUE(header.ok()) << header.status();

  ASSERT_TRUE(absl::StartsWith(*header, "DKIM-Signature: v=1; "));
  ASSERT_TRUE(absl::EndsWith(*header, "\r\n"));
  const std::string value = header->substr(15, header->size() - 17);
  for (absl::string_view line : absl::StrSplit(*header, "\r\n")) {
    EXPECT_LE(line.size(), 78u) << line;
  }
  EXPECT_EQ(absl::StrReplaceAll(value, {{"\r\n ", ""}}).find_first_of("\r\n"),
            std::string::npos)
      << "a line break that is not a fold";

  EXPECT_EQ(Tag(value, "c"), "relaxed/relaxed");
  EXPECT_EQ(Tag(value, "d"), "mail.example.com");
  EXPECT_EQ(Tag(value, "s"), "sel");
  EXPECT_EQ(Tag(value, "t"), "1709647387");
  EXPECT_EQ(Tag(value, "h"),
            "from:to:subject:date:message-id:mime-version:content-type:from:"
            "subject:date");
  EXPECT_EQ(Tag(value, "l"), "<no l=>");
  EXPECT_EQ(Tag(value, "i"), "<no i=>");
}

TEST_P(DkimSignTest, TamperingBreaksVerification) {
  std::unique_ptr<DkimSigner> signer = SignerOrDie();
  ASSERT_NE(signer, nullptr);
  const std::string signed_message =
      Signed(*signer, BuildMail(MimeOptions::Encoding::kQuotedPrintable));
  ASSERT_TRUE(Verifies(signed_message, records_));

  // One character of the body.
  std::string tampered = signed_message;
  const size_t code = tampered.rfind("493027");
  ASSERT_NE(code, std::string::npos);
  tampered[code] = '5';
  EXPECT_FALSE(Verifies(tampered, records_)) << "body changed";

  // A second Subject on top: over-signing makes that count as a change.
  tampered = "Subject: Urgent: reset your password\r\n" + signed_message;
  EXPECT_FALSE(Verifies(tampered, records_)) << "Subject added";

  // Relaxed canonicalization forgives refolding, not rewording.
  tampered = absl::StrReplaceAll(signed_message,
                                 {{"\r\nTo: alice@example.org\r\n",
                                   "\r\nTo:    alice@example.org  \r\n"}});
  ASSERT_NE(tampered, signed_message);
  EXPECT_TRUE(Verifies(tampered, records_)) << "whitespace only";

  // Another key under the same name.
  nlohmann::json other = records_;
  other["sel._domainkey.mail.example.com"] =
      TxtRecord((GetParam() == KeyForm::kRsaPem ? Generate("RSA", 2048)
                                                : Generate("ED25519"))
                    .get());
  EXPECT_FALSE(Verifies(signed_message, other)) << "wrong key";
}

TEST_P(DkimSignTest, ConcurrentSignsAgree) {
  std::unique_ptr<DkimSigner> signer = SignerOrDie();
  ASSERT_NE(signer, nullptr);
  const std::string message = BuildMail(MimeOptions::Encoding::kBase64);
  const absl::Time now = absl::FromUnixSeconds(1709647387);
  const absl::StatusOr<std::string> expected = signer->Sign(message, now);
  ASSERT_TRUE(expected.ok());

  // Both algorithms are deterministic, so every thread must get the same.
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const absl::StatusOr<std::string> header = signer->Sign(message, now);
        mismatches[t] += !header.ok() || *header != *expected;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

INSTANTIATE_TEST_SUITE_P(Keys, DkimSignTest,
                         ::testing::Values(KeyForm::kRsaPem,
                                           KeyForm::kEd25519Pem,
                                           KeyForm::kEd25519Seed),
                         [](const auto& param_info) {
                           switch (param_info.param) {
                             case KeyForm::kRsaPem:
                               return "Rsa2048Pem";
                             case KeyForm::kEd25519Pem:
                               return "Ed25519Pem";
                             case KeyForm::kEd25519Seed:
                               return "Ed25519Seed";
                           }
                           return "Unknown";
                         });

// --- Failures ----------------------------------------------------------------

void ExpectCreateFails(const DkimOptions& options, const std::string& option,
                       const std::string& detail) {
  const absl::StatusOr<std::unique_ptr<DkimSigner>> signer =
      DkimSigner::Create(options);
  ASSERT_FALSE(signer.ok()) << option << " " << detail;
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(signer.status().message(),
                                absl::StrCat("DKIM ", option, ": ")))
      << signer.status();
  EXPECT_TRUE(absl::StrContains(signer.status().message(), detail))
      << signer.status();
}

TEST(DkimCreateTest, RejectsBadKeys) {
  DkimOptions options;
  options.domain = "mail.example.com";
  options.selector = "sel";

  options.private_key =
      "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
  ExpectCreateFails(options, "private_key", "not a readable PEM private key");
  options.private_key = "garbage";
  ExpectCreateFails(options, "private_key", "32-byte Ed25519 seed");
  options.private_key = absl::Base64Escape(std::string(31, 'k'));
  ExpectCreateFails(options, "private_key", "32-byte Ed25519 seed");
  options.private_key = "";
  ExpectCreateFails(options, "private_key", "32-byte Ed25519 seed");

  const PkeyPtr weak = Generate("RSA", 512);
  ASSERT_NE(weak, nullptr);
  options.private_key = Pem(weak.get());
  ExpectCreateFails(options, "private_key", "has 512 bits");
  ExpectCreateFails(options, "private_key", "at least 1024");

  const PkeyPtr ec = GenerateEc();
  ASSERT_NE(ec, nullptr);
  options.private_key = Pem(ec.get());
  ExpectCreateFails(options, "private_key", "unsupported key type EC");

  // Encrypted: refused, and without prompting on the terminal.
  const PkeyPtr ed = Generate("ED25519");
  options.private_key = Pem(ed.get(), EVP_aes_128_cbc());
  ASSERT_TRUE(absl::StrContains(options.private_key, "ENCRYPTED"));
  ExpectCreateFails(options, "private_key", "encrypted keys");

  // A public key is not a private key.
  options.private_key =
      "-----BEGIN PUBLIC KEY-----\n"
      "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
      "-----END PUBLIC KEY-----\n";
  ExpectCreateFails(options, "private_key", "not a readable PEM private key");
}

TEST(DkimCreateTest, PublicKeyIsWhatTheTxtRecordPublishes) {
  for (const char* type : {"RSA", "ED25519"}) {
    const PkeyPtr key = Generate(type, std::string(type) == "RSA" ? 2048 : 0);
    ASSERT_NE(key, nullptr);
    absl::StatusOr<std::unique_ptr<DkimSigner>> signer =
        Signer(Pem(key.get()), "s2024");
    ASSERT_TRUE(signer.ok()) << signer.status();

    const DkimPublicKey& published = (*signer)->public_key();
    EXPECT_EQ(published.domain, "mail.example.com");
    EXPECT_EQ(published.selector, "s2024");
    EXPECT_EQ(absl::StrCat("v=DKIM1; k=", published.type,
                           "; p=", absl::Base64Escape(published.key)),
              TxtRecord(key.get()))
        << type;
  }
}

TEST(DkimCreateTest, RejectsBadNames) {
  const PkeyPtr key = Generate("ED25519");
  DkimOptions options;
  options.private_key = Pem(key.get());
  options.selector = "sel";
  for (const char* domain : {"", "exa mple.com", "example.com;", ".example",
                             "example..com", "bücher.example"}) {
    options.domain = domain;
    ExpectCreateFails(options, "domain", "not an ASCII domain name");
  }
  options.domain = "example.com";
  for (const char* selector : {"", "s;t", "s=1", "s\r\nx"}) {
    options.selector = selector;
    ExpectCreateFails(options, "selector", "not a DNS label");
  }
  options.selector = "2024-01._mail";
  EXPECT_TRUE(DkimSigner::Create(options).ok());

  options.signed_headers = {"to", "subject"};
  ExpectCreateFails(options, "signed_headers", "must include From");
  options.signed_headers = {"from", "x:y"};
  ExpectCreateFails(options, "signed_headers", "not a header field name");
  options.signed_headers = {"from", "x;bh=forged"};
  ExpectCreateFails(options, "signed_headers", "not a header field name");
  options.signed_headers = {"From", "To"};
  EXPECT_TRUE(DkimSigner::Create(options).ok());
}

TEST(DkimSignFailureTest, MessageWithoutFromOrWithBadHeader) {
  const PkeyPtr key = Generate("ED25519");
  absl::StatusOr<std::unique_ptr<DkimSigner>> signer = Signer(Pem(key.get()));
  ASSERT_TRUE(signer.ok()) << signer.status();

  absl::StatusOr<std::string> header =
      (*signer)->Sign("To: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(header.status().message(), "no From"));

  header = (*signer)->Sign("From: a@example.com\r\nno colon\r\n\r\nbody\r\n");
  ASSERT_FALSE(header.ok());
  EXPECT_TRUE(absl::StrContains(header.status().message(), "without a colon"));

  header = (*signer)->Sign(" folded first\r\nFrom: a@example.com\r\n\r\n");
  ASSERT_FALSE(header.ok());
}

}  // namespace
}  // namespace authcode::providers
