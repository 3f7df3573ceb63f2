// libFuzzer target: the config loader fed a hostile file. LoadConfig must
// never crash, and must either refuse the file with a message naming what
// is wrong or return a config whose limits hold; a secret given only
// through the environment must never be echoed in an error.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "server/config.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// The database password, which no error may quote.
constexpr absl::string_view kPassword = "Secret-Pa55";
constexpr char kDatabaseUrl[] = "postgresql://fuzz:Secret-Pa55@127.0.0.1/db";
// 32 bytes of 'h' and of 'o', base64.
constexpr char kHashingKeys[] =
    "h1:aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGg=";
constexpr char kOutboxKeys[] =
    "o1:b29vb29vb29vb29vb29vb29vb29vb29vb29vb29vb28=";

const std::string& ConfigPath() {
  static const std::string* path = new std::string(
      "/tmp/authcode-config-fuzz-" + std::to_string(getpid()) + ".toml");
  return *path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out(ConfigPath(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data),
              static_cast<std::streamsize>(size));
  }
  const std::map<std::string, std::string> env = {
      {"AUTHCODE_DATABASE_URL", kDatabaseUrl},
      {"AUTHCODE_HASHING_KEYS", kHashingKeys},
      {"AUTHCODE_OUTBOX_KEYS", kOutboxKeys}};

  absl::StatusOr<authcode::Config> config =
      authcode::LoadConfig(ConfigPath(), env);
  if (!config.ok()) {
    Check(!config.status().message().empty());
    // The error may quote the config (a key's name), so the password is
    // only sure to be absent when the config does not hold it itself.
    const absl::string_view input(reinterpret_cast<const char*>(data), size);
    if (input.find(kPassword) == absl::string_view::npos) {
      Check(!absl::StrContains(config.status().message(), kPassword));
    }
    return 0;
  }
  Check(config->codes.length >= 6 && config->codes.length <= 10);
  Check(config->codes.max_attempts >= 1);
  Check(!config->limits.issue.empty());
  Check(!config->delivery.chain.empty());
  Check(config->delivery.workers >= 1);
  return 0;
}
