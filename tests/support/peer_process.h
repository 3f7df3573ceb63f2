// A Python test peer (an SMTP or HTTP server written for the tests) run as
// a child process on 127.0.0.1. Header-only, so the benchmarks can use it
// without the test support library.
//
// The peer script must print its port as the first line of stdout and
// nothing else there, write what it receives into the folder given as
// `--dir DIR`, and exit when its stdin closes. PeerProcess owns that folder
// and the child: the destructor closes the child's stdin, waits for it (5 s
// at most, then SIGKILL) and removes the folder. Not thread-safe to start or
// stop; the read-only accessors may be called from any thread.
#ifndef AUTHCODE_TESTS_SUPPORT_PEER_PROCESS_H_
#define AUTHCODE_TESTS_SUPPORT_PEER_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
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

// Debian's interpreter, which has the python3-aiosmtpd and
// python3-cryptography packages the peers need (the python3 on PATH may be
// another one).
inline constexpr char kPython[] = "/usr/bin/python3";

class PeerProcess {
 public:
  // Starts `script` with `--dir DIR` followed by `args`, DIR being a new
  // folder under /tmp named after `dir_prefix`. Waits up to 20 s for the
  // port; a peer that gives none fails the test and reports port 0.
  PeerProcess(const std::string& script, const std::vector<std::string>& args,
              const std::string& dir_prefix)
      : dir_(MakeTempDir(dir_prefix)) {
    std::vector<std::string> command = {kPython, script, "--dir", dir_};
    command.insert(command.end(), args.begin(), args.end());
    // Built before fork: the child of a threaded process may not allocate.
    std::vector<char*> argv;
    for (std::string& arg : command) argv.push_back(arg.data());
    argv.push_back(nullptr);

    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execv(kPython, argv.data());
      _exit(127);
    }
    EXPECT_GT(pid_, 0) << "fork for " << script;
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    port_ = ReadPort(out[0]);
    close(out[0]);
    EXPECT_GT(port_, 0) << "no port from " << script;
  }

  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  ~PeerProcess() {
    close(stdin_);
    if (pid_ > 0) Reap();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  // A file in the peer's folder (which may not exist yet).
  std::filesystem::path Path(const std::string& name) const {
    return std::filesystem::path(dir_) / name;
  }

  // TCP connections the peer has accepted so far, from its `connections`
  // file; 0 before the first.
  int Connections() const {
    const std::filesystem::path path = Path("connections");
    if (!std::filesystem::exists(path)) return 0;
    const std::string text = ReadFile(path);
    return text.empty() ? 0 : std::stoi(text);
  }

  // Files in the peer's folder whose names start with `prefix` and end
  // with `suffix`, such as the records of what it received.
  int CountFiles(const std::string& prefix, const std::string& suffix) const {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name.size() >= prefix.size() + suffix.size() &&
          name.compare(0, prefix.size(), prefix) == 0 &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) ==
              0) {
        ++count;
      }
    }
    return count;
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
      if (n <= 0) break;  // The peer exited before printing its port.
      line.append(buffer, static_cast<size_t>(n));
    }
    if (line.find('\n') == std::string::npos) return 0;
    return std::atoi(line.c_str());
  }

  // The peer exits once its stdin closes; one that does not is killed.
  void Reap() {
    for (int i = 0; i < 50; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(100 * 1000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  std::string dir_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  int port_ = 0;
};

// Writes a throwaway CA (ca.pem) and a server certificate for localhost
// and 127.0.0.1 (server.pem, server.key) into `dir`, with test_certs.py.
// With `clients`, also a client certificate from that CA (client.pem,
// client.key) and one from an unrelated CA (other-ca.pem,
// other-client.pem, other-client.key), for mutual TLS.
inline bool MakeTestCerts(const std::string& dir, bool clients = false) {
  const std::string script =
      (std::filesystem::path(__FILE__).parent_path() / "test_certs.py")
          .string();
  const std::string command =
      absl::StrCat(kPython, " ", script, " ", dir, clients ? " --clients" : "");
  return std::system(command.c_str()) == 0;
}

// A fixture base whose suite shares one folder of MakeTestCerts()
// certificates, made before its first test and removed after its last;
// `Suite` (the deriving fixture) gives each suite its own folder.
template <typename Suite>
class WithTestCerts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(MakeTempDir("authcode-certs"));
    ASSERT_TRUE(MakeTestCerts(*certs_));
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    std::filesystem::remove_all(*certs_, ignored);
    delete certs_;
    certs_ = nullptr;
  }
  // The folder: ca.pem, server.pem, server.key, ...
  static const std::string& certs() { return *certs_; }

 private:
  static inline std::string* certs_ = nullptr;
};

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_PEER_PROCESS_H_
