// Small file helpers the tests and benchmarks share. Header-only, so the
// benchmarks can use it without the test support library.
#ifndef AUTHCODE_TESTS_SUPPORT_FILES_H_
#define AUTHCODE_TESTS_SUPPORT_FILES_H_

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace authcode::testing {

// The whole file, bytes as they are; fails the test when it cannot be read.
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

inline void WriteFile(const std::filesystem::path& path,
                      const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

// A new, empty file under the test's temporary folder.
inline std::string TempPath(const std::string& stem) {
  std::string pattern = absl::StrCat(::testing::TempDir(), stem, ".XXXXXX");
  const int fd = mkstemp(pattern.data());
  EXPECT_GE(fd, 0) << "mkstemp " << pattern;
  if (fd >= 0) close(fd);
  return pattern;
}

// A new, empty folder under /tmp named after `prefix`.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string path = absl::StrCat("/tmp/", prefix, ".XXXXXX");
  EXPECT_NE(mkdtemp(path.data()), nullptr) << "mkdtemp " << path;
  return path;
}

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_FILES_H_
