// The Python SMTP server the tests and benchmarks talk to
// (smtp_test_server.py, on Debian's aiosmtpd), run as a child process on
// 127.0.0.1 with a port of its own.
#ifndef AUTHCODE_TESTS_PROVIDERS_SMTP_SMTP_PEER_H_
#define AUTHCODE_TESTS_PROVIDERS_SMTP_SMTP_PEER_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/files.h"

namespace authcode::testing {

// Debian's interpreter, which has python3-aiosmtpd (not a pyenv one).
inline constexpr char kPython[] = "/usr/bin/python3";

inline std::string SmtpPeerScript() {
  return (std::filesystem::path(__FILE__).parent_path() / "smtp_test_server.py")
      .string();
}

// The Python test server as a child process: it prints its port, writes
// what it receives into `dir`, and exits when its stdin closes.
class SmtpPeer {
 public:
  explicit SmtpPeer(std::vector<std::string> args)
      : dir_(MakeTempDir("authcode-smtp-test")) {
    args.insert(args.begin(), {kPython, SmtpPeerScript(), "--dir", dir_});
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(kPython, argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    port_ = ReadPort(out[0]);
    close(out[0]);
  }

  ~SmtpPeer() {
    close(stdin_);
    bool exited = false;
    for (int i = 0; i < 50 && !exited; ++i) {
      exited = waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (!exited) usleep(100 * 1000);
    }
    if (!exited) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  int Connections() const {
    const std::string text =
        ReadFile(std::filesystem::path(dir_) / "connections");
    return text.empty() ? 0 : std::stoi(text);
  }
  std::string Commands() const {
    return ReadFile(std::filesystem::path(dir_) / "commands.log");
  }
  int Messages() const {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      if (entry.path().extension() == ".json") ++count;
    }
    return count;
  }
  std::string MessagePath(int n) const {
    return (std::filesystem::path(dir_) / absl::StrCat("msg-", n, ".eml"))
        .string();
  }
  nlohmann::json Envelope(int n) const {
    return nlohmann::json::parse(ReadFile(std::filesystem::path(dir_) /
                                          absl::StrCat("msg-", n, ".json")));
  }

 private:
  static int ReadPort(int fd) {
    std::string line;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (line.find('\n') == std::string::npos && absl::Now() < deadline) {
      struct pollfd pfd = {fd, POLLIN, 0};
      if (poll(&pfd, 1, 200) <= 0) continue;
      char buffer[64];
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n <= 0) break;
      line.append(buffer, static_cast<size_t>(n));
    }
    EXPECT_NE(line.find('\n'), std::string::npos) << "no port from server";
    return line.empty() ? 0 : std::atoi(line.c_str());
  }

  std::string dir_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  int port_ = 0;
};

// Writes a throwaway CA (ca.pem) and a server certificate for localhost
// and 127.0.0.1 (server.pem, server.key) into `dir`.
inline bool MakeSmtpCerts(const std::string& dir) {
  const std::string command =
      absl::StrCat(kPython, " ", SmtpPeerScript(), " --make-certs ", dir);
  return std::system(command.c_str()) == 0;
}

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_PROVIDERS_SMTP_SMTP_PEER_H_
