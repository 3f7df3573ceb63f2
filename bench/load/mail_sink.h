// A stand-in for Postmark's Email API on 127.0.0.1, for the load tool: the
// server under test is configured with a "postmark" provider whose
// endpoint is this sink, so every mail the delivery worker sends arrives
// here, and the tool reads each recipient's code from it.
//
// Why HTTP and not the maildir provider: a mail here costs one request on
// a kept-alive loopback connection and one small JSON parse, with nothing
// written to disk. The maildir provider fsyncs each file and its folder,
// which would compete with PostgreSQL's own fsyncs on the same disk, and
// the tool would have to scan the folder and decode MIME to read a code.
// Postmark's request is the simplest of the HTTP providers': "To" is a
// plain address and "TextBody" the text part.
//
// It speaks just enough HTTP/1.1 for libcurl: requests with a
// Content-Length, kept alive until the client closes; one thread per
// connection (the server's provider holds about one per delivery worker).
// A mail it can read is answered 200 with a Postmark-like MessageID; one it
// cannot (no "To", no code in the text) 422, which the server records as
// a permanent failure and the tool as an error.
//
// Thread safety: the counters may be read from any thread. `on_mail` runs
// on the connection threads, possibly several at once.
#ifndef AUTHCODE_BENCH_LOAD_MAIL_SINK_H_
#define AUTHCODE_BENCH_LOAD_MAIL_SINK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace authcode::bench {

struct SinkMail {
  std::string to;
  std::string code;
};

// The recipient and code of a Postmark /email request body; nullopt when
// it is not JSON, has no "To", or its "TextBody" holds no 6-10 digit code.
// The code is the text's first run of digits, which the built-in templates
// put before anything else holding digits.
std::optional<SinkMail> ParsePostmarkMail(std::string_view body);

class MailSink {
 public:
  // Returns false when the mail should be refused (answered 422).
  using OnMail = std::function<bool(const SinkMail&)>;

  // Listens on 127.0.0.1:`port` (0: any free port).
  static absl::StatusOr<std::unique_ptr<MailSink>> Start(int port,
                                                         OnMail on_mail);
  // Closes the listener and every connection, and joins their threads.
  ~MailSink();

  MailSink(const MailSink&) = delete;
  MailSink& operator=(const MailSink&) = delete;

  int port() const { return port_; }
  // Mails accepted (answered 200) so far.
  uint64_t accepted() const { return accepted_.load(); }
  // Requests refused: unreadable HTTP or mails without a code.
  uint64_t refused() const { return refused_.load(); }

 private:
  MailSink(int listen_fd, int port, OnMail on_mail);

  void AcceptLoop();
  void Serve(int fd);
  // Answers the request in `buffer` if it is complete and removes it from
  // there; false when the connection must close.
  bool HandleRequests(int fd, std::string& buffer);
  bool Answer(int fd, bool ok, bool keep_alive);

  const int listen_fd_;
  const int port_;
  const OnMail on_mail_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::set<int> open_fds_;            // Guarded by mu_.
  std::vector<std::thread> servers_;  // Guarded by mu_.
};

}  // namespace authcode::bench

#endif  // AUTHCODE_BENCH_LOAD_MAIL_SINK_H_
