// The "maildir" provider: delivers every mail, one-time codes included, as
// one file into a Maildir folder instead of sending it. For development (open
// the folder in a mail client) and for tests (count the files: the sink is
// durable and survives a crash of the server). The factory logs a warning
// saying so when it is built.
//
// Delivery follows the Maildir convention: the whole message is written to
// tmp/<unique>, fsync'd, renamed to new/<unique>, and new/ is fsync'd, so a
// reader never sees a partial file and a delivered file survives a crash.
// <unique> is
//
//   <unix seconds>.<delivery id, or 16 random hex digits>_<counter>.<host>
//
// using only [A-Za-z0-9._-]: other characters of the delivery id and the
// host name become '_', and each is cut to 64 characters. The counter makes
// every call unique, so a retried delivery is written twice. A name that
// already exists (another process, or a restart within the same second) is
// skipped and the counter moves on: tmp/ files are created exclusively, and
// the rename into new/ refuses to replace a file where the file system
// supports RENAME_NOREPLACE (ext4, xfs, btrfs, tmpfs; elsewhere it is a
// plain rename()).
//
// The file is the message as BuildMime (providers/message/mime.h) writes it,
// in base64 mode: From, To, Subject, Date (UTC), Message-ID
// (<id part.random@authcode.invalid>), MIME-Version, X-Authcode-Delivery-Id
// (when there is a delivery id), the Message's extra headers, then
// multipart/alternative with a text/plain and a text/html part (utf-8,
// base64 in lines of 76), CRLF line endings. A display name, subject or
// header value that is not plain printable ASCII is written as RFC 2047
// encoded words.
//
// Known shortcoming: the bodies are encoded byte for byte, so a body's bare
// LF line breaks stay LF inside the base64 instead of becoming the CRLF that
// MIME calls canonical. Mail clients accept either, and it lets a test
// compare a decoded part with the original exactly.
//
// Send() fails for good (Permanent, nothing written) when BuildMime refuses
// the message (a header value holding CR, LF or another control character,
// a malformed address, an extra header name that is not a valid field name
// or that duplicates one the builder writes, such as Subject or
// Content-Type) or an extra header is X-Authcode-Delivery-Id. An I/O error
// is Retryable with the errno text. Errors name the header or the file,
// never the message's content.
//
// Settings ([providers.<name>]): `path` (required), the Maildir root; it and
// its tmp/, new/ and cur/ folders are created with mode 0700 if missing. Any
// other key is an error.
//
// Thread safety: Send() may be called concurrently.
#ifndef AUTHCODE_PROVIDERS_MAILDIR_MAILDIR_PROVIDER_H_
#define AUTHCODE_PROVIDERS_MAILDIR_MAILDIR_PROVIDER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace authcode::providers {

// Registers the factory under "maildir".
void RegisterMaildirProvider(ProviderRegistry& registry);

class MaildirProvider final : public Provider {
 public:
  // Delivers into `root`, which must already hold tmp/, new/ and cur/ (the
  // registry's factory creates them). `hostname` goes into file names as is,
  // so it must already be sanitized.
  MaildirProvider(std::string root, std::string hostname);

  MaildirProvider(const MaildirProvider&) = delete;
  MaildirProvider& operator=(const MaildirProvider&) = delete;

  // Provider:
  std::string_view name() const override { return "maildir"; }
  // None: the mail never leaves this machine.
  std::optional<std::vector<std::string>> SpfIncludes() const override {
    return std::vector<std::string>{};
  }
  // Sent("maildir:<unique>") once the file is in new/.
  SendResult Send(const Message& message) override;
  // OK when this process may write into tmp/ and new/.
  absl::Status CheckReachable() override;

 private:
  // `digits` random hex digits.
  std::string RandomHex(int digits);
  std::string NextUniqueName(const std::string& id_part);
  // Writes `content` into new/ under a fresh unique name; returns that name,
  // or Retryable.
  SendResult Deliver(const std::string& id_part, const std::string& content);

  const std::string root_;
  const std::string hostname_;
  std::atomic<std::uint64_t> counter_{0};
  absl::Mutex mu_;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_MAILDIR_MAILDIR_PROVIDER_H_
