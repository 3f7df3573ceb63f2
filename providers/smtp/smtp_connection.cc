#include "providers/smtp/smtp_connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace authcode::providers {
namespace {

// QUIT is a courtesy: it must not hold a worker for a full step timeout.
constexpr absl::Duration kQuitTimeout = absl::Seconds(2);
constexpr size_t kReadChunk = 4096;

std::string ErrnoText(int err) {
  char buffer[256];
  return strerror_r(err, buffer, sizeof(buffer));
}

// The first queued OpenSSL error, or `fallback`; clears the queue.
std::string OpenSslError(absl::string_view fallback) {
  const unsigned long err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) return std::string(fallback);
  char buffer[256];
  ERR_error_string_n(err, buffer, sizeof(buffer));
  return buffer;
}

bool IsIpAddress(const std::string& name) {
  unsigned char addr[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

// A write to a socket whose peer has gone raises SIGPIPE. OpenSSL writes
// with write(), which cannot say MSG_NOSIGNAL, so the signal is blocked in
// this thread for the call and a SIGPIPE it caused is taken back.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~SigpipeGuard() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const struct timespec zero = {0, 0};
      while (sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// An SMTP reply's code says what to do: 4xx later, 5xx never.
absl::Status ReplyError(const SmtpReply& reply, absl::string_view what) {
  const std::string text = absl::StrCat(what, ": ", reply.Summary());
  if (reply.transient()) return absl::UnavailableError(text);
  return absl::FailedPreconditionError(text);
}

// Whether `address` can go between < and > in MAIL FROM or RCPT TO.
bool IsSafeAddress(absl::string_view address) {
  if (address.empty() || address.size() > 320) return false;
  for (char c : address) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == 0x7f || c == '<' || c == '>') return false;
  }
  return true;
}

SmtpCapabilities ParseCapabilities(const SmtpReply& reply) {
  SmtpCapabilities caps;
  // The first line is the server's greeting to us; keywords follow.
  for (size_t i = 1; i < reply.lines.size(); ++i) {
    std::vector<std::string> words =
        absl::StrSplit(absl::AsciiStrToUpper(reply.lines[i]),
                       absl::ByAnyChar(" ="), absl::SkipEmpty());
    if (words.empty()) continue;
    const std::string& keyword = words[0];
    if (keyword == "STARTTLS") caps.starttls = true;
    if (keyword == "SMTPUTF8") caps.smtputf8 = true;
    if (keyword == "8BITMIME") caps.eight_bit_mime = true;
    if (keyword == "SIZE") {
      uint64_t limit = 0;
      if (words.size() > 1) (void)absl::SimpleAtoi(words[1], &limit);
      caps.size = limit;
    }
    if (keyword == "AUTH") {
      caps.auth.insert(words.begin() + 1, words.end());
    }
  }
  return caps;
}

}  // namespace

absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeSmtpTlsContext(
    const std::string& ca_file, bool verify_peer) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (ctx == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot create a TLS context: ", OpenSslError("?")));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_verify(ctx.get(), verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                     nullptr);
  if (!verify_peer) return ctx;

  const int loaded =
      ca_file.empty()
          ? SSL_CTX_set_default_verify_paths(ctx.get())
          : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
  if (loaded != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        ca_file.empty()
            ? "cannot load the system CA certificates"
            : absl::StrCat("cannot load the CA file \"", ca_file, "\""),
        ": ", OpenSslError("no certificates found")));
  }
  return ctx;
}

std::string DotStuff(absl::string_view data) {
  std::string out;
  out.reserve(data.size() + data.size() / 64 + 8);
  bool line_start = true;
  for (size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && c == '.') out += '.';
    out += c;
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

SmtpConnection::SmtpConnection(const SmtpConnectionOptions& options,
                               std::shared_ptr<SSL_CTX> tls)
    : options_(options), tls_context_(std::move(tls)) {}

SmtpConnection::~SmtpConnection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<SmtpConnection>> SmtpConnection::Open(
    const SmtpConnectionOptions& options, std::shared_ptr<SSL_CTX> tls) {
  if (options.security != SmtpSecurity::kNone && tls == nullptr) {
    return absl::InternalError("SMTP: TLS required but no TLS context");
  }
  std::unique_ptr<SmtpConnection> conn(
      new SmtpConnection(options, std::move(tls)));
  if (absl::Status s = conn->Connect(); !s.ok()) return s;
  if (options.security == SmtpSecurity::kImplicitTls) {
    if (absl::Status s = conn->Handshake(); !s.ok()) return s;
  }

  absl::StatusOr<SmtpReply> greeting =
      conn->ReadReply(absl::Now() + options.timeout, "greeting");
  if (!greeting.ok()) return greeting.status();
  if (greeting->code != 220) {
    return conn->Broken(ReplyError(*greeting, "greeting"));
  }

  if (absl::Status s = conn->Hello(); !s.ok()) return s;
  if (options.security == SmtpSecurity::kStartTls) {
    if (absl::Status s = conn->StartTls(); !s.ok()) return s;
  }
  if (absl::Status s = conn->Authenticate(); !s.ok()) return s;
  return conn;
}

absl::Status SmtpConnection::Connect() {
  const absl::Time deadline = absl::Now() + options_.timeout;
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  struct addrinfo* found = nullptr;
  const std::string port = absl::StrCat(options_.port);
  const int gai =
      getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) {
    return absl::UnavailableError(absl::StrCat("connect: cannot resolve \"",
                                               options_.host,
                                               "\": ", gai_strerror(gai)));
  }

  std::string last_error = "no address";
  for (struct addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    if (fd < 0) {
      last_error = ErrnoText(errno);
      continue;
    }
    fd_ = fd;
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) err = errno;
    if (err == EINPROGRESS) {
      const absl::Status waited = Wait(POLLOUT, deadline, "connect");
      if (!waited.ok()) {
        freeaddrinfo(found);
        return Broken(waited);
      }
      socklen_t len = sizeof(err);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
    if (err == 0) {
      freeaddrinfo(found);
      return absl::OkStatus();
    }
    last_error = ErrnoText(err);
    close(fd);
    fd_ = -1;
  }
  freeaddrinfo(found);
  broken_ = true;
  return absl::UnavailableError(absl::StrCat("connect: ", options_.host, ":",
                                             options_.port, ": ", last_error));
}

absl::Status SmtpConnection::Handshake() {
  const absl::Time deadline = absl::Now() + options_.timeout;
  ssl_ = SSL_new(tls_context_.get());
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
    return Broken(absl::InternalError(
        absl::StrCat("TLS: cannot set up: ", OpenSslError("?"))));
  }
  const std::string& name =
      options_.server_name.empty() ? options_.host : options_.server_name;
  const bool ip = IsIpAddress(name);
  if (!ip) SSL_set_tlsext_host_name(ssl_, name.c_str());
  if (options_.verify_peer) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                       : SSL_set1_host(ssl_, name.c_str());
    if (set != 1) {
      return Broken(absl::InternalError(absl::StrCat(
          "TLS: cannot set the name to verify: ", OpenSslError("?"))));
    }
  }

  while (true) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return absl::OkStatus();
    const int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      const absl::Status waited =
          Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline,
               "TLS handshake");
      if (!waited.ok()) return Broken(waited);
      continue;
    }
    const long verify = SSL_get_verify_result(ssl_);
    if (options_.verify_peer && verify != X509_V_OK) {
      ERR_clear_error();
      // Unavailable, not a permanent failure: the server could not be
      // trusted this time (an interception, or a setup an operator can
      // fix), which says nothing against the mail. It waits for a retry
      // or goes to the next provider; nothing was sent either way.
      return Broken(absl::UnavailableError(absl::StrCat(
          "TLS: the certificate of \"", name,
          "\" failed verification: ", X509_verify_cert_error_string(verify),
          " (set ca_file, or server_name to the certificate's name)")));
    }
    return Broken(absl::UnavailableError(absl::StrCat(
        "TLS handshake with \"", name, "\" failed: ",
        OpenSslError(err == SSL_ERROR_SYSCALL ? "connection closed"
                                              : "protocol error"))));
  }
}

absl::Status SmtpConnection::Hello() {
  absl::StatusOr<SmtpReply> reply =
      Command(absl::StrCat("EHLO ", options_.helo), "EHLO");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 250, "EHLO"); !s.ok()) return Broken(s);
  caps_ = ParseCapabilities(*reply);
  return absl::OkStatus();
}

absl::Status SmtpConnection::StartTls() {
  if (!caps_.starttls) {
    // Retryable for the same reason as a certificate that fails: a
    // missing STARTTLS may be a downgrade by someone on the path.
    return Broken(absl::UnavailableError(
        "STARTTLS: the server does not offer STARTTLS, and security = "
        "\"starttls\" requires it; the mail was not sent in plaintext (use "
        "security = \"none\" only for a trusted local relay)"));
  }
  absl::StatusOr<SmtpReply> reply = Command("STARTTLS", "STARTTLS");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 220, "STARTTLS"); !s.ok()) {
    return Broken(s);
  }
  // Bytes that came before the handshake are plaintext an attacker could
  // have injected (a reply to a command not yet sent).
  if (!buffer_.empty()) {
    return Broken(absl::UnavailableError(
        "STARTTLS: the server sent data before the TLS handshake"));
  }
  if (absl::Status s = Handshake(); !s.ok()) return s;
  return Hello();
}

absl::Status SmtpConnection::Authenticate() {
  const SmtpCredentials& creds = options_.credentials;
  if (creds.username.empty()) return absl::OkStatus();
  if (caps_.auth.empty()) {
    return Broken(absl::FailedPreconditionError(
        "AUTH: a username is configured but the server offers no AUTH"));
  }

  SmtpAuthMechanism mechanism = creds.mechanism;
  if (mechanism == SmtpAuthMechanism::kAuto) {
    if (!creds.oauth_token.empty()) {
      mechanism = SmtpAuthMechanism::kXoauth2;
    } else if (caps_.auth.count("PLAIN") > 0) {
      mechanism = SmtpAuthMechanism::kPlain;
    } else if (caps_.auth.count("LOGIN") > 0) {
      mechanism = SmtpAuthMechanism::kLogin;
    } else {
      return Broken(absl::FailedPreconditionError(absl::StrCat(
          "AUTH: the server offers none of PLAIN, LOGIN (it offers ",
          absl::StrJoin(caps_.auth, " "), ")")));
    }
  }
  const char* names[] = {"", "PLAIN", "LOGIN", "XOAUTH2"};
  const char* name = names[static_cast<int>(mechanism)];
  if (caps_.auth.count(name) == 0) {
    return Broken(absl::FailedPreconditionError(
        absl::StrCat("AUTH: the server does not offer ", name, " (it offers ",
                     absl::StrJoin(caps_.auth, " "), ")")));
  }

  absl::Status status;
  if (mechanism == SmtpAuthMechanism::kPlain) status = AuthPlain();
  if (mechanism == SmtpAuthMechanism::kLogin) status = AuthLogin();
  if (mechanism == SmtpAuthMechanism::kXoauth2) status = AuthXoauth2();
  // A connection that failed to authenticate is not worth keeping.
  if (!status.ok()) broken_ = true;
  return status;
}

absl::Status SmtpConnection::AuthPlain() {
  const SmtpCredentials& creds = options_.credentials;
  const std::string token =
      absl::Base64Escape(absl::StrCat(std::string(1, '\0'), creds.username,
                                      std::string(1, '\0'), creds.password));
  absl::StatusOr<SmtpReply> reply =
      Command(absl::StrCat("AUTH PLAIN ", token), "AUTH PLAIN");
  if (!reply.ok()) return reply.status();
  return Expect(*reply, 235, "AUTH PLAIN");
}

absl::Status SmtpConnection::AuthLogin() {
  const SmtpCredentials& creds = options_.credentials;
  absl::StatusOr<SmtpReply> reply = Command("AUTH LOGIN", "AUTH LOGIN");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 334, "AUTH LOGIN"); !s.ok()) return s;
  reply = Command(absl::Base64Escape(creds.username), "AUTH LOGIN");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 334, "AUTH LOGIN"); !s.ok()) return s;
  reply = Command(absl::Base64Escape(creds.password), "AUTH LOGIN");
  if (!reply.ok()) return reply.status();
  return Expect(*reply, 235, "AUTH LOGIN");
}

absl::Status SmtpConnection::AuthXoauth2() {
  const SmtpCredentials& creds = options_.credentials;
  const std::string token = absl::Base64Escape(
      absl::StrCat("user=", creds.username, "\x01", "auth=Bearer ",
                   creds.oauth_token, "\x01\x01"));
  absl::StatusOr<SmtpReply> reply =
      Command(absl::StrCat("AUTH XOAUTH2 ", token), "AUTH XOAUTH2");
  if (!reply.ok()) return reply.status();
  if (reply->code == 334) {
    // The server's error details come as a challenge; an empty answer
    // makes it send the final failure reply.
    reply = Command("", "AUTH XOAUTH2");
    if (!reply.ok()) return reply.status();
  }
  return Expect(*reply, 235, "AUTH XOAUTH2");
}

absl::StatusOr<SmtpReply> SmtpConnection::Send(absl::string_view from,
                                               absl::string_view to,
                                               absl::string_view data,
                                               bool smtputf8) {
  if (!usable()) return absl::UnavailableError("SMTP connection is closed");
  if (!IsSafeAddress(from) || !IsSafeAddress(to)) {
    return absl::InvalidArgumentError(absl::StrCat(
        !IsSafeAddress(from) ? "MAIL FROM" : "RCPT TO",
        ": the address is empty, too long, or holds a space, a control "
        "character (CR, LF) or an angle bracket; nothing was sent"));
  }
  if (smtputf8 && !caps_.smtputf8) {
    return absl::FailedPreconditionError(
        "MAIL FROM: an address is not ASCII and needs SMTPUTF8, which the "
        "server does not offer; nothing was sent");
  }
  const std::string stuffed = DotStuff(data);
  if (caps_.size.has_value() && *caps_.size > 0 &&
      stuffed.size() > *caps_.size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "MAIL FROM: the message (", stuffed.size(),
        " bytes) exceeds the server's SIZE limit of ", *caps_.size, " bytes"));
  }

  std::string mail = absl::StrCat("MAIL FROM:<", from, ">");
  if (smtputf8) mail += " SMTPUTF8";
  if (caps_.size.has_value()) absl::StrAppend(&mail, " SIZE=", stuffed.size());
  absl::StatusOr<SmtpReply> reply = Command(mail, "MAIL FROM");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 250, "MAIL FROM"); !s.ok()) return s;

  reply = Command(absl::StrCat("RCPT TO:<", to, ">"), "RCPT TO");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 0, "RCPT TO"); !s.ok()) return s;

  reply = Command("DATA", "DATA");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 354, "DATA"); !s.ok()) return s;

  const absl::Time deadline = absl::Now() + options_.timeout;
  if (absl::Status s = WriteAll(stuffed, deadline, "DATA"); !s.ok()) return s;
  reply = ReadReply(absl::Now() + options_.timeout, "end of DATA");
  if (!reply.ok()) return reply.status();
  if (absl::Status s = Expect(*reply, 250, "end of DATA"); !s.ok()) return s;
  return reply;
}

absl::Status SmtpConnection::Reset() {
  absl::StatusOr<SmtpReply> reply = Command("RSET", "RSET");
  if (!reply.ok()) return reply.status();
  absl::Status s = Expect(*reply, 250, "RSET");
  return s.ok() ? s : Broken(s);
}

void SmtpConnection::Quit() {
  if (usable()) {
    const absl::Time deadline = absl::Now() + kQuitTimeout;
    if (WriteAll("QUIT\r\n", deadline, "QUIT").ok()) {
      (void)ReadReply(deadline, "QUIT");
    }
  }
  if (ssl_ != nullptr && !broken_) {
    SigpipeGuard guard;
    SSL_shutdown(ssl_);
  }
  broken_ = true;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

absl::StatusOr<SmtpReply> SmtpConnection::Command(absl::string_view line,
                                                  absl::string_view what) {
  // The one gate every command passes: nothing may end it early.
  if (line.find_first_of("\r\n") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": refused to send a command holding CR or LF"));
  }
  if (!usable()) return absl::UnavailableError("SMTP connection is closed");
  const absl::Time deadline = absl::Now() + options_.timeout;
  if (absl::Status s = WriteAll(absl::StrCat(line, "\r\n"), deadline, what);
      !s.ok()) {
    return s;
  }
  return ReadReply(absl::Now() + options_.timeout, what);
}

absl::Status SmtpConnection::Expect(const SmtpReply& reply, int expected,
                                    absl::string_view what) {
  const bool ok = expected == 0 ? reply.positive() : reply.code == expected;
  if (ok) return absl::OkStatus();
  // 421: the server is closing the connection. Anything unexpected
  // leaves the state of the session unknown.
  if (reply.code == 421 || (!reply.transient() && !reply.permanent())) {
    broken_ = true;
  }
  const absl::Status error = ReplyError(reply, what);
  return absl::Status(error.code(), Scrub(std::string(error.message())));
}

absl::StatusOr<SmtpReply> SmtpConnection::ReadReply(absl::Time deadline,
                                                    absl::string_view what) {
  char chunk[kReadChunk];
  while (true) {
    if (!buffer_.empty()) {
      absl::string_view input = buffer_;
      absl::StatusOr<std::optional<SmtpReply>> reply = parser_.Feed(&input);
      buffer_.erase(0, buffer_.size() - input.size());
      if (!reply.ok()) {
        return Broken(absl::UnavailableError(
            absl::StrCat(what, ": bad reply: ", reply.status().message())));
      }
      if (reply->has_value()) return **std::move(reply);
    }
    absl::StatusOr<size_t> n = ReadSome(chunk, sizeof(chunk), deadline, what);
    if (!n.ok()) return n.status();
    buffer_.append(chunk, *n);
  }
}

absl::Status SmtpConnection::WriteAll(absl::string_view data,
                                      absl::Time deadline,
                                      absl::string_view what) {
  while (!data.empty()) {
    short wait_for = POLLOUT;
    if (ssl_ != nullptr) {
      SigpipeGuard guard;
      ERR_clear_error();
      const int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ) {
        wait_for = POLLIN;
      } else if (err != SSL_ERROR_WANT_WRITE) {
        return Broken(absl::UnavailableError(absl::StrCat(
            what, ": TLS write failed: ", OpenSslError("connection closed"))));
      }
    } else {
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return Broken(absl::UnavailableError(
            absl::StrCat(what, ": write failed: ", ErrnoText(errno))));
      }
    }
    if (absl::Status s = Wait(wait_for, deadline, what); !s.ok()) {
      return Broken(s);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> SmtpConnection::ReadSome(char* buffer, size_t size,
                                                absl::Time deadline,
                                                absl::string_view what) {
  while (true) {
    short wait_for = POLLIN;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, buffer, static_cast<int>(size));
      if (n > 0) return static_cast<size_t>(n);
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_WRITE) {
        wait_for = POLLOUT;
      } else if (err != SSL_ERROR_WANT_READ) {
        return Broken(absl::UnavailableError(
            absl::StrCat(what, ": the server closed the connection")));
      }
    } else {
      const ssize_t n = recv(fd_, buffer, size, 0);
      if (n > 0) return static_cast<size_t>(n);
      if (n == 0) {
        return Broken(absl::UnavailableError(
            absl::StrCat(what, ": the server closed the connection")));
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return Broken(absl::UnavailableError(
            absl::StrCat(what, ": read failed: ", ErrnoText(errno))));
      }
    }
    if (absl::Status s = Wait(wait_for, deadline, what); !s.ok()) {
      return Broken(s);
    }
  }
}

absl::Status SmtpConnection::Wait(short events, absl::Time deadline,
                                  absl::string_view what) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": no answer within ",
                       absl::FormatDuration(options_.timeout), " (timeout)"));
    }
    struct pollfd pfd = {fd_, events, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    const int rc = poll(&pfd, 1, ms);
    if (rc > 0) return absl::OkStatus();
    if (rc < 0 && errno != EINTR) {
      return absl::UnavailableError(
          absl::StrCat(what, ": poll failed: ", ErrnoText(errno)));
    }
  }
}

absl::Status SmtpConnection::Broken(absl::Status status) {
  broken_ = true;
  return status;
}

std::string SmtpConnection::Scrub(std::string text) const {
  const SmtpCredentials& creds = options_.credentials;
  for (const std::string* secret : {&creds.password, &creds.oauth_token}) {
    if (secret->size() < 4) continue;
    text = absl::StrReplaceAll(
        text,
        {{*secret, "[redacted]"}, {absl::Base64Escape(*secret), "[redacted]"}});
  }
  return text;
}

}  // namespace authcode::providers
