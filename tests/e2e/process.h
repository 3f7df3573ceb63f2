// Running the real `authcode` binary from tests: a child process whose
// stdout and stderr are collected in the background.
#ifndef AUTHCODE_TESTS_E2E_PROCESS_H_
#define AUTHCODE_TESTS_E2E_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace authcode::testing {

class Process {
 public:
  // Starts args[0] with `args` and the environment `env`, plus this
  // process's sanitizer settings (ASAN_OPTIONS, UBSAN_OPTIONS,
  // LSAN_OPTIONS) where `env` has none of its own. When
  // AUTHCODE_TEST_LOG_DIR is set and args[0] is the authcode binary, its
  // environment, config file, stdout and stderr are kept there for
  // tests/e2e/log_scan.py.
  Process(const std::vector<std::string>& args,
          const std::vector<std::string>& env);
  // Kills the process if it still runs.
  ~Process();

  // Waits for the exit status (128 + signal when killed), or -1 past the
  // timeout. A sanitizer report on the child's stderr fails the test,
  // whatever the status.
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(30));
  void Signal(int sig);

  std::string out();
  std::string err();

  // Waits until `pattern` matches stdout (or stderr) and returns its first
  // capture group (or the whole match); fails the test and returns "" on
  // timeout.
  std::string WaitFor(bool on_stdout, const std::string& pattern,
                      std::chrono::seconds timeout = std::chrono::seconds(20));

 private:
  void Drain(int fd, std::string& into);
  // AUTHCODE_TEST_LOG_DIR/e2e-<pid>-<n>, the prefix of the kept files, or
  // "" when this process is not kept.
  std::string kept_name_;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::mutex mu_;
  std::string stdout_, stderr_;
  std::vector<std::thread> readers_;
};

// A key ring entry "id:base64" of 32 bytes of `fill`.
std::string KeyRing(const std::string& id, char fill);

// The port of the server whose log says event=server.started.
std::string WaitForPort(Process& server);

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_E2E_PROCESS_H_
