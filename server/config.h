// The server's configuration: one TOML file (documented in
// config.example.toml), secrets from the environment, and defaults that run
// a development server with no file at all.
//
// LoadConfig() reads, overrides and validates in one go; a bad value fails
// with InvalidArgument naming the key and why, e.g.
//   "codes.length: must be between 6 and 10, got 12".
// A loaded Config is immutable and safe to share between threads.
#ifndef AUTHCODE_SERVER_CONFIG_H_
#define AUTHCODE_SERVER_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace authcode {

// A secret key with the id that is stored beside whatever it protects, so
// keys can be rotated: the first key of a ring is used for new data, the
// others only to read old data.
struct Key {
  std::string id;
  std::string secret;  // Raw bytes.
};

// At most `limit` issues within any `window`.
struct RateWindow {
  absl::Duration window;
  int limit = 0;
};

struct Config {
  struct Server {
    // host:port to listen on. Plaintext is only for loopback until TLS
    // exists, so the default binds 127.0.0.1.
    std::string listen = "127.0.0.1:50051";
    // How long a stop waits for running RPCs and sends.
    absl::Duration shutdown_grace = absl::Seconds(10);
  } server;

  struct Database {
    // libpq connection string or URI. Secret: also AUTHCODE_DATABASE_URL or
    // AUTHCODE_DATABASE_URL_FILE. Required.
    std::string url;
    int pool_size = 8;  // 1..256
  } database;

  struct Codes {
    int length = 6;                          // digits, 6..10
    absl::Duration ttl = absl::Minutes(10);  // 10s..24h
    int max_attempts = 5;                    // per code, 1..100
  } codes;

  struct Limits {
    // Issues per (tenant, purpose, recipient). At least one window.
    std::vector<RateWindow> issue = {{absl::Seconds(60), 1},
                                     {absl::Hours(1), 5}};
    // Consecutive failed guesses per (tenant, purpose, recipient), across
    // codes, before the recipient is locked for `lockout`.
    int max_failures = 100;  // 1..100000
    absl::Duration lockout = absl::Hours(1);
    // A failure streak left alone this long is forgotten.
    absl::Duration forget_failures_after = absl::Hours(24);
  } limits;

  // HMAC keys for code hashes. Secret: from hashing.keys_file, or the
  // environment AUTHCODE_HASHING_KEYS / AUTHCODE_HASHING_KEYS_FILE. Format:
  // one "id:base64" per line or comma, the first one current; each secret at
  // least 32 bytes. Required.
  std::vector<Key> hashing_keys;

  // AES-256-GCM keys for delivery payloads at rest, same format, each secret
  // exactly 32 bytes. From outbox.keys_file or AUTHCODE_OUTBOX_KEYS(_FILE).
  // Required.
  std::vector<Key> outbox_keys;

  struct Delivery {
    std::string provider = "console";  // a registered provider name
    int workers = 2;                   // 1..64
    absl::Duration poll_interval = absl::Milliseconds(200);
    int max_attempts = 5;                      // per job, 1..100
    absl::Duration lease = absl::Seconds(60);  // a claimed job's lease
    absl::Duration backoff_base = absl::Seconds(1);
    absl::Duration backoff_max = absl::Minutes(5);
  } delivery;

  // [providers.NAME] tables, flattened to strings, handed to the factory of
  // that name. Only the configured provider's section is used.
  std::map<std::string, std::map<std::string, std::string>> providers;

  struct Mail {
    std::string from_address = "no-reply@localhost";
    std::string from_name = "authcode";
    // A folder of templates that override the built-in ones; empty for none.
    std::string templates_dir;
    std::string default_locale = "en";
  } mail;

  struct Cleanup {
    absl::Duration interval = absl::Seconds(60);
    int batch_size = 1000;  // rows deleted per statement, 1..100000
    // Expired codes stay this long so verify can still say "expired".
    absl::Duration keep_expired = absl::Hours(1);
  } cleanup;

  struct Log {
    std::string level = "info";     // trace, debug, info, warn, error
    std::string format = "logfmt";  // logfmt or json
  } log;

  // Every call belongs to this tenant until callers authenticate.
  std::string default_tenant = "default";
};

// Reads `path` (no file when empty: defaults only), applies the environment
// from `env` (tests pass their own; production passes the real one), reads
// referenced secret files and validates everything.
absl::StatusOr<Config> LoadConfig(
    const std::string& path, const std::map<std::string, std::string>& env);

// The process environment as a map, for LoadConfig.
std::map<std::string, std::string> ProcessEnvironment();

// Parses a key ring in the format described above. `what` names the source
// in errors (a key or a variable name); every secret must be at least
// `min_bytes` and at most `max_bytes` long.
absl::StatusOr<std::vector<Key>> ParseKeyRing(const std::string& text,
                                              const std::string& what,
                                              size_t min_bytes,
                                              size_t max_bytes);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_CONFIG_H_
