// What the test suite keeps for tests/e2e/log_scan.py, which looks for
// every mailed code and every configured secret in every log line of a
// run. Both are no-ops unless AUTHCODE_TEST_LOG_DIR is set (CTest sets it
// for the tests that start servers; tests/CMakeLists.txt).
//
//   - KeepCode(): a code a test read from a mail (a capture, a Maildir),
//     appended to <dir>/<pid>.codes.
//   - TestServer (test_server.h), for a test that runs the server in its
//     own process, copies every log line to <dir>/inproc-<pid>.err and
//     the config's secrets to <dir>/inproc-<pid>.env.
//
// The authcode processes the e2e and client tests start keep their own
// output (tests/e2e/process.cc, tests/clients/harness.py).
//
// Header-only. Thread safety: any thread.
#ifndef AUTHCODE_TESTS_SUPPORT_KEPT_LOGS_H_
#define AUTHCODE_TESTS_SUPPORT_KEPT_LOGS_H_

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"

namespace authcode::testing {

// AUTHCODE_TEST_LOG_DIR/<name>, or "" when nothing is kept.
inline std::string KeptPath(const std::string& name) {
  const char* dir = std::getenv("AUTHCODE_TEST_LOG_DIR");
  if (dir == nullptr || *dir == '\0') return "";
  return absl::StrCat(dir, "/", name);
}

inline std::mutex& KeptFilesMutex() {
  static std::mutex mu;
  return mu;
}

// Returns `code`.
inline const std::string& KeepCode(const std::string& code) {
  const std::string path = KeptPath(absl::StrCat("codes-", getpid(), ".codes"));
  if (!path.empty() && !code.empty()) {
    std::lock_guard<std::mutex> lock(KeptFilesMutex());
    std::ofstream(path, std::ios::app) << code << "\n";
  }
  return code;
}

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_KEPT_LOGS_H_
