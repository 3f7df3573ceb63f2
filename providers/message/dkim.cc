#include "providers/message/dkim.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/status_macros.h"

namespace authcode::providers {
namespace {

constexpr int kMinRsaBits = 1024;
constexpr size_t kEd25519SeedBytes = 32;
// The DKIM-Signature field is folded to lines of at most this many
// characters.
constexpr size_t kFoldWidth = 78;
constexpr char kFieldName[] = "DKIM-Signature";

// RFC 6376 5.4.1's recommended set: the From is signed twice (over-signed)
// with Subject and Date, so that a second one cannot be added unnoticed.
constexpr const char* kDefaultSignedHeaders[] = {
    "from",         "to",           "subject", "date",    "message-id",
    "mime-version", "content-type", "from",    "subject", "date"};

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

absl::string_view ToAbsl(std::string_view value) {
  return absl::string_view(value.data(), value.size());
}

std::string_view ToStd(absl::string_view value) {
  return std::string_view(value.data(), value.size());
}

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

// The oldest error OpenSSL queued, and the queue emptied, so that it does
// not surface later in unrelated code.
std::string OpensslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no detail from OpenSSL";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

// --- Options -------------------------------------------------------------

// Letters, digits and `extra`, in dot-separated non-empty labels.
bool IsDnsName(std::string_view name, const char* extra) {
  if (name.empty() || name.size() > 253 || name.front() == '.' ||
      name.back() == '.' || name.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [extra](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
           (c != 0 && std::strchr(extra, c) != nullptr);
  });
}

// A field name that can stand in h=: printable ASCII but ':' and, as it
// would end the tag, ';'.
bool IsSignableFieldName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return c >= 33 && c <= 126 && c != ':' && c != ';';
  });
}

absl::StatusOr<std::vector<std::string>> SignedHeaders(
    const std::vector<std::string>& requested) {
  std::vector<std::string> names;
  if (requested.empty()) {
    names.assign(std::begin(kDefaultSignedHeaders),
                 std::end(kDefaultSignedHeaders));
    return names;
  }
  for (const std::string& name : requested) {
    if (!IsSignableFieldName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("DKIM signed_headers: \"", absl::CHexEscape(name),
                       "\" is not a header field name"));
    }
    names.push_back(absl::AsciiStrToLower(name));
  }
  if (std::find(names.begin(), names.end(), "from") == names.end()) {
    return absl::InvalidArgumentError(
        "DKIM signed_headers: must include From (RFC 6376 5.4)");
  }
  return names;
}

// --- Keys ----------------------------------------------------------------

// Encrypted PEM keys are refused rather than prompted for on a terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<PkeyPtr> ReadPemKey(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::InternalError(OpensslError());
  PkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DKIM private_key: not a readable PEM private key (encrypted keys "
        "are not supported): ",
        OpensslError()));
  }
  return key;
}

absl::StatusOr<PkeyPtr> ReadEd25519Seed(std::string_view base64) {
  std::string seed;
  if (!absl::Base64Unescape(ToAbsl(base64), &seed) ||
      seed.size() != kEd25519SeedBytes) {
    return absl::InvalidArgumentError(
        "DKIM private_key: neither a PEM private key nor the base64 of a "
        "32-byte Ed25519 seed");
  }
  PkeyPtr key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DKIM private_key: not a usable Ed25519 seed: ", OpensslError()));
  }
  return key;
}

// The key, and "rsa-sha256" or "ed25519-sha256" for it.
absl::StatusOr<std::pair<PkeyPtr, std::string>> LoadKey(std::string_view text) {
  const std::string_view trimmed =
      ToStd(absl::StripAsciiWhitespace(ToAbsl(text)));
  absl::StatusOr<PkeyPtr> key = absl::StrContains(ToAbsl(trimmed), "-----BEGIN")
                                    ? ReadPemKey(trimmed)
                                    : ReadEd25519Seed(trimmed);
  if (!key.ok()) return key.status();

  switch (EVP_PKEY_get_base_id(key->get())) {
    case EVP_PKEY_ED25519:
      return std::make_pair(*std::move(key), std::string("ed25519-sha256"));
    case EVP_PKEY_RSA:
      if (const int bits = EVP_PKEY_get_bits(key->get()); bits < kMinRsaBits) {
        return absl::InvalidArgumentError(absl::StrCat(
            "DKIM private_key: the RSA key has ", bits, " bits; at least ",
            kMinRsaBits, " are required (2048 advised)"));
      }
      return std::make_pair(*std::move(key), std::string("rsa-sha256"));
    default: {
      const char* type = EVP_PKEY_get0_type_name(key->get());
      return absl::InvalidArgumentError(absl::StrCat(
          "DKIM private_key: unsupported key type ",
          type == nullptr ? "(unknown)" : type, "; use RSA or Ed25519"));
    }
  }
}

// The p= bytes of `key`: RFC 6376 publishes an RSA key as its
// SubjectPublicKeyInfo, RFC 8463 an Ed25519 key as its raw 32 bytes.
absl::StatusOr<std::string> PublicKeyBytes(EVP_PKEY* key, bool ed25519) {
  if (ed25519) {
    std::string raw(kEd25519SeedBytes, '\0');
    size_t length = raw.size();
    if (EVP_PKEY_get_raw_public_key(
            key, reinterpret_cast<unsigned char*>(raw.data()), &length) != 1) {
      return absl::InternalError(absl::StrCat("DKIM: ", OpensslError()));
    }
    raw.resize(length);
    return raw;
  }
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(key, &der);
  if (length <= 0) {
    return absl::InternalError(absl::StrCat("DKIM: ", OpensslError()));
  }
  std::string bytes(reinterpret_cast<const char*>(der),
                    static_cast<size_t>(length));
  OPENSSL_free(der);
  return bytes;
}

std::string Sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

// --- Messages ------------------------------------------------------------

struct HeaderField {
  std::string_view name;   // As written, before the colon.
  std::string_view value;  // After the colon, folds kept, no final CRLF.
};

struct SplitMessage {
  std::vector<HeaderField> fields;
  std::string_view body;
};

// Splits a CRLF message into its header fields and its body.
absl::StatusOr<SplitMessage> Split(std::string_view message) {
  SplitMessage split;
  size_t pos = 0;
  while (pos < message.size()) {
    size_t end = message.find("\r\n", pos);
    const std::string_view line = message.substr(pos, end - pos);
    const size_t next =
        end == std::string_view::npos ? message.size() : end + 2;
    if (line.empty()) {
      split.body = message.substr(next);
      return split;
    }
    if (IsWsp(line.front())) {
      if (split.fields.empty()) {
        return absl::InvalidArgumentError(
            "DKIM: the message starts with a continuation line");
      }
      std::string_view& value = split.fields.back().value;
      value = std::string_view(value.data(),
                               line.data() + line.size() - value.data());
    } else {
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        return absl::InvalidArgumentError(
            "DKIM: the message holds a header line without a colon");
      }
      split.fields.push_back({line.substr(0, colon), line.substr(colon + 1)});
    }
    pos = next;
  }
  return split;  // Headers only: the body is empty.
}

std::string_view TrimmedName(std::string_view name) {
  while (!name.empty() && IsWsp(name.back())) name.remove_suffix(1);
  return name;
}

// RFC 6376 5.4.2: each listed name takes the last instance not yet taken;
// a name with none left (over-signing) adds nothing.
std::string CanonicalSignedFields(const std::vector<HeaderField>& fields,
                                  const std::vector<std::string>& names,
                                  DkimCanonicalization canon) {
  std::vector<bool> taken(fields.size(), false);
  std::string out;
  for (const std::string& name : names) {
    for (size_t i = fields.size(); i-- > 0;) {
      if (taken[i] ||
          !absl::EqualsIgnoreCase(ToAbsl(TrimmedName(fields[i].name)), name)) {
        continue;
      }
      taken[i] = true;
      out += CanonicalizeHeader(canon, ToAbsl(fields[i].name),
                                ToAbsl(fields[i].value));
      break;
    }
  }
  return out;
}

// Builds a header field value from pieces, folding between them so that
// lines stay within kFoldWidth where the pieces allow.
class Folder {
 public:
  explicit Folder(size_t used) : line_(used) {}

  // `piece`, after a space or, when the line is full, a fold.
  void Spaced(std::string_view piece) { Append(piece, " "); }
  // `piece` straight after the previous one or, when the line is full,
  // after a fold (which is FWS where the grammar allows it).
  void Joined(std::string_view piece) { Append(piece, ""); }
  // `text` split across as many lines as it needs.
  void Wrapped(std::string_view text) {
    while (!text.empty()) {
      if (line_ >= kFoldWidth) Fold();
      const size_t room = kFoldWidth - line_;
      Raw(text.substr(0, room));
      text.remove_prefix(std::min(room, text.size()));
    }
  }
  const std::string& text() const { return out_; }

 private:
  void Append(std::string_view piece, const char* separator) {
    if (line_ + std::strlen(separator) + piece.size() > kFoldWidth) {
      Fold();
    } else {
      Raw(separator);
    }
    Raw(piece);
  }
  void Fold() {
    out_ += "\r\n ";
    line_ = 1;
  }
  void Raw(std::string_view text) {
    out_.append(text.data(), text.size());
    line_ += text.size();
  }

  std::string out_;
  size_t line_;
};

}  // namespace

// --- Canonicalization ----------------------------------------------------

std::string CanonicalizeHeader(DkimCanonicalization canon,
                               absl::string_view name,
                               absl::string_view value) {
  if (canon == DkimCanonicalization::kSimple) {
    return absl::StrCat(name, ":", value, "\r\n");
  }

  std::string out = absl::AsciiStrToLower(ToAbsl(TrimmedName(ToStd(name))));
  out += ':';
  // Unfolded; runs of whitespace become one space, none at either end.
  bool started = false;
  bool space = false;
  for (char c : value) {
    if (c == '\r' || c == '\n') continue;
    if (IsWsp(c)) {
      space = true;
      continue;
    }
    if (space && started) out += ' ';
    started = true;
    space = false;
    out += c;
  }
  out += "\r\n";
  return out;
}

std::string CanonicalizeBody(DkimCanonicalization canon,
                             absl::string_view body) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\r\n", pos);
    std::string line(body.substr(pos, end - pos));
    pos = end == absl::string_view::npos ? body.size() : end + 2;

    if (canon == DkimCanonicalization::kRelaxed) {
      std::string relaxed;
      for (char c : line) {
        if (IsWsp(c)) {
          if (relaxed.empty() || relaxed.back() != ' ') relaxed += ' ';
        } else {
          relaxed += c;
        }
      }
      while (!relaxed.empty() && relaxed.back() == ' ') relaxed.pop_back();
      line = std::move(relaxed);
    }
    lines.push_back(std::move(line));
  }

  // Empty lines at the end are dropped; an empty body stays empty in
  // relaxed and becomes one CRLF in simple.
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) {
    return canon == DkimCanonicalization::kSimple ? "\r\n" : "";
  }
  return absl::StrCat(absl::StrJoin(lines, "\r\n"), "\r\n");
}

std::string DkimBodyHash(DkimCanonicalization canon, absl::string_view body) {
  return absl::Base64Escape(Sha256(ToStd(CanonicalizeBody(canon, body))));
}

// --- Signer --------------------------------------------------------------

struct DkimSigner::Impl {
  std::string domain;
  std::string selector;
  PkeyPtr key;
  std::string algorithm;
  DkimCanonicalization header_canon;
  DkimCanonicalization body_canon;
  std::vector<std::string> signed_headers;
  bool include_timestamp;
  DkimPublicKey public_key;

  // The DKIM-Signature value up to and including its empty "b=", folded.
  Folder UnsignedValue(absl::Time now, const std::string& body_hash) const {
    const auto canon_name = [](DkimCanonicalization canon) {
      return canon == DkimCanonicalization::kSimple ? "simple" : "relaxed";
    };
    Folder value(std::strlen(kFieldName) + 1);
    value.Spaced("v=1;");
    value.Spaced(absl::StrCat("a=", algorithm, ";"));
    value.Spaced(absl::StrCat("c=", canon_name(header_canon), "/",
                              canon_name(body_canon), ";"));
    value.Spaced(absl::StrCat("d=", domain, ";"));
    value.Spaced(absl::StrCat("s=", selector, ";"));
    if (include_timestamp) {
      value.Spaced(absl::StrCat("t=", absl::ToUnixSeconds(now), ";"));
    }
    // h= may fold after any ':' (RFC 6376 3.5 allows FWS there).
    for (size_t i = 0; i < signed_headers.size(); ++i) {
      const bool last = i + 1 == signed_headers.size();
      const std::string piece =
          absl::StrCat(i == 0 ? "h=" : "", signed_headers[i], last ? ";" : ":");
      if (i == 0) {
        value.Spaced(piece);
      } else {
        value.Joined(piece);
      }
    }
    value.Spaced(absl::StrCat("bh=", body_hash, ";"));
    value.Spaced("b=");
    return value;
  }
};

DkimSigner::DkimSigner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DkimSigner::~DkimSigner() = default;

absl::StatusOr<std::unique_ptr<DkimSigner>> DkimSigner::Create(
    const DkimOptions& options) {
  if (!IsDnsName(options.domain, "-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("DKIM domain: \"", absl::CHexEscape(options.domain),
                     "\" is not an ASCII domain name"));
  }
  if (!IsDnsName(options.selector, "-_")) {
    return absl::InvalidArgumentError(
        absl::StrCat("DKIM selector: \"", absl::CHexEscape(options.selector),
                     "\" is not a DNS label"));
  }
  auto impl = std::make_unique<Impl>();
  impl->domain = options.domain;
  impl->selector = options.selector;
  ASSIGN_OR_RETURN(impl->signed_headers, SignedHeaders(options.signed_headers));
  ASSIGN_OR_RETURN(std::tie(impl->key, impl->algorithm),
                   LoadKey(options.private_key));
  impl->header_canon = options.header_canon;
  impl->body_canon = options.body_canon;
  impl->include_timestamp = options.include_timestamp;
  const bool ed25519 = impl->algorithm == "ed25519-sha256";
  ASSIGN_OR_RETURN(impl->public_key.key,
                   PublicKeyBytes(impl->key.get(), ed25519));
  impl->public_key.domain = impl->domain;
  impl->public_key.selector = impl->selector;
  impl->public_key.type = ed25519 ? "ed25519" : "rsa";

  std::unique_ptr<DkimSigner> signer(new DkimSigner(std::move(impl)));
  // A key OpenSSL reads but cannot sign with fails now, not on each mail.
  if (absl::StatusOr<std::string> probe = signer->SignatureOf("probe");
      !probe.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("DKIM private_key: cannot sign with the key: ",
                     probe.status().message()));
  }
  return signer;
}

const std::string& DkimSigner::algorithm() const { return impl_->algorithm; }
const std::string& DkimSigner::domain() const { return impl_->domain; }
const std::string& DkimSigner::selector() const { return impl_->selector; }
const DkimPublicKey& DkimSigner::public_key() const {
  return impl_->public_key;
}

absl::StatusOr<std::string> DkimSigner::SignatureOf(
    absl::string_view data) const {
  // RFC 8463: Ed25519 signs the SHA-256 of the data (PureEdDSA over the
  // digest); RSA hashes the data itself, inside EVP_DigestSign.
  const bool ed25519 =
      EVP_PKEY_get_base_id(impl_->key.get()) == EVP_PKEY_ED25519;
  const std::string digest = ed25519 ? Sha256(ToStd(data)) : std::string();
  const std::string_view input = ed25519 ? digest : ToStd(data);

  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t length = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(input.data());
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, ed25519 ? nullptr : EVP_sha256(),
                         nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, bytes, input.size()) != 1) {
    return absl::InternalError(absl::StrCat("DKIM: ", OpensslError()));
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()),
                     &length, bytes, input.size()) != 1) {
    return absl::InternalError(absl::StrCat("DKIM: ", OpensslError()));
  }
  signature.resize(length);
  return absl::Base64Escape(signature);
}

absl::StatusOr<std::string> DkimSigner::Sign(absl::string_view message,
                                             absl::Time now) const {
  ASSIGN_OR_RETURN(const SplitMessage split, Split(ToStd(message)));
  if (std::none_of(split.fields.begin(), split.fields.end(),
                   [](const HeaderField& field) {
                     return absl::EqualsIgnoreCase(
                         ToAbsl(TrimmedName(field.name)), "from");
                   })) {
    return absl::InvalidArgumentError("DKIM: the message has no From header");
  }

  Folder value = impl_->UnsignedValue(
      now, DkimBodyHash(impl_->body_canon, ToAbsl(split.body)));

  // RFC 6376 3.7: the signed fields, then this field with an empty b= and
  // without its final CRLF.
  std::string data = CanonicalSignedFields(split.fields, impl_->signed_headers,
                                           impl_->header_canon);
  data += CanonicalizeHeader(impl_->header_canon, kFieldName, value.text());
  data.resize(data.size() - 2);

  ASSIGN_OR_RETURN(const std::string signature, SignatureOf(data));
  value.Wrapped(signature);
  return absl::StrCat(kFieldName, ":", value.text(), "\r\n");
}

absl::StatusOr<std::shared_ptr<const DkimSigner>> DkimSignerFromSettings(
    const ProviderSettings& settings) {
  const std::string domain = settings.GetString("dkim_domain", "");
  const std::string selector = settings.GetString("dkim_selector", "");
  const std::string key_file = settings.GetString("dkim_key_file", "");
  const int set = !domain.empty() + !selector.empty() + !key_file.empty();
  if (set == 0) return std::shared_ptr<const DkimSigner>();
  if (set != 3) {
    return settings.Error("dkim_domain",
                          "set all of dkim_domain, dkim_selector, "
                          "dkim_key_file, or none");
  }

  absl::StatusOr<std::string> key = ReadWholeFile(key_file);
  if (!key.ok()) {
    return settings.Error("dkim_key_file", key.status().message());
  }
  DkimOptions options;
  options.domain = domain;
  options.selector = selector;
  options.private_key = *std::move(key);
  absl::StatusOr<std::unique_ptr<DkimSigner>> signer =
      DkimSigner::Create(options);
  if (!signer.ok()) {
    return settings.Error("dkim_key_file", signer.status().message());
  }
  return std::shared_ptr<const DkimSigner>(*std::move(signer));
}

}  // namespace authcode::providers
