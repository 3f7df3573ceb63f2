// DKIM signing (RFC 6376) with rsa-sha256 or ed25519-sha256 (RFC 8463),
// on OpenSSL.
//
// A DkimSigner is built once from the domain, the selector and a private
// key (PEM: RSA or Ed25519; or a raw base64 Ed25519 seed), and then signs
// any number of messages: Sign() returns the DKIM-Signature header field
// (with its CRLF) to put in front of the message.
//
// Thread safety: Sign() and SignatureOf() may be called from several
// threads at once; the signer is immutable once created.
#ifndef AUTHCODE_PROVIDERS_MESSAGE_DKIM_H_
#define AUTHCODE_PROVIDERS_MESSAGE_DKIM_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace authcode::providers {

enum class DkimCanonicalization { kSimple, kRelaxed };

struct DkimOptions {
  std::string domain;    // d=
  std::string selector;  // s=
  // PEM text of an RSA (at least 1024 bits) or Ed25519 private key, or the
  // base64 of a 32-byte Ed25519 seed. The algorithm follows the key.
  std::string private_key;
  DkimCanonicalization header_canon = DkimCanonicalization::kRelaxed;
  DkimCanonicalization body_canon = DkimCanonicalization::kRelaxed;
  // Header fields to sign, in order; a name may repeat (over-signing).
  // Empty means the default set: from, to, subject, date, message-id,
  // mime-version, content-type, with from, subject and date over-signed.
  std::vector<std::string> signed_headers;
  // Whether to add t= (the signing time).
  bool include_timestamp = true;
};

class DkimSigner {
 public:
  // InvalidArgument naming the option ("DKIM private_key: ...") for a
  // domain or selector that is not a DNS name, signed_headers without
  // From, or a key that cannot be read (garbage, encrypted PEM, a key type
  // other than RSA or Ed25519, RSA under 1024 bits) or cannot sign.
  static absl::StatusOr<std::unique_ptr<DkimSigner>> Create(
      const DkimOptions& options);
  ~DkimSigner();

  // "rsa-sha256" or "ed25519-sha256".
  const std::string& algorithm() const;
  const std::string& domain() const;
  const std::string& selector() const;
  // The public half of the key and where it is to be published.
  const DkimPublicKey& public_key() const;

  // The DKIM-Signature header field for `message` (CRLF line ends), ending
  // in CRLF. `now` is the t= time. The field carries v, a, c, d, s, t (if
  // include_timestamp), h, bh and b, folded to lines of 78; no i=, no l=.
  // InvalidArgument when the message has no From header or a header line
  // without a colon.
  absl::StatusOr<std::string> Sign(absl::string_view message,
                                   absl::Time now = absl::Now()) const;

  // The base64 signature (the b= value) over `data`, which must be the
  // exact data to sign of RFC 6376 3.7: the canonicalized signed header
  // fields, then the canonicalized DKIM-Signature field with an empty b=
  // and no final CRLF. Sign() uses it; it is public so that a test can
  // reproduce a published signature whose DKIM-Signature field is laid out
  // differently from Sign()'s (RFC 8463 Appendix A).
  absl::StatusOr<std::string> SignatureOf(absl::string_view data) const;

 private:
  struct Impl;
  explicit DkimSigner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Canonicalization (RFC 6376 3.4), exposed for tests against the RFC 6376
// examples. CanonicalizeHeader takes a field's name as written before the
// colon and its value as everything after the colon (folds included, final
// CRLF not), and returns the canonical field ending in CRLF. The body is
// everything after the blank line that ends the header; the result is what
// bh= hashes.
std::string CanonicalizeHeader(DkimCanonicalization canon,
                               absl::string_view name, absl::string_view value);
std::string CanonicalizeBody(DkimCanonicalization canon,
                             absl::string_view body);

// The bh= value: base64 of the SHA-256 of CanonicalizeBody(canon, body).
std::string DkimBodyHash(DkimCanonicalization canon, absl::string_view body);

// The signer that a provider's dkim_domain, dkim_selector and
// dkim_key_file settings describe, or null when none of them is set.
// InvalidArgument naming the setting when only some are set or the key
// does not load.
absl::StatusOr<std::shared_ptr<const DkimSigner>> DkimSignerFromSettings(
    const ProviderSettings& settings);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_MESSAGE_DKIM_H_
