// A real DNS server for tests: Debian's dnsmasq (package dnsmasq-base) on
// 127.0.0.1, answering from the TXT records it is given. Header-only, so
// that any test binary can use it.
//
// For a name under one of its `zones` it answers the records given, no
// data when the name has none but a name below it does, and NXDOMAIN
// otherwise; a name outside the zones is REFUSED. It forwards nothing.
// Each record is a list of character-strings (at most 255 octets each),
// as a long DKIM key is published.
//
// dnsmasq cannot report a port it chose, so the server takes a port that
// was free a moment before and, should another process take it first,
// tries again on another (a bounded number of times). It runs as whoever
// runs the test: as root, dnsmasq drops to the user "nobody" after
// binding. The destructor stops it and removes its folder.
#ifndef AUTHCODE_TESTS_SUPPORT_DNS_SERVER_H_
#define AUTHCODE_TESTS_SUPPORT_DNS_SERVER_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/files.h"

namespace authcode::testing {

inline constexpr char kDnsmasq[] = "/usr/sbin/dnsmasq";

class DnsServer {
 public:
  struct Txt {
    std::string name;
    std::vector<std::string> strings;
  };

  // Serves `records` for the names under `zones` (e.g. {"test"}). Fails
  // the test, leaving port() 0, when dnsmasq does not start.
  DnsServer(const std::vector<std::string>& zones,
            const std::vector<Txt>& records)
      : dir_(MakeTempDir("authcode-dns")) {
    WriteConfig(records);
    for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
      const int port = FreePort();
      if (port > 0 && Start(zones, port)) port_ = port;
    }
    EXPECT_GT(port_, 0) << "dnsmasq did not start (is dnsmasq-base "
                           "installed? scripts/install-deps.sh); its log:\n"
                        << ReadFile(Path("dnsmasq.log"));
  }

  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  ~DnsServer() {
    Stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int port() const { return port_; }
  // "127.0.0.1:PORT", as a resolver address.
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // A record of `text` split into strings of at most 255 characters.
  static Txt Split(const std::string& name, const std::string& text) {
    Txt txt{name, {}};
    for (size_t at = 0; at < text.size(); at += 255) {
      txt.strings.push_back(text.substr(at, 255));
    }
    return txt;
  }

 private:
  std::string Path(const std::string& name) const {
    return (std::filesystem::path(dir_) / name).string();
  }

  // dnsmasq reads quoted strings, commas and semicolons within them
  // included, only from a config file, not from its command line.
  void WriteConfig(const std::vector<Txt>& records) const {
    std::string config;
    for (const Txt& txt : records) {
      absl::StrAppend(&config, "txt-record=", txt.name);
      for (const std::string& s : txt.strings) {
        std::string escaped;
        for (char c : s) {
          if (c == '"' || c == '\\') escaped += '\\';
          escaped += c;
        }
        absl::StrAppend(&config, ",\"", escaped, "\"");
      }
      config += "\n";
    }
    WriteFile(Path("dnsmasq.conf"), config);
  }

  // A port free on 127.0.0.1 for both UDP and TCP a moment ago, or 0.
  static int FreePort() {
    const int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    int port = 0;
    if (udp >= 0 &&
        bind(udp, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
            0 &&
        getsockname(udp, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port = ntohs(address.sin_port);
    }
    const int tcp = socket(AF_INET, SOCK_STREAM, 0);
    if (port > 0 && (tcp < 0 || bind(tcp, reinterpret_cast<sockaddr*>(&address),
                                     sizeof(address)) != 0)) {
      port = 0;
    }
    if (udp >= 0) close(udp);
    if (tcp >= 0) close(tcp);
    return port;
  }

  // Starts dnsmasq on `port`; true once it accepts TCP connections there,
  // false when it exits first (the port was taken) or 10 s pass.
  bool Start(const std::vector<std::string>& zones, int port) {
    std::vector<std::string> args = {
        kDnsmasq,
        "--keep-in-foreground",
        absl::StrCat("--conf-file=", Path("dnsmasq.conf")),
        absl::StrCat("--port=", port),
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--log-facility=-",
    };
    for (const std::string& zone : zones) {
      args.push_back(absl::StrCat("--local=/", zone, "/"));
    }
    // Built before fork: the child of a threaded process may not allocate.
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int log = open(Path("dnsmasq.log").c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(log, 1);
      dup2(log, 2);
      execv(kDnsmasq, argv.data());
      _exit(127);
    }
    if (log >= 0) close(log);
    if (pid_ < 0) return false;

    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      if (Accepts(port)) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    Stop();
    return false;
  }

  static bool Accepts(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address),
                            sizeof(address)) == 0;
    close(fd);
    return ok;
  }

  // SIGTERM, then SIGKILL if it has not exited within 5 s.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      usleep(50 * 1000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_DNS_SERVER_H_
