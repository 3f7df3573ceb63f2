// The interface between the delivery worker and whatever sends mail.
//
// A Provider takes one fully composed Message and reports, through a
// SendResult, whether it was accepted, failed in a way worth retrying, or
// failed for good. Providers are built once from their settings by a factory
// registered under a canonical name (see registry.h); the core names no
// vendor.
//
// Thread safety: Send() may be called from several worker threads at once.
#ifndef AUTHCODE_PROVIDERS_PROVIDER_H_
#define AUTHCODE_PROVIDERS_PROVIDER_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace authcode::providers {

// A mail ready to send. Every field is already validated: no field holds a
// CR or LF except `text` and `html`, which are bodies.
struct Message {
  std::string from_address;
  std::string from_name;  // May be empty.
  std::string to_address;
  std::string subject;
  std::string text;  // The text/plain part.
  std::string html;  // The text/html part.
  // Extra headers, name then value, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  // A stable id of this delivery (the same across retries), usable as an
  // idempotency key or a Message-ID seed by providers that support one.
  std::string delivery_id;
};

// The public half of a DKIM key and where receivers look for it: a TXT
// record at <selector>._domainkey.<domain>.
struct DkimPublicKey {
  std::string domain;    // d=
  std::string selector;  // s=
  std::string type;      // k=: "rsa" or "ed25519".
  // p= before base64: the SubjectPublicKeyInfo (DER) of an RSA key, the
  // raw 32 bytes of an Ed25519 one (RFC 8463).
  std::string key;
};

class SendResult {
 public:
  enum class Kind { kSent, kRetryable, kPermanent };

  static SendResult Sent(std::string message_id) {
    return SendResult(Kind::kSent, std::move(message_id), {}, std::nullopt);
  }
  // A failure that may pass, such as a timeout or a 4xx SMTP reply.
  static SendResult Retryable(
      std::string error,
      std::optional<absl::Duration> retry_after = std::nullopt) {
    return SendResult(Kind::kRetryable, {}, std::move(error), retry_after);
  }
  // A failure that retrying cannot fix, such as a rejected recipient.
  static SendResult Permanent(std::string error) {
    return SendResult(Kind::kPermanent, {}, std::move(error), std::nullopt);
  }

  Kind kind() const { return kind_; }
  bool ok() const { return kind_ == Kind::kSent; }
  // The provider's id for the accepted message; empty unless sent.
  const std::string& message_id() const { return message_id_; }
  // What went wrong, for operators. Holds no code and no secret.
  const std::string& error() const { return error_; }
  // The provider's own hint of when to retry, if it gave one.
  std::optional<absl::Duration> retry_after() const { return retry_after_; }

 private:
  SendResult(Kind kind, std::string message_id, std::string error,
             std::optional<absl::Duration> retry_after)
      : kind_(kind),
        message_id_(std::move(message_id)),
        error_(std::move(error)),
        retry_after_(retry_after) {}

  Kind kind_;
  std::string message_id_;
  std::string error_;
  std::optional<absl::Duration> retry_after_;
};

class Provider {
 public:
  virtual ~Provider() = default;

  // The canonical name the provider was registered under, e.g. "console".
  virtual std::string_view name() const = 0;

  virtual SendResult Send(const Message& message) = 0;

  // Checks, sending no mail, that the provider can be reached and would
  // take our mail: the connection, TLS with the certificate verified, and
  // the login where the protocol has one before a send. For the operator's
  // `authcode check-config --connect`, never on the send path; it may
  // take up to the provider's own timeouts. The error names the step that
  // failed and holds no secret.
  virtual absl::Status CheckReachable() = 0;

  // Domains this provider signs or authenticates mail as, such as a DKIM
  // d= or the domain of an SMTP login; empty when it has none. The server
  // warns at start-up when the From domain does not align with them, since
  // such mail fails DMARC.
  virtual std::vector<std::string> IdentityDomains() const { return {}; }

  // The domains whose SPF records list the hosts this provider sends
  // from, each of which the From domain's SPF record must reach through
  // an include: mechanism (e.g. {"spf.mail.example.net"}). Empty when its
  // mail never leaves this machine; nullopt when it cannot tell, as for a
  // relay whose sending hosts only its operator knows. Read by
  // `authcode doctor`, never on the send path.
  virtual std::optional<std::vector<std::string>> SpfIncludes() const {
    return std::nullopt;
  }

  // The key this provider DKIM-signs our mail with, when it is one from
  // our config; nullopt when it signs with none of ours (a provider may
  // still sign with a key of its own). Read by `authcode doctor`.
  virtual std::optional<DkimPublicKey> DkimKey() const { return std::nullopt; }
};

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_PROVIDER_H_
