// Environment variables set for the life of an object, for tests of code
// that reads the environment (credentials, proxies). Not thread-safe:
// use it while the test has no other threads reading the environment.
#ifndef AUTHCODE_TESTS_SUPPORT_SCOPED_ENV_H_
#define AUTHCODE_TESTS_SUPPORT_SCOPED_ENV_H_

#include <stdlib.h>

#include <map>
#include <string>

namespace authcode::testing {

class ScopedEnv {
 public:
  explicit ScopedEnv(std::map<std::string, std::string> values)
      : values_(std::move(values)) {
    for (const auto& [name, value] : values_) {
      setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ScopedEnv(const std::string& name, const std::string& value)
      : ScopedEnv(std::map<std::string, std::string>{{name, value}}) {}
  ~ScopedEnv() {
    for (const auto& [name, value] : values_) unsetenv(name.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_SCOPED_ENV_H_
