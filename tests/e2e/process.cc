#include "tests/e2e/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <regex>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace authcode::testing {
namespace {

// `env` and this process's sanitizer settings (scripts/test.sh sets them
// for a sanitized build) that `env` does not set itself, so a sanitized
// server reports, and stops, the way the test binaries do.
std::vector<std::string> WithSanitizerOptions(std::vector<std::string> env) {
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    const char* value = std::getenv(name);
    const std::string prefix = absl::StrCat(name, "=");
    const bool set = std::any_of(env.begin(), env.end(), [&](const auto& e) {
      return absl::StartsWith(e, prefix);
    });
    if (value != nullptr && !set) env.push_back(prefix + value);
  }
  return env;
}

// Whether `err` holds a report from AddressSanitizer, LeakSanitizer or
// UBSan (whose reports read "file:line:col: runtime error: ...").
bool HasSanitizerReport(const std::string& err) {
  return absl::StrContains(err, "ERROR: AddressSanitizer") ||
         absl::StrContains(err, "ERROR: LeakSanitizer") ||
         absl::StrContains(err, ": runtime error: ");
}

// Copies of what an authcode process was given, for the log scan: its
// environment (one NAME=value a line) and its config file.
void KeepInputs(const std::string& base, const std::vector<std::string>& args,
                const std::vector<std::string>& env) {
  std::ofstream(base + ".env") << absl::StrJoin(env, "\n") << "\n";
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--config") {
      std::ifstream in(args[i + 1]);
      std::ofstream(base + ".config") << in.rdbuf();
    }
  }
}

}  // namespace

Process::Process(const std::vector<std::string>& args,
                 const std::vector<std::string>& env) {
  static std::atomic<int> started{0};
  const char* log_dir = std::getenv("AUTHCODE_TEST_LOG_DIR");
  if (log_dir != nullptr && *log_dir != '\0' && !args.empty() &&
      absl::EndsWith(args[0], "/authcode")) {
    kept_name_ = absl::StrCat(log_dir, "/e2e-", getpid(), "-", ++started);
    KeepInputs(kept_name_, args, env);
  }
  // Everything the child needs is allocated before fork: after it, in a
  // threaded process, another thread may hold the allocator's lock.
  const std::vector<std::string> full_env = WithSanitizerOptions(env);
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : full_env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int out[2], err[2];
  EXPECT_EQ(pipe(out), 0);
  EXPECT_EQ(pipe(err), 0);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  readers_.emplace_back([this, fd = out[0]] { Drain(fd, stdout_); });
  readers_.emplace_back([this, fd = err[0]] { Drain(fd, stderr_); });
}

Process::~Process() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    Wait();
  }
}

int Process::Wait(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  exited_ = true;
  for (std::thread& t : readers_) t.join();
  readers_.clear();
  if (!kept_name_.empty()) {
    std::ofstream(kept_name_ + ".out") << out();
    std::ofstream(kept_name_ + ".err") << err();
  }
  if (HasSanitizerReport(err())) {
    ADD_FAILURE() << "the child reported a sanitizer finding; stderr:\n"
                  << err();
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void Process::Signal(int sig) { kill(pid_, sig); }

std::string Process::out() {
  std::lock_guard<std::mutex> lock(mu_);
  return stdout_;
}

std::string Process::err() {
  std::lock_guard<std::mutex> lock(mu_);
  return stderr_;
}

std::string Process::WaitFor(bool on_stdout, const std::string& pattern,
                             std::chrono::seconds timeout) {
  const std::regex re(pattern);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string text = on_stdout ? out() : err();
    if (std::regex_search(text, m, re)) return m.size() > 1 ? m[1] : m[0];
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "timed out waiting for /" << pattern << "/\nstdout:\n"
                << out() << "\nstderr:\n"
                << err();
  return "";
}

void Process::Drain(int fd, std::string& into) {
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    into.append(buf, n);
  }
  close(fd);
}

std::string KeyRing(const std::string& id, char fill) {
  return absl::StrCat(id, ":", absl::Base64Escape(std::string(32, fill)));
}

std::string WaitForPort(Process& server) {
  return server.WaitFor(false, "event=server.started .*port=([0-9]+)");
}

}  // namespace authcode::testing
