// The "smtp" provider: submits each mail to an SMTP server (a submission
// port with STARTTLS, implicit TLS, or a plaintext local relay), over a
// small pool of authenticated connections.
//
// Why not libcurl's SMTP: it reports one outcome per transfer, not the
// reply code of each step (MAIL, RCPT, DATA), which the Retryable/Permanent
// decision and the operator's error text need; it does not let a caller
// reuse a connection with an explicit RSET and drop it after a 421; and its
// "STARTTLS if offered" modes are easy to get wrong. So the protocol is
// written here (smtp_connection.h) on POSIX sockets, poll() for timeouts,
// and OpenSSL for TLS: a few hundred lines whose every step is visible.
//
// Send() builds the wire message with BuildMime (message/mime.h), signs it
// when DKIM is configured, takes a pooled connection (or opens one), sends
// RSET if the connection was used before, then MAIL FROM, RCPT TO and
// DATA. It returns Sent with the Message-ID the MIME builder wrote (without
// angle brackets), which is stable and can be searched for in the
// recipient's mailbox; the server's queue id is not kept. Failures:
//   Retryable  a 4xx reply, a timeout, a refused or dropped connection, a
//              TLS handshake that broke off, STARTTLS required but not
//              offered, an untrusted certificate (the mail waits, or goes
//              to the next provider, while the path or setup is fixed;
//              it is never sent unprotected);
//   Permanent  a 5xx reply, an address that needs SMTPUTF8 on a server
//              without it, a message BuildMime refuses (a CR or LF in a
//              header field).
// The error names the step and carries the server's reply, trimmed and
// with control characters removed: "smtp: RCPT TO: 550 5.1.1 no such user".
// Credentials never appear in errors or logs.
//
// A connection that saw a 421, an I/O error, a timeout or a malformed reply
// is closed instead of returned to the pool. When a reused connection
// fails its RSET (the server dropped it while idle), Send() opens a fresh
// one once. A background thread QUITs connections idle for longer than
// idle_timeout.
//
// Settings ([providers.<name>]):
//   host           required.
//   security       "starttls" (default; STARTTLS required), "tls" (implicit
//                  TLS), "none" (plaintext, for a trusted local relay only;
//                  logs a warning).
//   port           default 587, or 465 with security = "tls".
//   ca_file        PEM CA certificates to trust instead of the system's.
//   verify_peer    default true; false logs a loud warning.
//   server_name    name for SNI and certificate checks; default host.
//   username       enables AUTH; then exactly one of password,
//                  password_file, password_env (or, for XOAUTH2, of
//                  oauth_token, oauth_token_file, oauth_token_env).
//   auth           "auto" (default: XOAUTH2 if a token is set, else PLAIN,
//                  else LOGIN, as the server offers), "plain", "login",
//                  "xoauth2".
//   helo           EHLO name; default this host's name.
//   timeout        per step (connect, handshake, each command), default
//                  "30s".
//   pool_size      connections at most, default 2.
//   idle_timeout   default "60s".
//   dkim_domain, dkim_selector, dkim_key_file   all three or none.
//   from_domain    the From domain the service uses; only to warn at
//                  start-up when it does not align with dkim_domain.
//   spf_include    the domain(s), comma-separated, whose SPF records list
//                  the relay's sending hosts (e.g. "_spf.example.net");
//                  only for `authcode doctor`, which checks that the From
//                  domain's SPF record includes them.
// Any other key is an error. File and environment secrets are read once,
// at start-up.
//
// Known shortcomings: getaddrinfo() is not bounded by `timeout` (it uses
// the system resolver's own limits). A connection that drops after the
// final dot but before the server's reply yields Retryable, so that mail
// may arrive twice. PIPELINING and CHUNKING are not used, and a message
// goes to exactly one recipient.
//
// Thread safety: Send() may be called from several threads at once; at most
// pool_size connections are open, and a Send() that finds them all busy
// waits up to `timeout` for one, then fails as Retryable.
#ifndef AUTHCODE_PROVIDERS_SMTP_SMTP_PROVIDER_H_
#define AUTHCODE_PROVIDERS_SMTP_SMTP_PROVIDER_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/message/dkim.h"
#include "providers/provider.h"
#include "providers/registry.h"
#include "providers/smtp/smtp_connection.h"

namespace authcode::providers {

// Registers the factory under "smtp".
void RegisterSmtpProvider(ProviderRegistry& registry);

struct SmtpProviderConfig {
  SmtpConnectionOptions connection;
  std::shared_ptr<SSL_CTX> tls;  // Null only with SmtpSecurity::kNone.
  int pool_size = 2;
  absl::Duration idle_timeout = absl::Seconds(60);
  std::shared_ptr<const DkimSigner> dkim;  // May be null.
  // From spf_include; nullopt when it is not set.
  std::optional<std::vector<std::string>> spf_includes;
};

class SmtpProvider final : public Provider {
 public:
  explicit SmtpProvider(SmtpProviderConfig config);
  // QUITs the idle connections. No Send() may be running.
  ~SmtpProvider() override;

  SmtpProvider(const SmtpProvider&) = delete;
  SmtpProvider& operator=(const SmtpProvider&) = delete;

  // Provider:
  std::string_view name() const override { return "smtp"; }
  SendResult Send(const Message& message) override;
  // Opens a fresh connection the way Send() would (connect, greeting,
  // EHLO, STARTTLS or implicit TLS with the certificate verified, AUTH
  // when configured), then QUITs it: no MAIL FROM, nothing sent. The pool
  // is left alone. Errors read like Send()'s: "smtp: TLS: ...".
  absl::Status CheckReachable() override;
  // The DKIM domain, and the domain of the username when it is an address.
  std::vector<std::string> IdentityDomains() const override;
  // The spf_include setting: only the relay's operator knows its hosts.
  std::optional<std::vector<std::string>> SpfIncludes() const override;
  std::optional<DkimPublicKey> DkimKey() const override;

 private:
  struct Idle {
    std::unique_ptr<SmtpConnection> connection;
    absl::Time since;
  };

  // A connection ready for a transaction: a reused one after RSET, or a
  // new one.
  absl::StatusOr<std::unique_ptr<SmtpConnection>> Acquire();
  // Takes an idle connection, or reserves room for a new one (null).
  absl::StatusOr<std::unique_ptr<SmtpConnection>> TakeSlot();
  // Returns `connection` to the pool if still usable, else closes it.
  void Release(std::unique_ptr<SmtpConnection> connection);
  void ReapIdle();

  const SmtpProviderConfig config_;
  absl::Mutex mu_;
  std::deque<Idle> idle_ ABSL_GUARDED_BY(mu_);  // Most recent at the back.
  int open_ ABSL_GUARDED_BY(mu_) = 0;           // Idle and in use.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_SMTP_SMTP_PROVIDER_H_
