// One client connection to an SMTP server, on POSIX sockets and OpenSSL.
//
// Open() connects (trying each address getaddrinfo() returns), reads the
// greeting, says EHLO, upgrades to TLS (implicitly, or with STARTTLS, which
// is then required: a server that does not offer it is refused, never
// used in plaintext) and authenticates. Send() then runs one mail
// transaction (MAIL FROM, RCPT TO, DATA with dot-stuffing) and Reset()
// readies the connection for the next one.
//
// Every step (connect, handshake, each command and its reply) has its own
// deadline, `timeout` from its start; sockets are non-blocking and waited
// on with poll(). No CR or LF can reach a command: addresses are checked,
// and the single place that writes a command refuses one that holds a line
// break.
//
// Failures come back as absl::Status, coded by what the caller should do:
//   UNAVAILABLE, DEADLINE_EXCEEDED  transient (a 4xx reply, an I/O error,
//                                   a timeout): retry later;
//   FAILED_PRECONDITION             permanent (a 5xx reply, STARTTLS or
//                                   SMTPUTF8 needed but not offered, an
//                                   untrusted certificate);
//   INVALID_ARGUMENT                the message cannot be sent as it is
//                                   (a line break in an address).
// Messages name the step and quote the server's reply ("RCPT TO: 550 5.1.1
// no such user"), never a credential: AUTH steps are named by their
// mechanism only, and any secret echoed by the server is scrubbed.
// After a failure, usable() says whether the connection may carry another
// transaction (not after a 421, an I/O error, a timeout or a bad reply).
//
// Thread safety: a connection belongs to one thread at a time. The SSL_CTX
// passed to Open() is shared and must outlive the connection.
#ifndef AUTHCODE_PROVIDERS_SMTP_SMTP_CONNECTION_H_
#define AUTHCODE_PROVIDERS_SMTP_SMTP_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "providers/smtp/smtp_reply.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace authcode::providers {

enum class SmtpSecurity { kStartTls, kImplicitTls, kNone };

enum class SmtpAuthMechanism { kAuto, kPlain, kLogin, kXoauth2 };

struct SmtpCredentials {
  SmtpAuthMechanism mechanism = SmtpAuthMechanism::kAuto;
  std::string username;     // Empty: no AUTH at all.
  std::string password;     // For PLAIN and LOGIN.
  std::string oauth_token;  // For XOAUTH2; with kAuto, preferred if set.
};

struct SmtpConnectionOptions {
  std::string host;
  int port = 587;
  SmtpSecurity security = SmtpSecurity::kStartTls;
  // The name sent as SNI and matched against the certificate; empty means
  // `host`. An IP address is matched against the certificate's IP entries
  // and sent without SNI.
  std::string server_name;
  bool verify_peer = true;
  std::string helo = "localhost";
  absl::Duration timeout = absl::Seconds(30);
  SmtpCredentials credentials;
};

// What the server's EHLO reply offers.
struct SmtpCapabilities {
  bool starttls = false;
  bool smtputf8 = false;
  bool eight_bit_mime = false;
  std::optional<uint64_t> size;  // SIZE's limit; 0 means none stated.
  std::set<std::string> auth;    // Upper case: "PLAIN", "LOGIN", ...
};

// Builds the TLS client context: TLS 1.2 or newer, the peer verified (when
// `verify_peer`) against the system CAs or `ca_file` if it is not empty.
// Errors name the file or the OpenSSL reason.
absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeSmtpTlsContext(
    const std::string& ca_file, bool verify_peer);

// `data` as DATA sends it: every line break CRLF (a bare CR or LF becomes
// one), a '.' doubled at the start of a line, ending in CRLF "." CRLF.
std::string DotStuff(absl::string_view data);

class SmtpConnection {
 public:
  // Connects, secures and authenticates as `options` say. `tls` may be
  // null only with SmtpSecurity::kNone.
  static absl::StatusOr<std::unique_ptr<SmtpConnection>> Open(
      const SmtpConnectionOptions& options, std::shared_ptr<SSL_CTX> tls);

  ~SmtpConnection();
  SmtpConnection(const SmtpConnection&) = delete;
  SmtpConnection& operator=(const SmtpConnection&) = delete;

  // One mail transaction; returns the final reply to DATA. `smtputf8` asks
  // for the SMTPUTF8 extension (needed when an address is not ASCII); a
  // server that does not offer it fails the send permanently.
  absl::StatusOr<SmtpReply> Send(absl::string_view from, absl::string_view to,
                                 absl::string_view data, bool smtputf8);

  // RSET: clears any transaction state before the next Send().
  absl::Status Reset();

  // QUIT, bounded by a short deadline; the connection is unusable after.
  void Quit();

  bool usable() const { return fd_ >= 0 && !broken_; }
  bool tls() const { return ssl_ != nullptr; }
  const SmtpCapabilities& capabilities() const { return caps_; }

 private:
  SmtpConnection(const SmtpConnectionOptions& options,
                 std::shared_ptr<SSL_CTX> tls);

  absl::Status Connect();
  absl::Status StartTls();
  absl::Status Hello();
  absl::Status Authenticate();
  absl::Status AuthPlain();
  absl::Status AuthLogin();
  absl::Status AuthXoauth2();

  // Writes `line` and CRLF and reads the reply; `what` names the step in
  // errors ("MAIL FROM"), so a secret in `line` never shows.
  absl::StatusOr<SmtpReply> Command(absl::string_view line,
                                    absl::string_view what);
  // Fails unless `reply` has code `expected` (or any 2xx/3xx when 0).
  absl::Status Expect(const SmtpReply& reply, int expected,
                      absl::string_view what);
  absl::StatusOr<SmtpReply> ReadReply(absl::Time deadline,
                                      absl::string_view what);
  absl::Status WriteAll(absl::string_view data, absl::Time deadline,
                        absl::string_view what);
  absl::StatusOr<size_t> ReadSome(char* buffer, size_t size,
                                  absl::Time deadline, absl::string_view what);
  absl::Status Wait(short events, absl::Time deadline, absl::string_view what);
  absl::Status Handshake();
  // Marks the connection broken and returns `status`.
  absl::Status Broken(absl::Status status);
  std::string Scrub(std::string text) const;

  const SmtpConnectionOptions options_;
  const std::shared_ptr<SSL_CTX> tls_context_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool broken_ = false;
  SmtpCapabilities caps_;
  SmtpReplyParser parser_;
  std::string buffer_;  // Read but not yet parsed.
};

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_SMTP_SMTP_CONNECTION_H_
