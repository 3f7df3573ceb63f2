#include "bench/load/mail_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace authcode::bench {
namespace {

// Far beyond what the server's provider sends (a few KiB); a request past
// these is refused and its connection closed.
constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxBodyBytes = 1024 * 1024;

struct RequestHead {
  std::string method;
  size_t content_length = 0;
  bool keep_alive = true;
  bool supported = true;  // False for a chunked body, which we do not read.
};

RequestHead ParseHead(absl::string_view head) {
  RequestHead parsed;
  bool first = true;
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (first) {
      parsed.method = std::string(line.substr(0, line.find(' ')));
      first = false;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    const std::string value = absl::AsciiStrToLower(
        absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (name == "content-length") {
      parsed.supported &= absl::SimpleAtoi(value, &parsed.content_length);
    } else if (name == "connection" && value == "close") {
      parsed.keep_alive = false;
    } else if (name == "transfer-encoding") {
      parsed.supported = false;
    }
  }
  return parsed;
}

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::optional<SinkMail> ParsePostmarkMail(std::string_view body) {
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  const auto to = json.find("To");
  const auto text = json.find("TextBody");
  if (to == json.end() || !to->is_string() || text == json.end() ||
      !text->is_string()) {
    return std::nullopt;
  }

  const std::string& t = text->get_ref<const std::string&>();
  const size_t begin = t.find_first_of("0123456789");
  if (begin == std::string::npos) return std::nullopt;
  size_t end = begin;
  while (end < t.size() && absl::ascii_isdigit(static_cast<uint8_t>(t[end]))) {
    ++end;
  }
  if (end - begin < 6 || end - begin > 10) return std::nullopt;
  return SinkMail{to->get<std::string>(), t.substr(begin, end - begin)};
}

absl::StatusOr<std::unique_ptr<MailSink>> MailSink::Start(int port,
                                                          OnMail on_mail) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("sink: socket: ", strerror(errno)));
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string error = strerror(errno);
    close(fd);
    return absl::UnavailableError(absl::StrCat(
        "sink: cannot listen on 127.0.0.1:", port, " (--sink-port): ", error));
  }

  std::unique_ptr<MailSink> sink(
      new MailSink(fd, ntohs(address.sin_port), std::move(on_mail)));
  sink->acceptor_ = std::thread([s = sink.get()] { s->AcceptLoop(); });
  return sink;
}

MailSink::MailSink(int listen_fd, int port, OnMail on_mail)
    : listen_fd_(listen_fd), port_(port), on_mail_(std::move(on_mail)) {}

MailSink::~MailSink() {
  stopping_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  close(listen_fd_);

  std::vector<std::thread> servers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    servers.swap(servers_);
  }
  for (std::thread& t : servers) t.join();
}

void MailSink::AcceptLoop() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      if (errno != EINTR && errno != ECONNABORTED) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      close(fd);
      return;
    }
    open_fds_.insert(fd);
    servers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void MailSink::Serve(int fd) {
  std::string buffer;
  char chunk[16 * 1024];
  while (true) {
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    if (!HandleRequests(fd, buffer)) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.erase(fd);
  close(fd);
}

bool MailSink::HandleRequests(int fd, std::string& buffer) {
  while (true) {
    const size_t head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      if (buffer.size() <= kMaxHeaderBytes) return true;  // Read on.
      ++refused_;
      return false;
    }
    const RequestHead head =
        ParseHead(absl::string_view(buffer).substr(0, head_end));
    if (!head.supported || head.content_length > kMaxBodyBytes) {
      ++refused_;
      Answer(fd, false, false);
      return false;
    }
    const size_t body_start = head_end + 4;
    if (buffer.size() < body_start + head.content_length) return true;

    std::optional<SinkMail> mail;
    if (head.method == "POST") {
      mail = ParsePostmarkMail(
          std::string_view(buffer).substr(body_start, head.content_length));
    }
    const bool ok = mail.has_value() && on_mail_(*mail);
    ++(ok ? accepted_ : refused_);
    buffer.erase(0, body_start + head.content_length);
    if (!Answer(fd, ok, head.keep_alive) || !head.keep_alive) return false;
  }
}

bool MailSink::Answer(int fd, bool ok, bool keep_alive) {
  const std::string body =
      ok ? absl::StrCat(R"({"ErrorCode":0,"Message":"OK","MessageID":"sink-)",
                        accepted_.load(), "\"}")
         : std::string(R"({"ErrorCode":300,"Message":"no code in the mail"})");
  return SendAll(
      fd, absl::StrCat("HTTP/1.1 ", ok ? "200 OK" : "422 Unprocessable Entity",
                       "\r\nContent-Type: application/json\r\nContent-Length: ",
                       body.size(), "\r\nConnection: ",
                       keep_alive ? "keep-alive" : "close", "\r\n\r\n", body));
}

}  // namespace authcode::bench
