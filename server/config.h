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
    // host:port to listen on. Without TLS it must be a loopback address
    // unless allow_plaintext is set; the default binds 127.0.0.1.
    std::string listen = "127.0.0.1:50051";
    // PEM certificate chain (leaf first) and its private key, unencrypted.
    // Both or neither; with them the server speaks TLS only. Paths from the
    // file are resolved beside it; env AUTHCODE_TLS_CERT_FILE and
    // AUTHCODE_TLS_KEY_FILE override them. Read again on SIGHUP.
    std::string tls_cert_file;
    std::string tls_key_file;
    // PEM CA bundle that client certificates must chain to (mutual TLS);
    // needs the two above. Env AUTHCODE_TLS_CLIENT_CA_FILE.
    std::string tls_client_ca_file;
    // "require" (a client without a certificate is refused) or "optional"
    // (one that presents a certificate must present a good one). Empty
    // exactly when tls_client_ca_file is; "require" when only the CA is set.
    std::string tls_client_auth;
    // Lets a server without TLS listen on an address that is not loopback
    // (behind a TLS-terminating proxy, say). It warns at start-up.
    bool allow_plaintext = false;
    // Lets a server with no [tenants] listen on an address that is not
    // loopback, every caller acting as default_tenant. Without it such a
    // server refuses to start: anyone who reaches the port could issue
    // and verify codes.
    bool allow_unauthenticated = false;
    // The largest request accepted, in bytes; gRPC refuses a larger one
    // with RESOURCE_EXHAUSTED before it is read. The largest valid request
    // (20 template values of 256 bytes, every field at its limit) is under
    // 8 KiB. 4096..4194304.
    int max_request_bytes = 65536;
    // How long a stop waits for running RPCs and sends.
    absl::Duration shutdown_grace = absl::Seconds(10);
    // How often the health service checks the database: NOT_SERVING while
    // it cannot be reached, SERVING again once it can.
    absl::Duration health_interval = absl::Seconds(1);
  } server;

  struct Database {
    // libpq connection string or URI. Secret: also AUTHCODE_DATABASE_URL or
    // AUTHCODE_DATABASE_URL_FILE. Required.
    std::string url;
    // Connections for RPCs, 1..256. Delivery and clean-up have
    // delivery.workers + 1 more of their own.
    int pool_size = 8;
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
    // Issues per (tenant, client IP) when the caller passes client_ip, for
    // one address asking codes for many recipients. May be empty (none).
    std::vector<RateWindow> ip_issue = {{absl::Minutes(1), 10},
                                        {absl::Hours(1), 100}};
    // IPv6 addresses count per network of this prefix length, since one
    // host usually holds a whole /64. 32..128.
    int ipv6_prefix = 64;
    // Issues per tenant, all recipients together, in fixed windows aligned
    // to the Unix epoch: a ceiling that protects the provider quota. Empty
    // (the default) for none. A ceiling's counter is one row per tenant,
    // so it serialises that tenant's issues for the length of a commit.
    std::vector<RateWindow> ceiling;
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
    // Providers tried in order for a mail, by instance name (see
    // `providers`): the first that is healthy and within its quota sends;
    // on a retryable failure the next one is tried at once. Not empty, no
    // name twice. Env AUTHCODE_PROVIDER (comma-separated) overrides it.
    std::vector<std::string> chain = {"console"};
    // Per-purpose chains, e.g. password_reset = ["smtp"]; purposes not
    // listed use `chain`. Keys are purpose slugs.
    std::map<std::string, std::vector<std::string>> routes;
    int workers = 16;  // 1..64
    // How often an idle worker looks for due jobs when no notification
    // woke it (retries that come due, jobs queued by other replicas whose
    // notification was missed).
    absl::Duration poll_interval = absl::Seconds(1);
    int max_attempts = 5;                      // per job, 1..100
    absl::Duration lease = absl::Seconds(60);  // a claimed job's lease
    absl::Duration backoff_base = absl::Seconds(1);
    absl::Duration backoff_max = absl::Minutes(5);
    // A provider whose sends fail this many times in a row is skipped
    // for `breaker_cooldown`, then given one trial send.
    int breaker_failures = 5;  // 1..1000
    absl::Duration breaker_cooldown = absl::Seconds(30);
  } delivery;

  // One [providers.NAME] table: a provider instance. Several instances may
  // share a type (two SMTP accounts, say).
  struct Provider {
    // The registered provider type, e.g. "smtp"; defaults to NAME.
    std::string type;
    // At most `quota` sends per `quota_window` across all replicas (a
    // Gmail account's ~500 a day, say); past it the chain moves on. 0 for
    // no quota.
    long long quota = 0;  // 0..1e9
    absl::Duration quota_window = absl::Hours(24);
    // Every other key, flattened to strings, for the provider's factory.
    std::map<std::string, std::string> settings;
  };
  // Instances by name. A chain may name a type with no table here (e.g.
  // "console"): it gets type = name and no settings.
  std::map<std::string, Provider> providers;

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

  // The Prometheus endpoint (GET /metrics), on a port of its own.
  struct Metrics {
    // host:port to serve it on; empty (the default) for none. Port 0 picks
    // a free port (the log line metrics.started says which). Env
    // AUTHCODE_METRICS_LISTEN overrides it.
    std::string listen;
  } metrics;

  // `authcode doctor`, which looks up the From domain's SPF, DKIM and
  // DMARC records.
  struct Doctor {
    // DNS servers to ask, "host[:port]", comma-separated; IP addresses,
    // IPv6 in brackets when a port follows. Empty: the system's
    // (/etc/resolv.conf). The --resolver flag overrides it.
    std::string resolver;
    // How long one lookup may take, retries included. 100ms..60s.
    absl::Duration timeout = absl::Seconds(5);
  } doctor;

  // A calling service and its policy. Codes, limits and delivery status
  // belong to the tenant that issued them: no other tenant can verify,
  // see or use up what is its own.
  struct Tenant {
    // SHA-256 digests (32 raw bytes) of the bearer tokens it may present as
    // "authorization: Bearer TOKEN"; config: token_sha256 = ["hex", ...].
    // Two while a token is being rotated.
    std::vector<std::string> token_digests;
    // Names its client certificate may carry (mutual TLS): a DNS or URI
    // subject alternative name, or the subject's common name.
    std::vector<std::string> client_names;
    // Purposes it may issue and verify; empty for any.
    std::vector<std::string> purposes;
    // Its limits; those of [limits] unless set in its table.
    std::vector<RateWindow> issue;
    std::vector<RateWindow> ip_issue;
    std::vector<RateWindow> ceiling;
  };
  // [tenants.NAME]. With any tenant configured, every call must
  // authenticate as one (UNAUTHENTICATED otherwise). With none, every call
  // acts as default_tenant under [limits].
  std::map<std::string, Tenant> tenants;

  // The tenant of every call while no [tenants] are configured.
  std::string default_tenant = "default";
};

// Reads `path` (no file when empty: defaults only), applies the environment
// from `env` (tests pass their own; production passes the real one), reads
// referenced secret files and validates everything.
absl::StatusOr<Config> LoadConfig(
    const std::string& path, const std::map<std::string, std::string>& env);

// The chain for `purpose`: its route, or the default chain.
const std::vector<std::string>& ChainFor(const Config& config,
                                         const std::string& purpose);
// The instance named `name`: its table, or {type = name} when it has none.
Config::Provider ProviderInstance(const Config& config,
                                  const std::string& name);

// Whether the host of a host:port `listen` address is loopback: 127.0.0.0/8,
// ::1 (in brackets) or "localhost". Names are not resolved.
bool IsLoopbackListen(const std::string& listen);

// The longest recipient issue window, and the longest per-IP one, of any
// tenant: how long issue history must be kept.
absl::Duration LongestIssueWindow(const Config& config);
absl::Duration LongestIpWindow(const Config& config);

// Whether `server` has a certificate, so the listener speaks TLS.
inline bool TlsEnabled(const Config::Server& server) {
  return !server.tls_cert_file.empty();
}

// Reads a whole file of at most 1 MiB. Errors name the path and the OS's
// reason, never any of the contents.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);

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
