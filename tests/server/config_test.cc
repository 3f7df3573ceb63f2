#include "server/config.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

using Env = std::map<std::string, std::string>;

// Distinctive secrets, so that a leak into an error message is easy to
// spot.
constexpr char kDatabaseUrl[] =
    "postgresql://authcode:Db-Pa55word-Xq7@db.internal/authcode";
constexpr char kHashingSecret[] = "hashing-secret-Hq4-0123456789abcdef";
constexpr char kOutboxSecret[] = "outbox-secret-Oz9-0123456789abcd";
static_assert(sizeof(kHashingSecret) - 1 >= 32);
static_assert(sizeof(kOutboxSecret) - 1 == 32);

std::string B64(const std::string& raw) { return absl::Base64Escape(raw); }

std::string HashingRing() { return "h1:" + B64(kHashingSecret); }
std::string OutboxRing() { return "o1:" + B64(kOutboxSecret); }

// An environment holding every required secret.
Env SecretEnv() {
  return {{"AUTHCODE_DATABASE_URL", kDatabaseUrl},
          {"AUTHCODE_HASHING_KEYS", HashingRing()},
          {"AUTHCODE_OUTBOX_KEYS", OutboxRing()}};
}

std::string ErrorOf(const absl::StatusOr<Config>& result) {
  EXPECT_FALSE(result.ok()) << "loaded, but should have failed";
  return result.ok() ? "" : std::string(result.status().message());
}

std::string ErrorOf(const absl::StatusOr<std::vector<Key>>& result) {
  EXPECT_FALSE(result.ok()) << "parsed, but should have failed";
  return result.ok() ? "" : std::string(result.status().message());
}

// Checks every setting against the defaults in config.h.
void ExpectDefaults(const Config& c) {
  const Config d;
  EXPECT_EQ(c.server.listen, d.server.listen);
  EXPECT_EQ(c.server.shutdown_grace, d.server.shutdown_grace);
  EXPECT_EQ(c.server.tls_cert_file, d.server.tls_cert_file);
  EXPECT_EQ(c.server.tls_key_file, d.server.tls_key_file);
  EXPECT_EQ(c.server.tls_client_ca_file, d.server.tls_client_ca_file);
  EXPECT_EQ(c.server.tls_client_auth, d.server.tls_client_auth);
  EXPECT_EQ(c.server.allow_plaintext, d.server.allow_plaintext);
  EXPECT_EQ(c.database.pool_size, d.database.pool_size);
  EXPECT_EQ(c.codes.length, d.codes.length);
  EXPECT_EQ(c.codes.ttl, d.codes.ttl);
  EXPECT_EQ(c.codes.max_attempts, d.codes.max_attempts);
  const auto same_windows = [](const std::vector<RateWindow>& a,
                               const std::vector<RateWindow>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < b.size(); ++i) {
      EXPECT_EQ(a[i].window, b[i].window) << i;
      EXPECT_EQ(a[i].limit, b[i].limit) << i;
    }
  };
  same_windows(c.limits.issue, d.limits.issue);
  same_windows(c.limits.ip_issue, d.limits.ip_issue);
  same_windows(c.limits.ceiling, d.limits.ceiling);
  EXPECT_EQ(c.limits.ipv6_prefix, d.limits.ipv6_prefix);
  EXPECT_TRUE(c.tenants.empty());
  EXPECT_EQ(c.server.allow_unauthenticated, d.server.allow_unauthenticated);
  EXPECT_EQ(c.server.max_request_bytes, d.server.max_request_bytes);
  EXPECT_EQ(c.limits.max_failures, d.limits.max_failures);
  EXPECT_EQ(c.limits.lockout, d.limits.lockout);
  EXPECT_EQ(c.limits.forget_failures_after, d.limits.forget_failures_after);
  EXPECT_EQ(c.delivery.chain, d.delivery.chain);
  EXPECT_EQ(c.delivery.routes, d.delivery.routes);
  EXPECT_EQ(c.delivery.workers, d.delivery.workers);
  EXPECT_EQ(c.delivery.poll_interval, d.delivery.poll_interval);
  EXPECT_EQ(c.delivery.max_attempts, d.delivery.max_attempts);
  EXPECT_EQ(c.delivery.lease, d.delivery.lease);
  EXPECT_EQ(c.delivery.backoff_base, d.delivery.backoff_base);
  EXPECT_EQ(c.delivery.backoff_max, d.delivery.backoff_max);
  EXPECT_EQ(c.delivery.breaker_failures, d.delivery.breaker_failures);
  EXPECT_EQ(c.delivery.breaker_cooldown, d.delivery.breaker_cooldown);
  EXPECT_EQ(c.mail.from_address, d.mail.from_address);
  EXPECT_EQ(c.mail.from_name, d.mail.from_name);
  EXPECT_EQ(c.mail.templates_dir, d.mail.templates_dir);
  EXPECT_EQ(c.mail.default_locale, d.mail.default_locale);
  EXPECT_EQ(c.cleanup.interval, d.cleanup.interval);
  EXPECT_EQ(c.cleanup.batch_size, d.cleanup.batch_size);
  EXPECT_EQ(c.cleanup.keep_expired, d.cleanup.keep_expired);
  EXPECT_EQ(c.log.level, d.log.level);
  EXPECT_EQ(c.log.format, d.log.format);
  EXPECT_EQ(c.metrics.listen, d.metrics.listen);
  EXPECT_EQ(c.default_tenant, d.default_tenant);
}

// The example lives at the top of the source tree; builds live below it,
// so walk up from where the test runs and from where its binary is.
std::string FindExampleConfig() {
  namespace fs = std::filesystem;
  std::vector<fs::path> starts;
  if (const char* source_dir = getenv("AUTHCODE_SOURCE_DIR")) {
    starts.emplace_back(source_dir);
  }
  std::error_code error;
  starts.push_back(fs::current_path(error));
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) starts.push_back(exe.parent_path());

  for (fs::path dir : starts) {
    while (!dir.empty()) {
      const fs::path candidate = dir / "config.example.toml";
      if (fs::is_regular_file(candidate, error)) return candidate.string();
      if (dir == dir.parent_path()) break;
      dir = dir.parent_path();
    }
  }
  return "";
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "config_test.XXXXXX")
            .string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
  }

  // Writes `contents` to `name` in the test's folder; returns the path.
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  absl::StatusOr<Config> LoadToml(const std::string& toml,
                                  const Env& env = SecretEnv()) {
    return LoadConfig(Write("config.toml", toml), env);
  }

  std::string dir_;
};

TEST_F(ConfigTest, DefaultsWithNoFileTakeSecretsFromEnvironment) {
  const absl::StatusOr<Config> config = LoadConfig("", SecretEnv());
  ASSERT_TRUE(config.ok()) << config.status();

  ExpectDefaults(*config);
  EXPECT_EQ(config->database.url, kDatabaseUrl);
  EXPECT_TRUE(config->providers.empty());
  ASSERT_EQ(config->hashing_keys.size(), 1u);
  EXPECT_EQ(config->hashing_keys[0].id, "h1");
  EXPECT_EQ(config->hashing_keys[0].secret, kHashingSecret);
  ASSERT_EQ(config->outbox_keys.size(), 1u);
  EXPECT_EQ(config->outbox_keys[0].id, "o1");
  EXPECT_EQ(config->outbox_keys[0].secret, kOutboxSecret);
}

TEST_F(ConfigTest, ReadsEveryKeyFromFile) {
  Write("hashing.keys", "# current first\nh2:" + B64(std::string(40, 'b')) +
                            "\n" + HashingRing() + "\n");
  const std::string outbox_keys = Write("outbox.keys", OutboxRing());
  const absl::StatusOr<Config> config = LoadToml(R"toml(
default_tenant = "acme-1"

[server]
listen = "0.0.0.0:6000"
shutdown_grace = "30s"
tls_cert_file = "tls/server.pem"
tls_key_file = "/etc/authcode/server.key"
tls_client_ca_file = "tls/clients.pem"
tls_client_auth = "optional"
allow_plaintext = true
allow_unauthenticated = true
max_request_bytes = 16384

[database]
url = "postgresql://from-file/authcode"
pool_size = 16

[codes]
length = 8
ttl = "1h30m"
max_attempts = 3

[limits]
issue = [{ window = "30s", limit = 2 }, { window = "1h", limit = 10 },
         { window = "24h", limit = 20 }]
max_failures = 50
lockout = "2h"
forget_failures_after = "48h"
ip_issue = [{ window = "10m", limit = 30 }]
ipv6_prefix = 48
ceiling = [{ window = "24h", limit = 9000 }]

[hashing]
keys_file = "hashing.keys"

[outbox]
keys_file = ")toml" + outbox_keys + R"toml("

[delivery]
chain = ["smtp", "console"]
workers = 4
poll_interval = "250ms"
max_attempts = 7
lease = "2m"
backoff_base = "2s"
backoff_max = "10m"
breaker_failures = 3
breaker_cooldown = "2m"

[delivery.routes]
password_reset = ["gmail", "smtp"]

[providers.smtp]
host = "smtp.example.com"

[providers.gmail]
type = "smtp"
quota = 500
quota_window = "12h"
host = "smtp.gmail.com"

[providers.console]

[mail]
from_address = "codes@example.com"
from_name = "Example Codes"
templates_dir = "/etc/authcode/templates"
default_locale = "de-CH"

[cleanup]
interval = "5m"
batch_size = 500
keep_expired = "0s"

[log]
level = "debug"
format = "json"
)toml",
                                                 Env{});
  ASSERT_TRUE(config.ok()) << config.status();

  EXPECT_EQ(config->default_tenant, "acme-1");
  EXPECT_EQ(config->server.listen, "0.0.0.0:6000");
  EXPECT_EQ(config->server.shutdown_grace, absl::Seconds(30));
  // Relative TLS files are found beside the config file too.
  EXPECT_EQ(config->server.tls_cert_file, dir_ + "/tls/server.pem");
  EXPECT_EQ(config->server.tls_key_file, "/etc/authcode/server.key");
  EXPECT_EQ(config->server.tls_client_ca_file, dir_ + "/tls/clients.pem");
  EXPECT_EQ(config->server.tls_client_auth, "optional");
  EXPECT_TRUE(config->server.allow_plaintext);
  EXPECT_TRUE(config->server.allow_unauthenticated);
  EXPECT_EQ(config->server.max_request_bytes, 16384);
  EXPECT_EQ(config->database.url, "postgresql://from-file/authcode");
  EXPECT_EQ(config->database.pool_size, 16);
  EXPECT_EQ(config->codes.length, 8);
  EXPECT_EQ(config->codes.ttl, absl::Minutes(90));
  EXPECT_EQ(config->codes.max_attempts, 3);
  ASSERT_EQ(config->limits.issue.size(), 3u);
  EXPECT_EQ(config->limits.issue[0].window, absl::Seconds(30));
  EXPECT_EQ(config->limits.issue[0].limit, 2);
  EXPECT_EQ(config->limits.issue[1].window, absl::Hours(1));
  EXPECT_EQ(config->limits.issue[1].limit, 10);
  EXPECT_EQ(config->limits.issue[2].window, absl::Hours(24));
  EXPECT_EQ(config->limits.issue[2].limit, 20);
  EXPECT_EQ(config->limits.max_failures, 50);
  EXPECT_EQ(config->limits.lockout, absl::Hours(2));
  EXPECT_EQ(config->limits.forget_failures_after, absl::Hours(48));
  ASSERT_EQ(config->limits.ip_issue.size(), 1u);
  EXPECT_EQ(config->limits.ip_issue[0].window, absl::Minutes(10));
  EXPECT_EQ(config->limits.ip_issue[0].limit, 30);
  EXPECT_EQ(config->limits.ipv6_prefix, 48);
  ASSERT_EQ(config->limits.ceiling.size(), 1u);
  EXPECT_EQ(config->limits.ceiling[0].limit, 9000);
  EXPECT_EQ(config->delivery.chain,
            (std::vector<std::string>{"smtp", "console"}));
  const std::map<std::string, std::vector<std::string>> routes = {
      {"password_reset", {"gmail", "smtp"}}};
  EXPECT_EQ(config->delivery.routes, routes);
  EXPECT_EQ(config->delivery.workers, 4);
  EXPECT_EQ(config->delivery.poll_interval, absl::Milliseconds(250));
  EXPECT_EQ(config->delivery.max_attempts, 7);
  EXPECT_EQ(config->delivery.lease, absl::Minutes(2));
  EXPECT_EQ(config->delivery.backoff_base, absl::Seconds(2));
  EXPECT_EQ(config->delivery.backoff_max, absl::Minutes(10));
  EXPECT_EQ(config->delivery.breaker_failures, 3);
  EXPECT_EQ(config->delivery.breaker_cooldown, absl::Minutes(2));
  ASSERT_EQ(config->providers.size(), 3u);
  const Config::Provider& smtp = config->providers.at("smtp");
  EXPECT_EQ(smtp.type, "smtp");
  EXPECT_EQ(smtp.quota, 0);
  EXPECT_EQ(smtp.quota_window, absl::Hours(24));
  EXPECT_EQ(smtp.settings,
            (std::map<std::string, std::string>{{"host", "smtp.example.com"}}));
  const Config::Provider& gmail = config->providers.at("gmail");
  EXPECT_EQ(gmail.type, "smtp");
  EXPECT_EQ(gmail.quota, 500);
  EXPECT_EQ(gmail.quota_window, absl::Hours(12));
  EXPECT_EQ(gmail.settings,
            (std::map<std::string, std::string>{{"host", "smtp.gmail.com"}}));
  EXPECT_EQ(config->providers.at("console").type, "console");
  EXPECT_TRUE(config->providers.at("console").settings.empty());
  EXPECT_EQ(config->mail.from_address, "codes@example.com");
  EXPECT_EQ(config->mail.from_name, "Example Codes");
  EXPECT_EQ(config->mail.templates_dir, "/etc/authcode/templates");
  EXPECT_EQ(config->mail.default_locale, "de-CH");
  EXPECT_EQ(config->cleanup.interval, absl::Minutes(5));
  EXPECT_EQ(config->cleanup.batch_size, 500);
  EXPECT_EQ(config->cleanup.keep_expired, absl::ZeroDuration());
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->log.format, "json");

  // hashing.keys_file was relative: it is found beside the config file.
  ASSERT_EQ(config->hashing_keys.size(), 2u);
  EXPECT_EQ(config->hashing_keys[0].id, "h2");
  EXPECT_EQ(config->hashing_keys[0].secret, std::string(40, 'b'));
  EXPECT_EQ(config->hashing_keys[1].id, "h1");
  ASSERT_EQ(config->outbox_keys.size(), 1u);
  EXPECT_EQ(config->outbox_keys[0].secret, kOutboxSecret);
}

TEST_F(ConfigTest, IssueWindowsMayBeAnArrayOfTables) {
  const absl::StatusOr<Config> config = LoadToml(R"toml(
[[limits.issue]]
window = "10m"
limit = 3
)toml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->limits.issue.size(), 1u);
  EXPECT_EQ(config->limits.issue[0].window, absl::Minutes(10));
  EXPECT_EQ(config->limits.issue[0].limit, 3);
}

TEST_F(ConfigTest, FlattensProviderScalarsToStrings) {
  const absl::StatusOr<Config> config = LoadToml(R"toml(
[providers.smtp]
host = "smtp.example.com"
port = 587
starttls = true
verify = false
timeout_seconds = 2.5
"odd key" = -3
)toml");
  ASSERT_TRUE(config.ok()) << config.status();

  const std::map<std::string, std::string> expected = {
      {"host", "smtp.example.com"}, {"port", "587"},
      {"starttls", "true"},         {"verify", "false"},
      {"timeout_seconds", "2.5"},   {"odd key", "-3"}};
  EXPECT_EQ(config->providers.at("smtp").settings, expected);
}

TEST_F(ConfigTest, RejectsNestedProviderValues) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[providers.smtp.tls]\nverify = true\n",
       "providers.smtp.tls: expected a string, integer, float or boolean, "
       "got a table"},
      {"[providers.smtp]\nhosts = [\"a\", \"b\"]\n",
       "providers.smtp.hosts: expected a string, integer, float or boolean, "
       "got an array"},
      {"[providers]\nsmtp = \"x\"\n",
       "providers.smtp: expected a table, got a string"},
      {"[providers.gmail]\ntype = \"smtp\"\nlimits = { daily = 500 }\n",
       "providers.gmail.limits: expected a string, integer, float or boolean, "
       "got a table"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_EQ(ErrorOf(LoadToml(toml)), message);
  }
}

TEST_F(ConfigTest, RejectsUnknownKeysWithTheirFullName) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"colour = \"blue\"\n", "colour: unknown key"},
      {"[codes]\nlenght = 6\n", "codes.lenght: unknown key"},
      {"[cache]\nsize = 1\n", "cache: unknown key"},
      {"[log.extra]\nx = 1\n", "log.extra: unknown key"},
      {"[database]\nurl_file = \"/run/secret\"\n",
       "database.url_file: unknown key"},
      {"[delivery]\nprovider = \"smtp\"\n", "delivery.provider: unknown key"},
      {"[limits]\nissue = [{ window = \"1m\", limit = 1, burst = 2 }]\n",
       "limits.issue[0].burst: unknown key"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    const absl::StatusOr<Config> config = LoadToml(toml);
    EXPECT_EQ(ErrorOf(config), message);
    EXPECT_TRUE(absl::IsInvalidArgument(config.status()));
  }
}

TEST_F(ConfigTest, RejectsWrongTypesNamingKeyAndExpectedType) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[codes]\nlength = \"6\"\n",
       "codes.length: expected an integer, got a string"},
      {"[codes]\nlength = 6.0\n",
       "codes.length: expected an integer, got a float"},
      {"[server]\nlisten = 50051\n",
       "server.listen: expected a string, got an integer"},
      {"codes = 5\n", "codes: expected a table, got an integer"},
      {"[codes]\nttl = 600\n",
       "codes.ttl: expected a duration string such as \"90s\", got an "
       "integer"},
      {"[mail]\nfrom_name = true\n",
       "mail.from_name: expected a string, got a boolean"},
      {"[limits]\nissue = \"60s:1\"\n",
       "limits.issue: expected an array of {window, limit} tables, got a "
       "string"},
      {"[limits]\nissue = [1]\n",
       "limits.issue[0]: expected a table, got an integer"},
      {"default_tenant = 1979-05-27\n",
       "default_tenant: expected a string, got a date"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_EQ(ErrorOf(LoadToml(toml)), message);
  }
}

TEST_F(ConfigTest, RejectsNumbersOutOfRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[codes]\nlength = 12\n",
       "codes.length: must be between 6 and 10, got 12"},
      {"[codes]\nlength = 5\n",
       "codes.length: must be between 6 and 10, got 5"},
      {"[codes]\nlength = 99999999999\n",
       "codes.length: must be between 6 and 10, got 99999999999"},
      {"[codes]\nmax_attempts = 101\n",
       "codes.max_attempts: must be between 1 and 100, got 101"},
      {"[database]\npool_size = 0\n",
       "database.pool_size: must be between 1 and 256, got 0"},
      {"[database]\npool_size = 257\n",
       "database.pool_size: must be between 1 and 256, got 257"},
      {"[delivery]\nworkers = 65\n",
       "delivery.workers: must be between 1 and 64, got 65"},
      {"[delivery]\nmax_attempts = 0\n",
       "delivery.max_attempts: must be between 1 and 100, got 0"},
      {"[delivery]\nbreaker_failures = 0\n",
       "delivery.breaker_failures: must be between 1 and 1000, got 0"},
      {"[delivery]\nbreaker_failures = 1001\n",
       "delivery.breaker_failures: must be between 1 and 1000, got 1001"},
      {"[limits]\nmax_failures = 100001\n",
       "limits.max_failures: must be between 1 and 100000, got 100001"},
      {"[cleanup]\nbatch_size = -1\n",
       "cleanup.batch_size: must be between 1 and 100000, got -1"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_EQ(ErrorOf(LoadToml(toml)), message);
  }
}

TEST_F(ConfigTest, AcceptsNumbersAtTheEdgesOfTheirRange) {
  const absl::StatusOr<Config> config = LoadToml(R"toml(
[codes]
length = 10
ttl = "24h"
[database]
pool_size = 1
[delivery]
breaker_failures = 1000
)toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->codes.length, 10);
  EXPECT_EQ(config->codes.ttl, absl::Hours(24));
  EXPECT_EQ(config->database.pool_size, 1);
  EXPECT_EQ(config->delivery.breaker_failures, 1000);

  const absl::StatusOr<Config> low =
      LoadToml("[delivery]\nbreaker_failures = 1\n");
  ASSERT_TRUE(low.ok()) << low.status();
  EXPECT_EQ(low->delivery.breaker_failures, 1);
}

TEST_F(ConfigTest, RejectsDurationsOutOfRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[codes]\nttl = \"5s\"\n",
       "codes.ttl: must be between 10s and 24h, got 5s"},
      {"[codes]\nttl = \"25h\"\n",
       "codes.ttl: must be between 10s and 24h, got 25h"},
      {"[delivery]\npoll_interval = \"0s\"\n",
       "delivery.poll_interval: must be positive, got 0"},
      {"[delivery]\nbreaker_cooldown = \"0s\"\n",
       "delivery.breaker_cooldown: must be positive, got 0"},
      {"[delivery]\nbreaker_cooldown = \"-30s\"\n",
       "delivery.breaker_cooldown: must be positive, got -30s"},
      {"[server]\nshutdown_grace = \"-1s\"\n",
       "server.shutdown_grace: must not be negative, got -1s"},
      {"[limits]\nlockout = \"inf\"\n",
       "limits.lockout: must be positive, got inf"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_EQ(ErrorOf(LoadToml(toml)), message);
  }
}

TEST_F(ConfigTest, RejectsUnparsableDurations) {
  for (const std::string bad : {"10 minutes", "5", "", "1d", "ten"}) {
    SCOPED_TRACE(bad);
    const std::string message =
        ErrorOf(LoadToml("[cleanup]\ninterval = \"" + bad + "\"\n"));
    EXPECT_THAT(message, HasSubstr("cleanup.interval: cannot parse \"" + bad +
                                   "\" as a duration"));
  }
}

TEST_F(ConfigTest, RejectsBadIssueWindows) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"issue = []", "limits.issue: must have at least one window"},
      {"issue = [{ window = \"0s\", limit = 1 }]",
       "limits.issue[0].window: must be positive, got 0"},
      {"issue = [{ window = \"1m\", limit = 1 }, { window = \"1h\", limit = 0 "
       "}]",
       "limits.issue[1].limit: must be at least 1, got 0"},
      {"issue = [{ window = \"60s\", limit = 1 }, { window = \"1m\", limit = 2 "
       "}]",
       "limits.issue: window 1m appears more than once"},
      {"issue = [{ window = \"1m\" }]",
       "limits.issue[0]: needs both window and limit"},
      {"issue = [{ window = \"1 minute\", limit = 1 }]",
       "limits.issue[0].window: cannot parse"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_THAT(ErrorOf(LoadToml("[limits]\n" + toml + "\n")),
                HasSubstr(message));
  }
}

TEST_F(ConfigTest, RejectsBackoffBaseAboveMax) {
  EXPECT_EQ(ErrorOf(LoadToml(
                "[delivery]\nbackoff_base = \"10m\"\nbackoff_max = \"1m\"\n")),
            "delivery.backoff_base: must not exceed delivery.backoff_max "
            "(1m), got 10m");
}

TEST_F(ConfigTest, ReadsChainAndRoutes) {
  const absl::StatusOr<Config> config = LoadToml(R"toml(
[delivery]
chain = ["ses", "gmail-2", "console"]

[delivery.routes]
password_reset = ["smtp"]
sign-in = ["ses", "smtp_backup"]
)toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->delivery.chain,
            (std::vector<std::string>{"ses", "gmail-2", "console"}));
  const std::map<std::string, std::vector<std::string>> routes = {
      {"password_reset", {"smtp"}}, {"sign-in", {"ses", "smtp_backup"}}};
  EXPECT_EQ(config->delivery.routes, routes);
  // Chain names need no [providers.NAME] table.
  EXPECT_TRUE(config->providers.empty());
}

TEST_F(ConfigTest, AcceptsNamesAtTheirLimits) {
  const std::string longest = "a" + std::string(30, '0') + "z";
  ASSERT_EQ(longest.size(), 32u);
  const absl::StatusOr<Config> config =
      LoadToml("[delivery]\nchain = [\"a\", \"" + longest + "\", \"b_-9\"]\n" +
               "[delivery.routes]\n" + longest + " = [\"" + longest + "\"]\n" +
               "[providers." + longest + "]\ntype = \"" + longest + "\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->delivery.chain,
            (std::vector<std::string>{"a", longest, "b_-9"}));
  EXPECT_EQ(config->delivery.routes.at(longest),
            std::vector<std::string>{longest});
  EXPECT_EQ(config->providers.at(longest).type, longest);
}

TEST_F(ConfigTest, RejectsBadChainsAndRoutes) {
  const std::string too_long = std::string(33, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"chain = []", "delivery.chain: must name at least one provider"},
      {"chain = [\"smtp\", \"ses\", \"smtp\"]",
       "delivery.chain: \"smtp\" appears twice"},
      {"chain = [\"SMTP\"]",
       "delivery.chain: name \"SMTP\" must match [a-z][a-z0-9_-]{0,31}"},
      {"chain = [\"\"]",
       "delivery.chain: name \"\" must match [a-z][a-z0-9_-]{0,31}"},
      {"chain = [\"9smtp\"]", "delivery.chain: name \"9smtp\" must match"},
      {"chain = [\"-smtp\"]", "delivery.chain: name \"-smtp\" must match"},
      {"chain = [\"smtp main\"]",
       "delivery.chain: name \"smtp main\" must match"},
      {"chain = [\"" + too_long + "\"]",
       "delivery.chain: name \"" + too_long + "\" must match"},
      {"chain = [\"a\\nb\"]", "delivery.chain: name \"a\\nb\" must match"},
      {"chain = \"smtp\"",
       "delivery.chain: expected an array of strings, got a string"},
      {"chain = [\"smtp\", 1]",
       "delivery.chain[1]: expected a string, got an integer"},
      {"routes = [\"smtp\"]",
       "delivery.routes: expected a table, got an array"},
      {"[delivery.routes]\npassword_reset = \"smtp\"",
       "delivery.routes.password_reset: expected an array of strings, got a "
       "string"},
      {"[delivery.routes]\npassword_reset = [[\"smtp\"]]",
       "delivery.routes.password_reset[0]: expected a string, got an array"},
      {"[delivery.routes]\npassword_reset = []",
       "delivery.routes.password_reset: must name at least one provider"},
      {"[delivery.routes]\npassword_reset = [\"ses\", \"ses\"]",
       "delivery.routes.password_reset: \"ses\" appears twice"},
      {"[delivery.routes]\npassword_reset = [\"Ses\"]",
       "delivery.routes.password_reset: name \"Ses\" must match "
       "[a-z][a-z0-9_-]{0,31}"},
      {"[delivery.routes]\nReset = [\"ses\"]",
       "delivery.routes: purpose \"Reset\" must match [a-z][a-z0-9_-]{0,31}"},
      {"[delivery.routes]\n\"a\\r\\nb\" = [\"ses\"]",
       "delivery.routes: purpose \"a\\r\\nb\" must match"},
      {"[delivery.routes]\n\"a\\nb\" = \"ses\"",
       "delivery.routes: purpose \"a\\nb\" must match"},
      {"[delivery.routes]\n" + too_long + " = [\"ses\"]",
       "delivery.routes: purpose \"" + too_long + "\" must match"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    const absl::StatusOr<Config> config = LoadToml("[delivery]\n" + toml);
    EXPECT_THAT(ErrorOf(config), HasSubstr(message));
    EXPECT_THAT(ErrorOf(config), Not(HasSubstr("\n")));
    EXPECT_TRUE(absl::IsInvalidArgument(config.status()));
  }
}

TEST_F(ConfigTest, ProviderVariableIsACommaSeparatedChain) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"ses", {"ses"}},
      {"ses,smtp", {"ses", "smtp"}},
      {" ses , smtp\t,console ", {"ses", "smtp", "console"}},
  };
  for (const auto& [value, chain] : cases) {
    SCOPED_TRACE(value);
    Env env = SecretEnv();
    env["AUTHCODE_PROVIDER"] = value;
    const absl::StatusOr<Config> config =
        LoadToml("[delivery]\nchain = [\"gmail\"]\n", env);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->delivery.chain, chain);
  }
}

TEST_F(ConfigTest, ProviderVariableLeavesRoutesAlone) {
  Env env = SecretEnv();
  env["AUTHCODE_PROVIDER"] = "ses";
  const absl::StatusOr<Config> config =
      LoadToml("[delivery.routes]\npassword_reset = [\"smtp\"]\n", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(ChainFor(*config, "password_reset"),
            std::vector<std::string>{"smtp"});
  EXPECT_EQ(ChainFor(*config, "sign_in"), std::vector<std::string>{"ses"});
}

TEST_F(ConfigTest, RejectsBadProviderVariable) {
  for (const std::string value : {"ses,,smtp", "ses,", ",ses", " ", " , "}) {
    SCOPED_TRACE(value);
    Env env = SecretEnv();
    env["AUTHCODE_PROVIDER"] = value;
    EXPECT_EQ(ErrorOf(LoadConfig("", env)),
              "AUTHCODE_PROVIDER: expected provider names separated by "
              "commas, such as \"ses,smtp\"; got \"" +
                  value + "\"");
  }

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ses,smtp,ses",
       "delivery.chain (from AUTHCODE_PROVIDER): \"ses\" appears twice"},
      {"ses,SMTP",
       "delivery.chain (from AUTHCODE_PROVIDER): name \"SMTP\" must match "
       "[a-z][a-z0-9_-]{0,31}"},
      {"ses;smtp",
       "delivery.chain (from AUTHCODE_PROVIDER): name \"ses;smtp\" must "
       "match"},
  };
  for (const auto& [value, message] : cases) {
    SCOPED_TRACE(value);
    Env env = SecretEnv();
    env["AUTHCODE_PROVIDER"] = value;
    EXPECT_THAT(ErrorOf(LoadConfig("", env)), HasSubstr(message));
  }
}

TEST_F(ConfigTest, ReadsProviderInstances) {
  const absl::StatusOr<Config> config = LoadToml(R"toml(
[providers.gmail]
type = "smtp"
quota = 500
quota_window = "24h"
host = "smtp.gmail.com"
port = 587

[providers.gmail-2]
type = "smtp"
quota = 1000000000
quota_window = "1h"

[providers.ses]
quota = 0
region = "eu-west-1"
)toml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->providers.size(), 3u);

  const Config::Provider& gmail = config->providers.at("gmail");
  EXPECT_EQ(gmail.type, "smtp");
  EXPECT_EQ(gmail.quota, 500);
  EXPECT_EQ(gmail.quota_window, absl::Hours(24));
  // The reserved keys are the loader's; the factory gets only the rest.
  const std::map<std::string, std::string> gmail_settings = {
      {"host", "smtp.gmail.com"}, {"port", "587"}};
  EXPECT_EQ(gmail.settings, gmail_settings);

  const Config::Provider& second = config->providers.at("gmail-2");
  EXPECT_EQ(second.type, "smtp");
  EXPECT_EQ(second.quota, 1000000000);
  EXPECT_EQ(second.quota_window, absl::Hours(1));
  EXPECT_TRUE(second.settings.empty());

  const Config::Provider& ses = config->providers.at("ses");
  EXPECT_EQ(ses.type, "ses");  // Defaults to the name.
  EXPECT_EQ(ses.quota, 0);
  EXPECT_EQ(ses.quota_window, absl::Hours(24));
  EXPECT_EQ(ses.settings,
            (std::map<std::string, std::string>{{"region", "eu-west-1"}}));
}

TEST_F(ConfigTest, RejectsBadProviderInstances) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[providers.gmail]\ntype = \"SMTP\"\n",
       "providers.gmail.type: must match [a-z][a-z0-9_]{0,31}, got \"SMTP\""},
      {"[providers.gmail]\ntype = \"smtp-tls\"\n",
       "providers.gmail.type: must match [a-z][a-z0-9_]{0,31}, got "
       "\"smtp-tls\""},
      {"[providers.gmail]\ntype = \"\"\n",
       "providers.gmail.type: must match [a-z][a-z0-9_]{0,31}, got \"\""},
      {"[providers.gmail]\ntype = \"" + std::string(33, 's') + "\"\n",
       "providers.gmail.type: must match [a-z][a-z0-9_]{0,31}, got \"" +
           std::string(33, 's') + "\""},
      {"[providers.gmail]\ntype = 1\n",
       "providers.gmail.type: expected a string, got an integer"},
      {"[providers.gmail]\nquota = -1\n",
       "providers.gmail.quota: must be between 0 and 1000000000, got -1"},
      {"[providers.gmail]\nquota = 1000000001\n",
       "providers.gmail.quota: must be between 0 and 1000000000, got "
       "1000000001"},
      {"[providers.gmail]\nquota = \"500\"\n",
       "providers.gmail.quota: expected an integer, got a string"},
      {"[providers.gmail]\nquota_window = \"0s\"\n",
       "providers.gmail.quota_window: must be positive, got 0"},
      {"[providers.gmail]\nquota_window = \"-24h\"\n",
       "providers.gmail.quota_window: must be positive, got -24h"},
      {"[providers.gmail]\nquota_window = 86400\n",
       "providers.gmail.quota_window: expected a duration string such as "
       "\"90s\", got an integer"},
      {"[providers.Gmail]\n",
       "providers: name \"Gmail\" must match [a-z][a-z0-9_-]{0,31}"},
      {"[providers.\"gmail main\"]\n",
       "providers: name \"gmail main\" must match [a-z][a-z0-9_-]{0,31}"},
      {"[providers.2gmail]\n",
       "providers: name \"2gmail\" must match [a-z][a-z0-9_-]{0,31}"},
      {"[providers." + std::string(33, 'g') + "]\n",
       "providers: name \"" + std::string(33, 'g') +
           "\" must match [a-z][a-z0-9_-]{0,31}"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    const absl::StatusOr<Config> config = LoadToml(toml);
    EXPECT_EQ(ErrorOf(config), message);
    EXPECT_TRUE(absl::IsInvalidArgument(config.status()));
  }

  EXPECT_THAT(ErrorOf(LoadToml("[providers.gmail]\nquota_window = \"1d\"\n")),
              HasSubstr("providers.gmail.quota_window: cannot parse \"1d\""));
}

TEST_F(ConfigTest, ChainForPrefersTheRoute) {
  Config config;
  config.delivery.chain = {"ses", "console"};
  config.delivery.routes["password_reset"] = {"smtp"};

  EXPECT_EQ(ChainFor(config, "password_reset"),
            std::vector<std::string>{"smtp"});
  EXPECT_EQ(ChainFor(config, "sign_in"),
            (std::vector<std::string>{"ses", "console"}));
  EXPECT_EQ(ChainFor(config, ""), (std::vector<std::string>{"ses", "console"}));
  // A reference into the config, not a copy.
  EXPECT_EQ(&ChainFor(config, "sign_in"), &config.delivery.chain);
  EXPECT_EQ(&ChainFor(config, "password_reset"),
            &config.delivery.routes.at("password_reset"));

  EXPECT_EQ(ChainFor(Config(), "anything"),
            std::vector<std::string>{"console"});
}

TEST_F(ConfigTest, ProviderInstanceFallsBackToTheBareType) {
  const absl::StatusOr<Config> config = LoadToml(R"toml(
[delivery]
chain = ["gmail", "ses"]
[providers.gmail]
type = "smtp"
quota = 500
host = "smtp.gmail.com"
)toml");
  ASSERT_TRUE(config.ok()) << config.status();

  const Config::Provider gmail = ProviderInstance(*config, "gmail");
  EXPECT_EQ(gmail.type, "smtp");
  EXPECT_EQ(gmail.quota, 500);
  EXPECT_EQ(gmail.quota_window, absl::Hours(24));
  EXPECT_EQ(gmail.settings.at("host"), "smtp.gmail.com");

  const Config::Provider ses = ProviderInstance(*config, "ses");
  EXPECT_EQ(ses.type, "ses");
  EXPECT_EQ(ses.quota, 0);
  EXPECT_EQ(ses.quota_window, absl::Hours(24));
  EXPECT_TRUE(ses.settings.empty());
}

TEST_F(ConfigTest, RejectsBadNamesAndChoices) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[log]\nlevel = \"verbose\"\n",
       "log.level: must be one of trace, debug, info, warn, error; got "
       "\"verbose\""},
      {"[log]\nformat = \"xml\"\n",
       "log.format: must be one of logfmt, json; got \"xml\""},
      {"default_tenant = \"Acme\"\n", "default_tenant: must match"},
      {"default_tenant = \"-acme\"\n", "default_tenant: must match"},
      {"default_tenant = \"\"\n", "default_tenant: must match"},
      {"default_tenant = \"" + std::string(64, 'a') + "\"\n",
       "default_tenant: must match"},
      {"[server]\nlisten = \"\"\n", "server.listen: must be host:port"},
      {"[server]\nlisten = \"localhost\"\n",
       "server.listen: must be host:port"},
      {"[server]\nlisten = \":50051\"\n", "server.listen: must be host:port"},
      {"[server]\nlisten = \"localhost:99999\"\n",
       "server.listen: must be host:port"},
      {"[server]\nlisten = \"localhost:http\"\n",
       "server.listen: must be host:port"},
      {"[mail]\ndefault_locale = \"../../etc\"\n",
       "mail.default_locale: must be a language tag"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_THAT(ErrorOf(LoadToml(toml)), HasSubstr(message));
  }
}

TEST_F(ConfigTest, AcceptsWellFormedNames) {
  const absl::StatusOr<Config> config =
      LoadToml("default_tenant = \"" + std::string(63, 'a') +
               "\"\n[server]\nlisten = \"[::1]:0\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.listen, "[::1]:0");
  EXPECT_EQ(config->default_tenant, std::string(63, 'a'));
}

TEST_F(ConfigTest, RejectsFromAddressesThatCouldInjectHeaders) {
  for (const std::string address :
       {"codes@example.com\\r\\nBcc: victim@example.org",
        "codes@example.com\\nBcc: victim@example.org", "Codes <c@example.com>",
        "codes @example.com", "nobody", "@example.com", "codes@",
        "a@b@example.com", "a@example.com,b@example.com", "a..b@example.com",
        ".a@example.com", "a@example..com", "a@[127.0.0.1]",
        "a;b@example.com"}) {
    SCOPED_TRACE(address);
    const std::string message =
        ErrorOf(LoadToml("[mail]\nfrom_address = \"" + address + "\"\n"));
    EXPECT_THAT(message, HasSubstr("mail.from_address: must be a plain"));
    // The bad value is quoted escaped, so it cannot break a log line.
    EXPECT_THAT(message, Not(HasSubstr("\n")));
    EXPECT_THAT(message, Not(HasSubstr("\r")));
  }
}

TEST_F(ConfigTest, RejectsFromNameWithLineBreaks) {
  EXPECT_EQ(ErrorOf(LoadToml("[mail]\nfrom_name = \"Codes\\r\\nBcc: x@y\"\n")),
            "mail.from_name: must not contain line breaks or control "
            "characters");
  EXPECT_THAT(ErrorOf(LoadToml("[mail]\nfrom_name = \"a\\u0007b\"\n")),
              HasSubstr("mail.from_name"));
}

TEST_F(ConfigTest, SyntaxErrorsNameFileLineAndColumn) {
  const std::string path = Write("broken.toml", "[codes]\nlength = = 6\n");
  const std::string message = ErrorOf(LoadConfig(path, SecretEnv()));
  EXPECT_THAT(message, HasSubstr(path + ":2:"));
  EXPECT_THAT(LoadConfig(path, SecretEnv()).status().code(),
              absl::StatusCode::kInvalidArgument);
}

TEST_F(ConfigTest, MissingConfigFileIsNotFound) {
  const std::string path = dir_ + "/absent.toml";
  const absl::StatusOr<Config> config = LoadConfig(path, SecretEnv());
  EXPECT_TRUE(absl::IsNotFound(config.status())) << config.status();
  EXPECT_THAT(ErrorOf(config), HasSubstr(path));
}

TEST_F(ConfigTest, RejectsBothValueAndFileForOneSecret) {
  const std::string file = Write("secret", "x");
  for (const std::string variable :
       {"AUTHCODE_DATABASE_URL", "AUTHCODE_HASHING_KEYS",
        "AUTHCODE_OUTBOX_KEYS"}) {
    SCOPED_TRACE(variable);
    Env env = SecretEnv();
    env[variable + "_FILE"] = file;
    EXPECT_EQ(
        ErrorOf(LoadConfig("", env)),
        variable + " and " + variable + "_FILE: both are set; set only one");
  }
}

TEST_F(ConfigTest, RequiresEverySecret) {
  Env env = SecretEnv();
  env.erase("AUTHCODE_DATABASE_URL");
  const absl::StatusOr<Config> no_url = LoadConfig("", env);
  EXPECT_EQ(ErrorOf(no_url),
            "database.url: required; set it in the config or "
            "AUTHCODE_DATABASE_URL");
  EXPECT_TRUE(absl::IsInvalidArgument(no_url.status()));

  env = SecretEnv();
  env.erase("AUTHCODE_HASHING_KEYS");
  EXPECT_EQ(ErrorOf(LoadConfig("", env)),
            "hashing keys: required; set hashing.keys_file, "
            "AUTHCODE_HASHING_KEYS or AUTHCODE_HASHING_KEYS_FILE");

  env = SecretEnv();
  env.erase("AUTHCODE_OUTBOX_KEYS");
  EXPECT_EQ(ErrorOf(LoadConfig("", env)),
            "outbox keys: required; set outbox.keys_file, "
            "AUTHCODE_OUTBOX_KEYS or AUTHCODE_OUTBOX_KEYS_FILE");
}

TEST_F(ConfigTest, EmptyVariablesCountAsUnset) {
  Env env = SecretEnv();
  env["AUTHCODE_DATABASE_URL_FILE"] = "";
  env["AUTHCODE_LISTEN"] = "";
  const absl::StatusOr<Config> config = LoadConfig("", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->database.url, kDatabaseUrl);
  EXPECT_EQ(config->server.listen, Config().server.listen);

  env["AUTHCODE_DATABASE_URL"] = "";
  EXPECT_THAT(ErrorOf(LoadConfig("", env)), HasSubstr("database.url"));
}

TEST_F(ConfigTest, RejectsHashingKeyShorterThan32Bytes) {
  Env env = SecretEnv();
  env["AUTHCODE_HASHING_KEYS"] =
      HashingRing() + ",h0:" + B64(std::string(31, 'k'));
  EXPECT_EQ(ErrorOf(LoadConfig("", env)),
            "AUTHCODE_HASHING_KEYS: entry 2: the secret must be at least 32 "
            "bytes, got 31");
}

TEST_F(ConfigTest, RejectsOutboxKeyNotExactly32Bytes) {
  for (const int size : {31, 33, 64}) {
    Env env = SecretEnv();
    env["AUTHCODE_OUTBOX_KEYS"] = "o1:" + B64(std::string(size, 'k'));
    EXPECT_EQ(ErrorOf(LoadConfig("", env)),
              absl::StrCat("AUTHCODE_OUTBOX_KEYS: entry 1: the secret must "
                           "be exactly 32 bytes, got ",
                           size));
  }
}

TEST_F(ConfigTest, RejectsBadKeyRingsFromTheEnvironment) {
  Env env = SecretEnv();
  env["AUTHCODE_HASHING_KEYS"] = "h1:not*base64*at*all";
  EXPECT_EQ(ErrorOf(LoadConfig("", env)),
            "AUTHCODE_HASHING_KEYS: entry 1: the secret is not valid "
            "standard base64");

  env = SecretEnv();
  env["AUTHCODE_OUTBOX_KEYS"] = OutboxRing() + "\n" + OutboxRing();
  EXPECT_EQ(ErrorOf(LoadConfig("", env)),
            "AUTHCODE_OUTBOX_KEYS: entry 2: duplicate id \"o1\", first used "
            "by entry 1");
}

TEST_F(ConfigTest, EnvironmentWinsOverFile) {
  Write("hashing.keys", "file:" + B64(std::string(32, 'f')));
  const std::string toml = R"toml(
[server]
listen = "127.0.0.1:1111"
allow_plaintext = true
allow_unauthenticated = true
[database]
url = "postgresql://from-file/authcode"
[hashing]
keys_file = "hashing.keys"
[delivery]
chain = ["smtp"]
[log]
level = "debug"
)toml";
  Env env = SecretEnv();
  env["AUTHCODE_LISTEN"] = "0.0.0.0:2222";
  env["AUTHCODE_PROVIDER"] = "ses,console";
  env["AUTHCODE_LOG_LEVEL"] = "warn";

  const absl::StatusOr<Config> config = LoadToml(toml, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.listen, "0.0.0.0:2222");
  EXPECT_EQ(config->delivery.chain,
            (std::vector<std::string>{"ses", "console"}));
  EXPECT_EQ(config->log.level, "warn");
  EXPECT_EQ(config->database.url, kDatabaseUrl);
  ASSERT_EQ(config->hashing_keys.size(), 1u);
  EXPECT_EQ(config->hashing_keys[0].id, "h1");

  // Without the environment, the file's values stand.
  const absl::StatusOr<Config> file_only =
      LoadToml(toml, {{"AUTHCODE_OUTBOX_KEYS", OutboxRing()}});
  ASSERT_TRUE(file_only.ok()) << file_only.status();
  EXPECT_EQ(file_only->server.listen, "127.0.0.1:1111");
  EXPECT_EQ(file_only->delivery.chain, std::vector<std::string>{"smtp"});
  EXPECT_EQ(file_only->log.level, "debug");
  EXPECT_EQ(file_only->database.url, "postgresql://from-file/authcode");
  ASSERT_EQ(file_only->hashing_keys.size(), 1u);
  EXPECT_EQ(file_only->hashing_keys[0].id, "file");
}

TEST_F(ConfigTest, BadOverrideIsBlamedOnItsVariable) {
  Env env = SecretEnv();
  env["AUTHCODE_LOG_LEVEL"] = "verbose";
  EXPECT_THAT(ErrorOf(LoadConfig("", env)),
              HasSubstr("log.level (from AUTHCODE_LOG_LEVEL): must be one of"));

  env = SecretEnv();
  env["AUTHCODE_LISTEN"] = "nowhere";
  EXPECT_THAT(ErrorOf(LoadConfig("", env)),
              HasSubstr("server.listen (from AUTHCODE_LISTEN): must be"));
}

TEST_F(ConfigTest, ReadsSecretFilesAndTrimsTrailingWhitespace) {
  Env env;
  env["AUTHCODE_DATABASE_URL_FILE"] =
      Write("db-url", std::string(kDatabaseUrl) + "\n \t\r\n");
  env["AUTHCODE_HASHING_KEYS_FILE"] = Write(
      "hashing.keys", "# rotated 2024\n\nnew:" + B64(std::string(48, 'n')) +
                          "\n" + HashingRing() + "\n\n");
  env["AUTHCODE_OUTBOX_KEYS_FILE"] = Write("outbox.keys", OutboxRing() + "\n");

  const absl::StatusOr<Config> config = LoadConfig("", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->database.url, kDatabaseUrl);
  ASSERT_EQ(config->hashing_keys.size(), 2u);
  EXPECT_EQ(config->hashing_keys[0].id, "new");
  EXPECT_EQ(config->hashing_keys[0].secret, std::string(48, 'n'));
  EXPECT_EQ(config->hashing_keys[1].id, "h1");
  EXPECT_EQ(config->hashing_keys[1].secret, kHashingSecret);
  ASSERT_EQ(config->outbox_keys.size(), 1u);
  EXPECT_EQ(config->outbox_keys[0].secret, kOutboxSecret);
}

TEST_F(ConfigTest, MissingSecretFileNamesSettingAndPath) {
  const std::string path = dir_ + "/no-such-file";
  Env env = SecretEnv();
  env.erase("AUTHCODE_DATABASE_URL");
  env["AUTHCODE_DATABASE_URL_FILE"] = path;
  const absl::StatusOr<Config> config = LoadConfig("", env);
  EXPECT_TRUE(absl::IsNotFound(config.status())) << config.status();
  EXPECT_THAT(ErrorOf(config), HasSubstr("AUTHCODE_DATABASE_URL_FILE: "));
  EXPECT_THAT(ErrorOf(config), HasSubstr(path));

  env = SecretEnv();
  env.erase("AUTHCODE_OUTBOX_KEYS");
  const std::string message =
      ErrorOf(LoadToml("[outbox]\nkeys_file = \"missing.keys\"\n", env));
  EXPECT_THAT(message, HasSubstr("outbox.keys_file: "));
  EXPECT_THAT(message, HasSubstr(dir_ + "/missing.keys"));

  // A folder is not a secret file either.
  env = SecretEnv();
  env.erase("AUTHCODE_HASHING_KEYS");
  env["AUTHCODE_HASHING_KEYS_FILE"] = dir_;
  EXPECT_THAT(ErrorOf(LoadConfig("", env)),
              HasSubstr("AUTHCODE_HASHING_KEYS_FILE: cannot read " + dir_));
}

TEST_F(ConfigTest, ExampleConfigParsesAndDocumentsTheDefaults) {
  const std::string example = FindExampleConfig();
  ASSERT_FALSE(example.empty())
      << "config.example.toml not found above the working directory or the "
         "test binary; set AUTHCODE_SOURCE_DIR";

  const absl::StatusOr<Config> config = LoadConfig(example, SecretEnv());
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectDefaults(*config);
  ASSERT_EQ(config->providers.count("console"), 1u);
  EXPECT_EQ(config->providers.at("console").type, "console");
  EXPECT_TRUE(config->providers.at("console").settings.empty());
}

TEST_F(ConfigTest, NoErrorMessageContainsASecret) {
  const std::string short_secret = "ShortSecret-Zk2";
  const std::string odd_length_secret = std::string(31, 'Q') + "!";
  const std::vector<std::string> secrets = {
      kDatabaseUrl,           "Db-Pa55word-Xq7", kHashingSecret,
      B64(kHashingSecret),    kOutboxSecret,     B64(kOutboxSecret),
      short_secret,           B64(short_secret), odd_length_secret,
      B64(odd_length_secret), "TopSecretIdPart",
  };

  std::vector<absl::StatusOr<Config>> failures;
  Env env = SecretEnv();
  env["AUTHCODE_DATABASE_URL_FILE"] = Write("url", kDatabaseUrl);
  failures.push_back(LoadConfig("", env));  // Both URL variables.

  failures.push_back(LoadToml(  // URL in the file, error elsewhere.
      "[database]\nurl = \"" + std::string(kDatabaseUrl) +
      "\"\n[codes]\nlength = 12\n"));
  failures.push_back(LoadToml(  // Syntax error after the URL.
      "[database]\nurl = \"" + std::string(kDatabaseUrl) +
      "\"\npool_size = = 3\n"));
  failures.push_back(LoadToml(  // Syntax error on the URL's line.
      "[database]\nurl = " + std::string(kDatabaseUrl) + "\n"));
  failures.push_back(LoadToml(  // A provider's password, bad quota beside it.
      "[providers.gmail]\ntype = \"smtp\"\npassword = \"Db-Pa55word-Xq7\"\n"
      "quota = -1\n"));

  const std::vector<std::pair<std::string, std::string>> bad_rings = {
      {"AUTHCODE_HASHING_KEYS", "h1:" + B64(short_secret)},
      {"AUTHCODE_HASHING_KEYS", B64(kHashingSecret)},   // No id.
      {"AUTHCODE_HASHING_KEYS", "h1:" + short_secret},  // Not base64.
      {"AUTHCODE_HASHING_KEYS", "TopSecretIdPart/x:" + B64(kHashingSecret)},
      {"AUTHCODE_OUTBOX_KEYS", "o1:" + B64(odd_length_secret + "x")},
      {"AUTHCODE_OUTBOX_KEYS", kDatabaseUrl},  // Pasted into the wrong one.
      {"AUTHCODE_OUTBOX_KEYS", OutboxRing() + "," + OutboxRing()},
  };
  for (const auto& [variable, ring] : bad_rings) {
    env = SecretEnv();
    env[variable] = ring;
    failures.push_back(LoadConfig("", env));
    env.erase(variable);
    env[variable + "_FILE"] = Write("ring", ring);
    failures.push_back(LoadConfig("", env));
  }

  env = SecretEnv();  // Missing keys while the URL is known.
  env.erase("AUTHCODE_OUTBOX_KEYS");
  failures.push_back(LoadConfig("", env));

  for (size_t i = 0; i < failures.size(); ++i) {
    SCOPED_TRACE(i);
    const std::string message = ErrorOf(failures[i]);
    EXPECT_FALSE(message.empty());
    for (const std::string& secret : secrets) {
      EXPECT_THAT(message, Not(HasSubstr(secret)));
    }
  }
}

TEST_F(ConfigTest, ProcessEnvironmentHoldsTheRealEnvironment) {
  ASSERT_EQ(setenv("AUTHCODE_CONFIG_TEST_VAR", "a=b c", 1), 0);
  const Env env = ProcessEnvironment();
  unsetenv("AUTHCODE_CONFIG_TEST_VAR");
  ASSERT_EQ(env.count("AUTHCODE_CONFIG_TEST_VAR"), 1u);
  EXPECT_EQ(env.at("AUTHCODE_CONFIG_TEST_VAR"), "a=b c");
}

TEST_F(ConfigTest, TlsIsOffAndPlaintextStaysOnLoopbackByDefault) {
  const absl::StatusOr<Config> config = LoadConfig("", SecretEnv());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(TlsEnabled(config->server));
  EXPECT_TRUE(IsLoopbackListen(config->server.listen));
  EXPECT_FALSE(config->server.allow_plaintext);
  EXPECT_EQ(config->server.tls_client_auth, "");
}

TEST_F(ConfigTest, ClientAuthIsRequiredWhenAClientCaIsSet) {
  const absl::StatusOr<Config> config = LoadToml(R"toml(
[server]
tls_cert_file = "server.pem"
tls_key_file = "server.key"
tls_client_ca_file = "/etc/authcode/clients.pem"
)toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(TlsEnabled(config->server));
  EXPECT_EQ(config->server.tls_cert_file, dir_ + "/server.pem");
  EXPECT_EQ(config->server.tls_key_file, dir_ + "/server.key");
  EXPECT_EQ(config->server.tls_client_ca_file, "/etc/authcode/clients.pem");
  EXPECT_EQ(config->server.tls_client_auth, "require");
}

TEST_F(ConfigTest, RejectsIncompleteOrContradictoryTls) {
  const std::string tls =
      "tls_cert_file = \"s.pem\"\ntls_key_file = \"s.key\"\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tls_cert_file = \"s.pem\"\n",
       "server.tls_key_file: required with server.tls_cert_file; set both "
       "or neither"},
      {"tls_key_file = \"s.key\"\n",
       "server.tls_cert_file: required with server.tls_key_file; set both "
       "or neither"},
      {"tls_client_ca_file = \"ca.pem\"\n",
       "server.tls_client_ca_file: needs server.tls_cert_file and "
       "server.tls_key_file: mutual TLS is TLS with client certificates"},
      {tls + "tls_client_auth = \"optional\"\n",
       "server.tls_client_auth: needs server.tls_client_ca_file, the CA that "
       "client certificates must chain to"},
      {tls + "tls_client_ca_file = \"ca.pem\"\ntls_client_auth = \"always\"\n",
       "server.tls_client_auth: must be one of require, optional; got "
       "\"always\""},
      {"allow_plaintext = \"yes\"\n",
       "server.allow_plaintext: expected true or false, got a string"},
      {"tls_cert_file = 1\n",
       "server.tls_cert_file: expected a string, got an integer"},
  };
  for (const auto& [server, message] : cases) {
    SCOPED_TRACE(server);
    EXPECT_EQ(ErrorOf(LoadToml("[server]\n" + server)), message);
  }
}

TEST_F(ConfigTest, PlaintextOffLoopbackNeedsAllowPlaintextOrTls) {
  for (const std::string listen :
       {"0.0.0.0:50051", "10.0.0.7:50051", "[::]:50051", "128.0.0.1:50051",
        "example.com:50051", "localhost.example.com:50051", "[::2]:50051"}) {
    SCOPED_TRACE(listen);
    const std::string toml = "[server]\nlisten = \"" + listen + "\"\n";
    const std::string message = ErrorOf(LoadToml(toml));
    EXPECT_THAT(message, ::testing::StartsWith("server.allow_plaintext: "));
    EXPECT_THAT(message, HasSubstr("\"" + listen + "\" is not a loopback"));

    // Either setting says that the traffic is protected (and, with no
    // tenants, that callers need not authenticate).
    const std::string open = "allow_unauthenticated = true\n";
    const absl::StatusOr<Config> allowed =
        LoadToml(toml + open + "allow_plaintext = true\n");
    EXPECT_TRUE(allowed.ok()) << allowed.status();
    const absl::StatusOr<Config> tls = LoadToml(
        toml + open + "tls_cert_file = \"s.pem\"\ntls_key_file = \"s.key\"\n");
    EXPECT_TRUE(tls.ok()) << tls.status();
  }

  // Blamed on the variable when the address came from the environment.
  Env env = SecretEnv();
  env["AUTHCODE_LISTEN"] = "0.0.0.0:50051";
  EXPECT_THAT(ErrorOf(LoadConfig("", env)),
              HasSubstr("server.allow_plaintext: server.listen (from "
                        "AUTHCODE_LISTEN) \"0.0.0.0:50051\" is not"));
}

constexpr char kDigestA[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kDigestB[] =
    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

TEST_F(ConfigTest, ReadsTenantsWithLimitsFromLimitsUnlessTheirOwn) {
  const absl::StatusOr<Config> config = LoadToml(
      absl::StrCat("[server]\n"
                   "listen = \"0.0.0.0:50051\"\n"
                   "tls_cert_file = \"s.pem\"\ntls_key_file = \"s.key\"\n"
                   "tls_client_ca_file = \"ca.pem\"\n"
                   "[limits]\n"
                   "ip_issue = [{ window = \"1h\", limit = 40 }]\n"
                   "ipv6_prefix = 56\n"
                   "ceiling = [{ window = \"24h\", limit = 5000 }]\n"
                   "[tenants.billing]\n"
                   "token_sha256 = [\"",
                   kDigestA, "\", \"", kDigestB,
                   "\"]\n"
                   "purposes = [\"login\", \"password_reset\"]\n"
                   "issue = [{ window = \"2h\", limit = 2 }]\n"
                   "ceiling = []\n"
                   "[tenants.shop-eu]\n"
                   "client_names = [\"shop.eu.svc\", \"spiffe://acme/shop\"]\n"
                   "ip_issue = []\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->limits.ipv6_prefix, 56);
  ASSERT_EQ(config->tenants.size(), 2u);

  const Config::Tenant& billing = config->tenants.at("billing");
  ASSERT_EQ(billing.token_digests.size(), 2u);
  EXPECT_EQ(absl::BytesToHexString(billing.token_digests[0]), kDigestA);
  EXPECT_EQ(absl::BytesToHexString(billing.token_digests[1]), kDigestB);
  EXPECT_THAT(billing.purposes, ElementsAre("login", "password_reset"));
  ASSERT_EQ(billing.issue.size(), 1u);
  EXPECT_EQ(billing.issue[0].window, absl::Hours(2));
  EXPECT_EQ(billing.issue[0].limit, 2);
  ASSERT_EQ(billing.ip_issue.size(), 1u);  // From [limits].
  EXPECT_EQ(billing.ip_issue[0].limit, 40);
  EXPECT_TRUE(billing.ceiling.empty());  // Its own: none.

  const Config::Tenant& shop = config->tenants.at("shop-eu");
  EXPECT_THAT(shop.client_names,
              ElementsAre("shop.eu.svc", "spiffe://acme/shop"));
  EXPECT_TRUE(shop.purposes.empty());
  EXPECT_EQ(shop.issue.size(), config->limits.issue.size());
  EXPECT_TRUE(shop.ip_issue.empty());
  ASSERT_EQ(shop.ceiling.size(), 1u);
  EXPECT_EQ(shop.ceiling[0].window, absl::Hours(24));
  EXPECT_EQ(LongestIssueWindow(*config), absl::Hours(2));
  EXPECT_EQ(LongestIpWindow(*config), absl::Hours(1));
}

TEST_F(ConfigTest, RejectsBadTenants) {
  const std::string mtls =
      "[server]\ntls_cert_file = \"s.pem\"\ntls_key_file = \"s.key\"\n"
      "tls_client_ca_file = \"ca.pem\"\n";
  const std::string token =
      absl::StrCat("token_sha256 = [\"", kDigestA, "\"]\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[tenants.a]\npurposes = [\"login\"]\n",
       "tenants.a: needs token_sha256 or client_names"},
      {"[tenants.a]\ntoken_sha256 = [\"ac_the-token-itself\"]\n",
       "tenants.a.token_sha256[0]: must be 64 lower-case hex digits"},
      {absl::StrCat("[tenants.a]\ntoken_sha256 = [\"",
                    absl::AsciiStrToUpper(kDigestA), "\"]\n"),
       "tenants.a.token_sha256[0]: must be 64 lower-case hex digits"},
      {absl::StrCat("[tenants.a]\n", token, "[tenants.b]\n", token),
       "tenants.b.token_sha256: a token digest is also listed for tenants.a"},
      {"[tenants.a]\nclient_names = [\"a.svc\"]\n",
       "tenants.a.client_names: needs server.tls_client_ca_file"},
      {absl::StrCat(mtls, "[tenants.a]\nclient_names = [\"a.svc\"]\n",
                    "[tenants.b]\nclient_names = [\"a.svc\"]\n"),
       "tenants.b.client_names: \"a.svc\" is also listed for tenants.a"},
      {absl::StrCat(mtls, "[tenants.a]\nclient_names = [\"\"]\n"),
       "tenants.a.client_names: must be certificate names"},
      {absl::StrCat("[tenants.a]\n", token, "purposes = [\"Login\"]\n"),
       "tenants.a.purposes: purpose \"Login\" must match"},
      {absl::StrCat("[tenants.A]\n", token), "tenants: name \"A\" must match"},
      {absl::StrCat("[tenants.a]\n", token, "issue = []\n"),
       "tenants.a.issue: must have at least one window"},
      {absl::StrCat("[tenants.a]\n", token,
                    "ceiling = [{ window = \"1h\" }]\n"),
       "tenants.a.ceiling[0]: needs both window and limit"},
      {absl::StrCat("[tenants.a]\n", token, "tokens = [\"x\"]\n"),
       "tenants.a.tokens: unknown key"},
      {"[tenants]\na = 1\n", "tenants.a: expected a table"},
      {"[limits]\nipv6_prefix = 16\n",
       "limits.ipv6_prefix: must be between 32 and 128, got 16"},
  };
  for (const auto& [toml, message] : cases) {
    SCOPED_TRACE(toml);
    const std::string error = ErrorOf(LoadToml(toml));
    EXPECT_THAT(error, HasSubstr(message));
    EXPECT_THAT(error, Not(HasSubstr("ac_the-token-itself")));
  }
}

TEST_F(ConfigTest, OffLoopbackWithoutTenantsNeedsAllowUnauthenticated) {
  const std::string toml =
      "[server]\nlisten = \"0.0.0.0:50051\"\n"
      "tls_cert_file = \"s.pem\"\ntls_key_file = \"s.key\"\n";
  const std::string message = ErrorOf(LoadToml(toml));
  EXPECT_THAT(message, ::testing::StartsWith("tenants: server.listen "
                                             "\"0.0.0.0:50051\" is not a "
                                             "loopback address and no "
                                             "[tenants] are configured"));
  EXPECT_TRUE(LoadToml(toml + "allow_unauthenticated = true\n").ok());
  EXPECT_TRUE(LoadToml(absl::StrCat(toml, "[tenants.a]\ntoken_sha256 = [\"",
                                    kDigestA, "\"]\n"))
                  .ok());
  // Loopback needs neither.
  EXPECT_TRUE(LoadToml("[server]\nlisten = \"127.0.0.1:50051\"\n").ok());
}

TEST_F(ConfigTest, KnowsLoopbackListenAddresses) {
  for (const std::string listen :
       {"127.0.0.1:50051", "127.1.2.3:0", "[::1]:50051", "localhost:50051",
        "LocalHost:1", "[::ffff:127.0.0.1]:50051", "[0:0:0:0:0:0:0:1]:1"}) {
    EXPECT_TRUE(IsLoopbackListen(listen)) << listen;
    const absl::StatusOr<Config> config =
        LoadToml("[server]\nlisten = \"" + listen + "\"\n");
    EXPECT_TRUE(config.ok()) << listen << ": " << config.status();
  }
  for (const std::string listen :
       {"0.0.0.0:50051", "[::]:50051", "128.0.0.1:1", "127.0.0.1", "::1:50051",
        "127.1:50051", "[::ffff:10.0.0.1]:1", "localhost.:1", "[]:1", ""}) {
    EXPECT_FALSE(IsLoopbackListen(listen)) << listen;
  }
}

TEST_F(ConfigTest, TlsFilesFromTheEnvironmentWinOverTheFile) {
  const std::string toml = R"toml(
[server]
listen = "0.0.0.0:50051"
tls_cert_file = "file.pem"
tls_key_file = "file.key"
allow_unauthenticated = true
)toml";
  Env env = SecretEnv();
  env["AUTHCODE_TLS_CERT_FILE"] = "certs/env.pem";
  env["AUTHCODE_TLS_KEY_FILE"] = "/run/secrets/env.key";
  env["AUTHCODE_TLS_CLIENT_CA_FILE"] = "/run/secrets/clients.pem";
  const absl::StatusOr<Config> config = LoadToml(toml, env);
  ASSERT_TRUE(config.ok()) << config.status();
  // Like the *_FILE secrets, a path from the environment is taken as it
  // is, relative to the working directory.
  EXPECT_EQ(config->server.tls_cert_file, "certs/env.pem");
  EXPECT_EQ(config->server.tls_key_file, "/run/secrets/env.key");
  EXPECT_EQ(config->server.tls_client_ca_file, "/run/secrets/clients.pem");
  EXPECT_EQ(config->server.tls_client_auth, "require");

  // A certificate from the environment still needs its key, and a client
  // CA needs both.
  env = SecretEnv();
  env["AUTHCODE_TLS_CERT_FILE"] = "/run/secrets/env.pem";
  EXPECT_EQ(ErrorOf(LoadConfig("", env)),
            "server.tls_key_file: required with server.tls_cert_file; set "
            "both or neither");
  env = SecretEnv();
  env["AUTHCODE_TLS_CLIENT_CA_FILE"] = "/run/secrets/clients.pem";
  EXPECT_THAT(ErrorOf(LoadConfig("", env)),
              HasSubstr("server.tls_client_ca_file (from "
                        "AUTHCODE_TLS_CLIENT_CA_FILE): needs"));
}

TEST_F(ConfigTest, MetricsAreOffUnlessAListenAddressIsGiven) {
  const absl::StatusOr<Config> defaults = LoadConfig("", SecretEnv());
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->metrics.listen, "");

  const absl::StatusOr<Config> file =
      LoadToml("[metrics]\nlisten = \"127.0.0.1:9464\"\n");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metrics.listen, "127.0.0.1:9464");

  // Any host: the scraper may be elsewhere.
  const absl::StatusOr<Config> any =
      LoadToml("[metrics]\nlisten = \"[::]:0\"\n");
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ(any->metrics.listen, "[::]:0");

  Env env = SecretEnv();
  env["AUTHCODE_METRICS_LISTEN"] = "127.0.0.1:0";
  const absl::StatusOr<Config> from_env =
      LoadToml("[metrics]\nlisten = \"127.0.0.1:9464\"\n", env);
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->metrics.listen, "127.0.0.1:0");
}

TEST_F(ConfigTest, RejectsBadMetricsListen) {
  EXPECT_THAT(ErrorOf(LoadToml("[metrics]\nlisten = \"9464\"\n")),
              HasSubstr("metrics.listen: must be host:port"));
  EXPECT_THAT(ErrorOf(LoadToml("[metrics]\nlisten = \"127.0.0.1:70000\"\n")),
              HasSubstr("metrics.listen: must be host:port"));
  EXPECT_THAT(ErrorOf(LoadToml("[metrics]\nlisten = 9464\n")),
              HasSubstr("metrics.listen: expected a string"));
  EXPECT_THAT(ErrorOf(LoadToml("[metrics]\nport = 9464\n")),
              HasSubstr("metrics.port: unknown key"));
  EXPECT_THAT(
      ErrorOf(LoadToml("[server]\nlisten = \"127.0.0.1:9464\"\n"
                       "[metrics]\nlisten = \"127.0.0.1:9464\"\n")),
      HasSubstr("metrics.listen: \"127.0.0.1:9464\" is also server.listen"));

  Env env = SecretEnv();
  env["AUTHCODE_METRICS_LISTEN"] = "nowhere";
  EXPECT_THAT(
      ErrorOf(LoadConfig("", env)),
      HasSubstr("metrics.listen (from AUTHCODE_METRICS_LISTEN): must be"));
}

TEST(ParseKeyRingTest, ReadsLinesCommasAndComments) {
  const std::string text =
      "# keys, newest first\n\n  k2:" + B64(std::string(32, '2')) +
      "\r\n k1 : " + B64(std::string(32, '1')) +
      " , old.key_0-a:" + B64(std::string(32, '0')) + ",\n";
  const absl::StatusOr<std::vector<Key>> keys =
      ParseKeyRing(text, "test keys", 32, 32);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].id, "k2");
  EXPECT_EQ((*keys)[0].secret, std::string(32, '2'));
  EXPECT_EQ((*keys)[1].id, "k1");
  EXPECT_EQ((*keys)[1].secret, std::string(32, '1'));
  EXPECT_EQ((*keys)[2].id, "old.key_0-a");
  EXPECT_EQ((*keys)[2].secret, std::string(32, '0'));
}

TEST(ParseKeyRingTest, PaddingIsOptional) {
  // 31 and 32 bytes encode with two and one "=" of padding.
  for (const std::string& secret :
       {std::string(31, 'p'), std::string(32, 'q')}) {
    std::string encoded = B64(secret);
    ASSERT_EQ(encoded.back(), '=');
    while (encoded.back() == '=') encoded.pop_back();
    const absl::StatusOr<std::vector<Key>> keys =
        ParseKeyRing("k:" + encoded, "test keys", 1, 64);
    ASSERT_TRUE(keys.ok()) << keys.status();
    EXPECT_EQ((*keys)[0].secret, secret);
  }
}

TEST(ParseKeyRingTest, RejectsMalformedEntriesByNumber) {
  const std::string good = "k1:" + B64(std::string(32, 'g'));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "test keys: no keys"},
      {"# only a comment\n\n , \n", "test keys: no keys"},
      {good + "\nk2-" + B64(std::string(32, 'x')),
       "test keys: entry 2: expected \"id:base64secret\""},
      {good + "\n:" + B64(std::string(32, 'x')),
       "test keys: entry 2: the id must match"},
      {"-k:" + B64(std::string(32, 'x')), "test keys: entry 1: the id must"},
      {std::string(33, 'i') + ":" + B64(std::string(32, 'x')),
       "test keys: entry 1: the id must"},
      {"k/1:" + B64(std::string(32, 'x')), "test keys: entry 1: the id must"},
      {good + ",k2:", "test keys: entry 2: the secret is empty"},
      {good + ",k2:a-_b", "test keys: entry 2: the secret is not valid"},
      {good + ",k2:YWJjZA=", "test keys: entry 2: the secret is not valid"},
      {good + "\n" + good,
       "test keys: entry 2: duplicate id \"k1\", first "
       "used by entry 1"},
      {good + ",k2:" + B64(std::string(65, 'x')),
       "test keys: entry 2: the secret must be between 32 and 64 bytes, got "
       "65"},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    EXPECT_THAT(ErrorOf(ParseKeyRing(text, "test keys", 32, 64)),
                HasSubstr(message));
  }
}

}  // namespace
}  // namespace authcode
