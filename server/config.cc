#include "server/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include <toml++/toml.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/status_macros.h"

extern char** environ;

namespace authcode {
namespace {

constexpr int kIntMax = std::numeric_limits<int>::max();

// Large enough for any config or key ring; small enough that pointing a
// *_FILE variable at /dev/zero fails instead of eating memory.
constexpr size_t kMaxFileBytes = 1 << 20;

absl::Status Invalid(absl::string_view subject, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(subject, ": ", problem));
}

// Values echoed in errors end up in logs; escaping keeps a CR/LF in a bad
// value from forging log lines. Only non-secret values are ever quoted.
std::string Quote(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  }
  std::string contents;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    contents.append(buffer, n);
    if (contents.size() > kMaxFileBytes) break;
  }
  const int read_errno = std::ferror(file) ? errno : 0;
  std::fclose(file);

  if (read_errno != 0) {
    return absl::ErrnoToStatus(read_errno, absl::StrCat("cannot read ", path));
  }
  if (contents.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is larger than ", kMaxFileBytes, " bytes"));
  }
  return contents;
}

namespace {

absl::Status Annotate(const absl::Status& status, absl::string_view subject) {
  return absl::Status(status.code(),
                      absl::StrCat(subject, ": ", status.message()));
}

const char* TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown type";
}

absl::Status WrongType(absl::string_view key, absl::string_view expected,
                       const toml::node& node) {
  return Invalid(key, absl::StrCat("expected ", expected, ", got ",
                                   TypeName(node.type())));
}

absl::Status ReadStrings(const std::string& name, const toml::node& node,
                         std::vector<std::string>* out) {
  if (!node.is_array()) return WrongType(name, "an array of strings", node);
  std::vector<std::string> values;
  const toml::array& items = *node.as_array();
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string()) {
      return WrongType(absl::StrCat(name, "[", i, "]"), "a string", items[i]);
    }
    values.push_back(items[i].as_string()->get());
  }
  *out = std::move(values);
  return absl::OkStatus();
}

// An inclusive range for a duration setting; `hi` may be infinite.
struct DurationRange {
  absl::Duration lo;
  absl::Duration hi = absl::InfiniteDuration();
};
constexpr absl::Duration kNanosecond = absl::Nanoseconds(1);
constexpr DurationRange kPositive{kNanosecond};
constexpr DurationRange kNonNegative{absl::ZeroDuration()};

std::string DescribeRange(const DurationRange& range) {
  if (range.hi != absl::InfiniteDuration()) {
    return absl::StrCat("must be between ", absl::FormatDuration(range.lo),
                        " and ", absl::FormatDuration(range.hi));
  }
  if (range.lo == kNanosecond) return "must be positive";
  if (range.lo == absl::ZeroDuration()) return "must not be negative";
  return absl::StrCat("must be at least ", absl::FormatDuration(range.lo));
}

absl::Status CheckDuration(absl::string_view key, absl::Duration value,
                           const DurationRange& range) {
  if (value == absl::InfiniteDuration() || value < range.lo ||
      value > range.hi) {
    return Invalid(key, absl::StrCat(DescribeRange(range), ", got ",
                                     absl::FormatDuration(value)));
  }
  return absl::OkStatus();
}

// One TOML table being read into the Config, with its dotted name for
// errors. It remembers every key asked for, so that Finish() can reject
// the rest: a misspelt key must fail start-up, not quietly leave the
// default in place.
class Section {
 public:
  Section(const toml::table& table, std::string name)
      : table_(table), name_(std::move(name)) {}

  const toml::table& table() const { return table_; }

  std::string KeyName(const std::string& key) const {
    return name_.empty() ? key : absl::StrCat(name_, ".", key);
  }

  // The node under `key`, or null when absent.
  const toml::node* Get(const std::string& key) {
    seen_.insert(key);
    return table_.get(key);
  }

  // The table under `key`, or null when absent.
  absl::StatusOr<const toml::table*> Table(const std::string& key) {
    const toml::node* node = Get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) return WrongType(KeyName(key), "a table", *node);
    return node->as_table();
  }

  absl::Status String(const std::string& key, std::string* out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return absl::OkStatus();
    if (!node->is_string()) return WrongType(KeyName(key), "a string", *node);
    *out = node->as_string()->get();
    return absl::OkStatus();
  }

  absl::Status Bool(const std::string& key, bool* out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return absl::OkStatus();
    if (!node->is_boolean()) {
      return WrongType(KeyName(key), "true or false", *node);
    }
    *out = node->as_boolean()->get();
    return absl::OkStatus();
  }

  absl::Status Int(const std::string& key, int lo, int hi, int* out) {
    long long value = *out;
    RETURN_IF_ERROR(LongLong(key, lo, hi, &value));
    *out = static_cast<int>(value);
    return absl::OkStatus();
  }

  absl::Status LongLong(const std::string& key, long long lo, long long hi,
                        long long* out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return absl::OkStatus();
    if (!node->is_integer()) {
      return WrongType(KeyName(key), "an integer", *node);
    }
    const int64_t value = node->as_integer()->get();
    if (value < lo || value > hi) {
      const std::string range =
          hi == kIntMax ? absl::StrCat("must be at least ", lo)
                        : absl::StrCat("must be between ", lo, " and ", hi);
      return Invalid(KeyName(key), absl::StrCat(range, ", got ", value));
    }
    *out = value;
    return absl::OkStatus();
  }

  absl::Status Duration(const std::string& key, const DurationRange& range,
                        absl::Duration* out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return absl::OkStatus();
    if (!node->is_string()) {
      return WrongType(KeyName(key), "a duration string such as \"90s\"",
                       *node);
    }
    const std::string& text = node->as_string()->get();
    absl::Duration value;
    if (!absl::ParseDuration(text, &value)) {
      return Invalid(KeyName(key),
                     absl::StrCat("cannot parse ", Quote(text),
                                  " as a duration; write e.g. \"250ms\", "
                                  "\"90s\", \"10m\" or \"1h30m\""));
    }
    RETURN_IF_ERROR(CheckDuration(KeyName(key), value, range));
    *out = value;
    return absl::OkStatus();
  }

  // An array of strings under `key`, replacing `out` as a whole.
  absl::Status Strings(const std::string& key, std::vector<std::string>* out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return absl::OkStatus();
    return ReadStrings(KeyName(key), *node, out);
  }

  bool Seen(const std::string& key) const { return seen_.count(key) != 0; }

  absl::Status Finish() const {
    for (const auto& [key, node] : table_) {
      const std::string name(key.str());
      if (!Seen(name)) return Invalid(KeyName(name), "unknown key");
    }
    return absl::OkStatus();
  }

 private:
  const toml::table& table_;
  const std::string name_;
  std::set<std::string> seen_;
};

// What a config file holds: the Config, plus where to find key rings.
struct FileSettings {
  Config config;
  // Resolved against the config file's folder; empty when not set.
  std::string hashing_keys_file;
  std::string outbox_keys_file;
};

absl::Status ReadServer(Section& s, FileSettings& f) {
  Config::Server& server = f.config.server;
  RETURN_IF_ERROR(s.String("listen", &server.listen));
  RETURN_IF_ERROR(s.String("tls_cert_file", &server.tls_cert_file));
  RETURN_IF_ERROR(s.String("tls_key_file", &server.tls_key_file));
  RETURN_IF_ERROR(s.String("tls_client_ca_file", &server.tls_client_ca_file));
  RETURN_IF_ERROR(s.String("tls_client_auth", &server.tls_client_auth));
  RETURN_IF_ERROR(s.Bool("allow_plaintext", &server.allow_plaintext));
  RETURN_IF_ERROR(
      s.Bool("allow_unauthenticated", &server.allow_unauthenticated));
  RETURN_IF_ERROR(
      s.Int("max_request_bytes", 4096, 4 << 20, &server.max_request_bytes));
  RETURN_IF_ERROR(
      s.Duration("health_interval", kPositive, &server.health_interval));
  return s.Duration("shutdown_grace", kNonNegative, &server.shutdown_grace);
}

absl::Status ReadDatabase(Section& s, FileSettings& f) {
  RETURN_IF_ERROR(s.String("url", &f.config.database.url));
  return s.Int("pool_size", 1, 256, &f.config.database.pool_size);
}

absl::Status ReadCodes(Section& s, FileSettings& f) {
  Config::Codes& codes = f.config.codes;
  RETURN_IF_ERROR(s.Int("length", 6, 10, &codes.length));
  RETURN_IF_ERROR(
      s.Duration("ttl", {absl::Seconds(10), absl::Hours(24)}, &codes.ttl));
  return s.Int("max_attempts", 1, 100, &codes.max_attempts);
}

// An array of {window, limit} tables under `key` that replaces `out` as a
// whole. Only limits.issue and its per-tenant override need a window.
absl::Status ReadWindows(Section& s, const std::string& key, bool may_be_empty,
                         std::vector<RateWindow>* out) {
  const std::string name = s.KeyName(key);
  const toml::node* node = s.Get(key);
  if (node == nullptr) return absl::OkStatus();
  if (!node->is_array()) {
    return WrongType(name, "an array of {window, limit} tables", *node);
  }

  std::vector<RateWindow> windows;
  const toml::array& items = *node->as_array();
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string item_name = absl::StrCat(name, "[", i, "]");
    if (!items[i].is_table()) return WrongType(item_name, "a table", items[i]);

    Section item(*items[i].as_table(), item_name);
    if (item.Get("window") == nullptr || item.Get("limit") == nullptr) {
      return Invalid(item_name, "needs both window and limit");
    }
    RateWindow window;
    RETURN_IF_ERROR(item.Duration("window", kPositive, &window.window));
    RETURN_IF_ERROR(item.Int("limit", 1, kIntMax, &window.limit));
    RETURN_IF_ERROR(item.Finish());

    for (const RateWindow& earlier : windows) {
      if (earlier.window == window.window) {
        return Invalid(
            name, absl::StrCat("window ", absl::FormatDuration(window.window),
                               " appears more than once"));
      }
    }
    windows.push_back(window);
  }

  if (windows.empty() && !may_be_empty) {
    return Invalid(name, "must have at least one window");
  }
  *out = std::move(windows);
  return absl::OkStatus();
}

absl::Status ReadLimits(Section& s, FileSettings& f) {
  Config::Limits& limits = f.config.limits;
  RETURN_IF_ERROR(ReadWindows(s, "issue", false, &limits.issue));
  RETURN_IF_ERROR(ReadWindows(s, "ip_issue", true, &limits.ip_issue));
  RETURN_IF_ERROR(s.Int("ipv6_prefix", 32, 128, &limits.ipv6_prefix));
  RETURN_IF_ERROR(ReadWindows(s, "ceiling", true, &limits.ceiling));
  RETURN_IF_ERROR(s.Int("max_failures", 1, 100000, &limits.max_failures));
  RETURN_IF_ERROR(s.Duration("lockout", kPositive, &limits.lockout));
  return s.Duration("forget_failures_after", kPositive,
                    &limits.forget_failures_after);
}

absl::Status ReadHashing(Section& s, FileSettings& f) {
  return s.String("keys_file", &f.hashing_keys_file);
}

absl::Status ReadOutbox(Section& s, FileSettings& f) {
  return s.String("keys_file", &f.outbox_keys_file);
}

// Provider instance names and purpose slugs. Type names are registry keys
// and take no '-'.
constexpr char kNamePattern[] = "[a-z][a-z0-9_-]{0,31}";
constexpr char kTypePattern[] = "[a-z][a-z0-9_]{0,31}";

// Whether `text` is 1 to 32 characters of a-z, 0-9 and `punctuation`,
// starting with a letter.
bool IsName(absl::string_view text, absl::string_view punctuation) {
  if (text.empty() || text.size() > 32 ||
      !absl::ascii_islower(static_cast<unsigned char>(text[0]))) {
    return false;
  }
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (!absl::ascii_islower(byte) && !absl::ascii_isdigit(byte) &&
        punctuation.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// [delivery.routes]: purpose = ["instance", ...]. The chains are checked
// in Validate(), with the default chain.
absl::Status ReadRoutes(Section& s, Config::Delivery& d) {
  const std::string name = s.KeyName("routes");
  ASSIGN_OR_RETURN(const toml::table* routes, s.Table("routes"));
  if (routes == nullptr) return absl::OkStatus();
  for (const auto& [key, node] : *routes) {
    const std::string purpose(key.str());
    if (!IsName(purpose, "_-")) {
      return Invalid(name, absl::StrCat("purpose ", Quote(purpose),
                                        " must match ", kNamePattern));
    }
    RETURN_IF_ERROR(
        ReadStrings(name + "." + purpose, node, &d.routes[purpose]));
  }
  return absl::OkStatus();
}

absl::Status ReadDelivery(Section& s, FileSettings& f) {
  Config::Delivery& d = f.config.delivery;
  RETURN_IF_ERROR(s.Strings("chain", &d.chain));
  RETURN_IF_ERROR(ReadRoutes(s, d));
  RETURN_IF_ERROR(s.Int("workers", 1, 64, &d.workers));
  RETURN_IF_ERROR(s.Duration("poll_interval", kPositive, &d.poll_interval));
  RETURN_IF_ERROR(s.Int("max_attempts", 1, 100, &d.max_attempts));
  RETURN_IF_ERROR(s.Duration("lease", kPositive, &d.lease));
  RETURN_IF_ERROR(s.Duration("backoff_base", kPositive, &d.backoff_base));
  RETURN_IF_ERROR(s.Duration("backoff_max", kPositive, &d.backoff_max));
  RETURN_IF_ERROR(s.Int("breaker_failures", 1, 1000, &d.breaker_failures));
  return s.Duration("breaker_cooldown", kPositive, &d.breaker_cooldown);
}

// Provider factories take plain strings, so scalars are flattened here:
// floats in their shortest exact form, booleans as "true"/"false".
absl::StatusOr<std::string> FlattenScalar(const std::string& key,
                                          const toml::node& node) {
  if (node.is_string()) return node.as_string()->get();
  if (node.is_integer()) return absl::StrCat(node.as_integer()->get());
  if (node.is_boolean()) {
    return std::string(node.as_boolean()->get() ? "true" : "false");
  }
  if (node.is_floating_point()) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer),
                                      node.as_floating_point()->get());
    return std::string(buffer, result.ptr);
  }
  return WrongType(key, "a string, integer, float or boolean", node);
}

// One [providers.NAME] table. The keys every instance has are read here;
// which other keys a type takes is its factory's business, so they are
// only checked to be scalars. Whether the type exists is the registry's
// business too, so a type defaulted from NAME is not checked here.
absl::StatusOr<Config::Provider> ReadProvider(Section& s,
                                              const std::string& name) {
  Config::Provider p;
  p.type = name;
  if (s.table().contains("type")) {
    RETURN_IF_ERROR(s.String("type", &p.type));
    if (!IsName(p.type, "_")) {
      return Invalid(
          s.KeyName("type"),
          absl::StrCat("must match ", kTypePattern, ", got ", Quote(p.type)));
    }
  }
  RETURN_IF_ERROR(s.LongLong("quota", 0, 1000000000, &p.quota));
  RETURN_IF_ERROR(s.Duration("quota_window", kPositive, &p.quota_window));

  for (const auto& [toml_key, node] : s.table()) {
    const std::string key(toml_key.str());
    if (s.Seen(key)) continue;
    ASSIGN_OR_RETURN(p.settings[key], FlattenScalar(s.KeyName(key), node));
  }
  return p;
}

absl::Status ReadProviders(Section& s, FileSettings& f) {
  std::vector<std::string> names;
  for (const auto& [name, node] : s.table()) names.emplace_back(name.str());

  for (const std::string& name : names) {
    if (!IsName(name, "_-")) {
      return Invalid("providers", absl::StrCat("name ", Quote(name),
                                               " must match ", kNamePattern));
    }
    ASSIGN_OR_RETURN(const toml::table* table, s.Table(name));
    Section instance(*table, s.KeyName(name));
    ASSIGN_OR_RETURN(f.config.providers[name], ReadProvider(instance, name));
  }
  return absl::OkStatus();
}

// token_sha256: the lower-case hex SHA-256 of each token, never a token.
absl::Status ReadTokenDigests(Section& s, std::vector<std::string>* out) {
  std::vector<std::string> hex;
  RETURN_IF_ERROR(s.Strings("token_sha256", &hex));
  for (size_t i = 0; i < hex.size(); ++i) {
    const bool ok =
        hex[i].size() == 64 &&
        hex[i].find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!ok) {
      // The entry is not quoted: it may be a token pasted by mistake.
      return Invalid(absl::StrCat(s.KeyName("token_sha256"), "[", i, "]"),
                     "must be 64 lower-case hex digits, the SHA-256 of a "
                     "token (authcode new-token prints both); never the "
                     "token itself");
    }
    out->push_back(absl::HexStringToBytes(hex[i]));
  }
  return absl::OkStatus();
}

// [tenants.NAME]: read after [limits], whose windows are the defaults.
absl::Status ReadTenants(Section& s, FileSettings& f) {
  std::vector<std::string> names;
  for (const auto& [name, node] : s.table()) names.emplace_back(name.str());

  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(const toml::table* table, s.Table(name));
    Section t(*table, s.KeyName(name));
    Config::Tenant tenant;
    tenant.issue = f.config.limits.issue;
    tenant.ip_issue = f.config.limits.ip_issue;
    tenant.ceiling = f.config.limits.ceiling;
    RETURN_IF_ERROR(ReadTokenDigests(t, &tenant.token_digests));
    RETURN_IF_ERROR(t.Strings("client_names", &tenant.client_names));
    RETURN_IF_ERROR(t.Strings("purposes", &tenant.purposes));
    RETURN_IF_ERROR(ReadWindows(t, "issue", false, &tenant.issue));
    RETURN_IF_ERROR(ReadWindows(t, "ip_issue", true, &tenant.ip_issue));
    RETURN_IF_ERROR(ReadWindows(t, "ceiling", true, &tenant.ceiling));
    RETURN_IF_ERROR(t.Finish());
    f.config.tenants[name] = std::move(tenant);
  }
  return absl::OkStatus();
}

absl::Status ReadMail(Section& s, FileSettings& f) {
  Config::Mail& mail = f.config.mail;
  RETURN_IF_ERROR(s.String("from_address", &mail.from_address));
  RETURN_IF_ERROR(s.String("from_name", &mail.from_name));
  RETURN_IF_ERROR(s.String("templates_dir", &mail.templates_dir));
  return s.String("default_locale", &mail.default_locale);
}

absl::Status ReadCleanup(Section& s, FileSettings& f) {
  Config::Cleanup& cleanup = f.config.cleanup;
  RETURN_IF_ERROR(s.Duration("interval", kPositive, &cleanup.interval));
  RETURN_IF_ERROR(s.Int("batch_size", 1, 100000, &cleanup.batch_size));
  return s.Duration("keep_expired", kNonNegative, &cleanup.keep_expired);
}

absl::Status ReadDoctor(Section& s, FileSettings& f) {
  constexpr DurationRange kLookupTimeout{absl::Milliseconds(100),
                                         absl::Seconds(60)};
  RETURN_IF_ERROR(s.String("resolver", &f.config.doctor.resolver));
  return s.Duration("timeout", kLookupTimeout, &f.config.doctor.timeout);
}

absl::Status ReadMetrics(Section& s, FileSettings& f) {
  return s.String("listen", &f.config.metrics.listen);
}

absl::Status ReadLog(Section& s, FileSettings& f) {
  RETURN_IF_ERROR(s.String("level", &f.config.log.level));
  return s.String("format", &f.config.log.format);
}

struct SectionReader {
  const char* name;
  absl::Status (*read)(Section&, FileSettings&);
};
constexpr SectionReader kSectionReaders[] = {
    {"server", ReadServer},       {"database", ReadDatabase},
    {"codes", ReadCodes},         {"limits", ReadLimits},
    {"tenants", ReadTenants},     {"hashing", ReadHashing},
    {"outbox", ReadOutbox},       {"delivery", ReadDelivery},
    {"providers", ReadProviders}, {"mail", ReadMail},
    {"cleanup", ReadCleanup},     {"log", ReadLog},
    {"doctor", ReadDoctor},       {"metrics", ReadMetrics},
};

// Key files named in the config are found relative to the config file, so
// they are found whatever the server's working directory.
std::string ResolveBeside(const std::string& config_path,
                          const std::string& file) {
  if (file.empty()) return file;
  return (std::filesystem::path(config_path).parent_path() / file).string();
}

absl::StatusOr<toml::table> ParseToml(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path);
  if (!text.ok()) return Annotate(text.status(), "config file");
  try {
    return toml::parse(std::string_view(*text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    // toml++ quotes at most the offending token, never the whole line, so
    // a secret elsewhere in the file stays out of the message.
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", e.source().begin.line, ":", e.source().begin.column, ": ",
        std::string(e.description())));
  }
}

absl::StatusOr<FileSettings> ReadConfigFile(const std::string& path) {
  ASSIGN_OR_RETURN(const toml::table root, ParseToml(path));

  FileSettings f;
  Section top(root, "");
  for (const SectionReader& reader : kSectionReaders) {
    ASSIGN_OR_RETURN(const toml::table* table, top.Table(reader.name));
    if (table == nullptr) continue;
    Section section(*table, reader.name);
    RETURN_IF_ERROR(reader.read(section, f));
    RETURN_IF_ERROR(section.Finish());
  }
  RETURN_IF_ERROR(top.String("default_tenant", &f.config.default_tenant));
  RETURN_IF_ERROR(top.Finish());

  f.hashing_keys_file = ResolveBeside(path, f.hashing_keys_file);
  f.outbox_keys_file = ResolveBeside(path, f.outbox_keys_file);
  Config::Server& server = f.config.server;
  for (std::string* file : {&server.tls_cert_file, &server.tls_key_file,
                            &server.tls_client_ca_file}) {
    *file = ResolveBeside(path, *file);
  }
  return f;
}

using Env = std::map<std::string, std::string>;

// Null when unset or empty: deployment tools often export empty variables,
// and an empty value means "not set" for every variable read here.
const std::string* Lookup(const Env& env, const std::string& name) {
  const auto it = env.find(name);
  if (it == env.end() || it->second.empty()) return nullptr;
  return &it->second;
}

// Settings that the environment replaced, so that a bad value is blamed
// on the variable that set it.
using Origins = std::map<std::string, std::string>;

void Override(const Env& env, const std::string& variable,
              const std::string& key, std::string* field, Origins* origins) {
  const std::string* value = Lookup(env, variable);
  if (value == nullptr) return;
  *field = *value;
  (*origins)[key] = variable;
}

// AUTHCODE_PROVIDER="ses,smtp" replaces delivery.chain.
absl::Status OverrideChain(const Env& env, std::vector<std::string>* field,
                           Origins* origins) {
  constexpr char kVariable[] = "AUTHCODE_PROVIDER";
  const std::string* value = Lookup(env, kVariable);
  if (value == nullptr) return absl::OkStatus();

  std::vector<std::string> chain;
  for (absl::string_view item : absl::StrSplit(*value, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) {
      return Invalid(kVariable,
                     absl::StrCat("expected provider names separated by "
                                  "commas, such as \"ses,smtp\"; got ",
                                  Quote(*value)));
    }
    chain.emplace_back(item);
  }
  *field = std::move(chain);
  (*origins)["delivery.chain"] = kVariable;
  return absl::OkStatus();
}

std::string Subject(const Origins& origins, const std::string& key) {
  const auto it = origins.find(key);
  if (it == origins.end()) return key;
  return absl::StrCat(key, " (from ", it->second, ")");
}

struct Secret {
  std::string value;
  std::string source;  // Names the setting, and the file if any.
};

absl::StatusOr<Secret> SecretFromFile(const std::string& path,
                                      const std::string& setting) {
  absl::StatusOr<std::string> contents = ReadSmallFile(path);
  if (!contents.ok()) return Annotate(contents.status(), setting);
  absl::StripTrailingAsciiWhitespace(&*contents);
  return Secret{*std::move(contents), absl::StrCat(setting, " (", path, ")")};
}

// The secret in `variable`, or in the file named by `variable`_FILE;
// nullopt when neither is set.
absl::StatusOr<std::optional<Secret>> SecretFromEnv(
    const Env& env, const std::string& variable) {
  const std::string file_variable = variable + "_FILE";
  const std::string* value = Lookup(env, variable);
  const std::string* file = Lookup(env, file_variable);
  if (value != nullptr && file != nullptr) {
    return Invalid(absl::StrCat(variable, " and ", file_variable),
                   "both are set; set only one");
  }
  if (value != nullptr) return Secret{*value, variable};
  if (file == nullptr) return std::nullopt;
  ASSIGN_OR_RETURN(Secret secret, SecretFromFile(*file, file_variable));
  return secret;
}

struct KeyRingSource {
  const char* name;        // "hashing keys"
  const char* config_key;  // "hashing.keys_file"
  const char* variable;    // "AUTHCODE_HASHING_KEYS"; also ..._FILE
  size_t min_bytes;
  size_t max_bytes;
};

// The environment wins over the config file, like everywhere else.
absl::StatusOr<std::vector<Key>> LoadKeyRing(const Env& env,
                                             const KeyRingSource& source,
                                             const std::string& config_file) {
  ASSIGN_OR_RETURN(std::optional<Secret> secret,
                   SecretFromEnv(env, source.variable));
  if (!secret.has_value() && !config_file.empty()) {
    ASSIGN_OR_RETURN(secret, SecretFromFile(config_file, source.config_key));
  }
  if (!secret.has_value()) {
    return Invalid(
        source.name,
        absl::StrCat("required; set ", source.config_key, ", ", source.variable,
                     " or ", source.variable, "_FILE"));
  }
  return ParseKeyRing(secret->value, secret->source, source.min_bytes,
                      source.max_bytes);
}

absl::Status LoadSecrets(const Env& env, const FileSettings& file,
                         Config* config) {
  ASSIGN_OR_RETURN(std::optional<Secret> url,
                   SecretFromEnv(env, "AUTHCODE_DATABASE_URL"));
  if (url.has_value()) config->database.url = std::move(url->value);
  if (absl::StripAsciiWhitespace(config->database.url).empty()) {
    return Invalid("database.url",
                   "required; set it in the config or AUTHCODE_DATABASE_URL");
  }

  // HMAC-SHA256 wants a key at least as long as its output; AES-256 takes
  // exactly 32 bytes.
  constexpr KeyRingSource kHashing = {"hashing keys", "hashing.keys_file",
                                      "AUTHCODE_HASHING_KEYS", 32,
                                      std::numeric_limits<size_t>::max()};
  constexpr KeyRingSource kOutbox = {"outbox keys", "outbox.keys_file",
                                     "AUTHCODE_OUTBOX_KEYS", 32, 32};
  ASSIGN_OR_RETURN(config->hashing_keys,
                   LoadKeyRing(env, kHashing, file.hashing_keys_file));
  ASSIGN_OR_RETURN(config->outbox_keys,
                   LoadKeyRing(env, kOutbox, file.outbox_keys_file));
  return absl::OkStatus();
}

bool HasControlChar(absl::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}

absl::Status CheckListen(const std::string& subject,
                         const std::string& listen) {
  const size_t colon = listen.rfind(':');
  const absl::string_view port =
      colon == std::string::npos ? ""
                                 : absl::string_view(listen).substr(colon + 1);
  int port_number = -1;
  const bool port_ok =
      !port.empty() &&
      port.find_first_not_of("0123456789") == absl::string_view::npos &&
      absl::SimpleAtoi(port, &port_number) && port_number <= 65535;
  if (colon == 0 || !port_ok || listen.find(' ') != std::string::npos ||
      HasControlChar(listen)) {
    return Invalid(subject,
                   absl::StrCat("must be host:port with a port of 0 to "
                                "65535, got ",
                                Quote(listen)));
  }
  return absl::OkStatus();
}

absl::Status CheckOneOf(const std::string& subject, const std::string& value,
                        const std::vector<std::string>& allowed) {
  for (const std::string& a : allowed) {
    if (value == a) return absl::OkStatus();
  }
  return Invalid(subject,
                 absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "),
                              "; got ", Quote(value)));
}

// Only a plain local@domain goes into the From header: a display name,
// angle brackets or a line break here would let the config rewrite
// headers.
absl::Status CheckFromAddress(const std::string& address) {
  bool ok = true;
  for (const char c : address) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f ||
        absl::string_view("<>,;:\"()[]\\").find(c) != absl::string_view::npos) {
      ok = false;
    }
  }
  // Dot-atoms on both sides (RFC 5322), as the MIME builder requires.
  const auto dot_atom = [](absl::string_view part) {
    return !part.empty() && part.front() != '.' && part.back() != '.' &&
           part.find("..") == absl::string_view::npos;
  };
  const size_t at = address.find('@');
  if (!ok || at == std::string::npos ||
      address.find('@', at + 1) != std::string::npos ||
      !dot_atom(absl::string_view(address).substr(0, at)) ||
      !dot_atom(absl::string_view(address).substr(at + 1))) {
    return Invalid("mail.from_address",
                   absl::StrCat("must be a plain address such as "
                                "no-reply@example.com (no spaces, quotes, "
                                "brackets, line breaks or stray dots), got ",
                                Quote(address)));
  }
  return absl::OkStatus();
}

// A locale names template files, so it must be a tag like "en" or "de-CH"
// and never a path.
bool IsLocale(absl::string_view locale) {
  if (locale.empty() || locale.size() > 35) return false;
  for (absl::string_view part : absl::StrSplit(locale, '-')) {
    if (part.empty() || part.size() > 8) return false;
    for (const char c : part) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
    }
  }
  return absl::ascii_isalpha(static_cast<unsigned char>(locale[0]));
}

bool IsTenant(absl::string_view tenant) {
  if (tenant.empty() || tenant.size() > 63) return false;
  for (size_t i = 0; i < tenant.size(); ++i) {
    const auto c = static_cast<unsigned char>(tenant[i]);
    const bool alnum = absl::ascii_islower(c) || absl::ascii_isdigit(c);
    if (!alnum && (i == 0 || (c != '_' && c != '-'))) return false;
  }
  return true;
}

// A chain names provider instances in the order they are tried; the
// instances need no [providers.NAME] table.
absl::Status CheckChain(const std::string& subject,
                        const std::vector<std::string>& chain) {
  if (chain.empty()) return Invalid(subject, "must name at least one provider");
  std::set<std::string> seen;
  for (const std::string& name : chain) {
    if (!IsName(name, "_-")) {
      return Invalid(subject, absl::StrCat("name ", Quote(name), " must match ",
                                           kNamePattern));
    }
    if (!seen.insert(name).second) {
      return Invalid(subject, absl::StrCat(Quote(name), " appears twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDelivery(const Config::Delivery& delivery,
                              const Origins& origins) {
  RETURN_IF_ERROR(
      CheckChain(Subject(origins, "delivery.chain"), delivery.chain));
  for (const auto& [purpose, chain] : delivery.routes) {
    RETURN_IF_ERROR(CheckChain("delivery.routes." + purpose, chain));
  }

  if (delivery.backoff_base > delivery.backoff_max) {
    return Invalid(
        "delivery.backoff_base",
        absl::StrCat("must not exceed delivery.backoff_max (",
                     absl::FormatDuration(delivery.backoff_max), "), got ",
                     absl::FormatDuration(delivery.backoff_base)));
  }
  return absl::OkStatus();
}

// The listener's transport: certificate and key come as a pair, mutual TLS
// builds on TLS, and plaintext stays on loopback unless the operator says
// that something else protects it.
absl::Status ValidateTransport(const Config::Server& server,
                               const Origins& origins) {
  const bool has_cert = !server.tls_cert_file.empty();
  if (has_cert != !server.tls_key_file.empty()) {
    return Invalid(
        Subject(origins,
                has_cert ? "server.tls_key_file" : "server.tls_cert_file"),
        absl::StrCat("required with ",
                     has_cert ? "server.tls_cert_file" : "server.tls_key_file",
                     "; set both or neither"));
  }
  if (!server.tls_client_ca_file.empty() && !has_cert) {
    return Invalid(Subject(origins, "server.tls_client_ca_file"),
                   "needs server.tls_cert_file and server.tls_key_file: "
                   "mutual TLS is TLS with client certificates");
  }
  if (!server.tls_client_auth.empty()) {
    RETURN_IF_ERROR(CheckOneOf("server.tls_client_auth", server.tls_client_auth,
                               {"require", "optional"}));
    if (server.tls_client_ca_file.empty()) {
      return Invalid("server.tls_client_auth",
                     "needs server.tls_client_ca_file, the CA that client "
                     "certificates must chain to");
    }
  }

  if (!has_cert && !server.allow_plaintext &&
      !IsLoopbackListen(server.listen)) {
    return Invalid(
        "server.allow_plaintext",
        absl::StrCat(Subject(origins, "server.listen"), " ",
                     Quote(server.listen),
                     " is not a loopback address and TLS is off, so calls "
                     "and their codes would cross the network in clear; set "
                     "server.tls_cert_file and server.tls_key_file, or "
                     "server.allow_plaintext = true when a TLS-terminating "
                     "proxy or a private network protects the traffic"));
  }
  return absl::OkStatus();
}

// The metrics endpoint, when on, needs an address of its own.
absl::Status ValidateMetrics(const Config& config, const Origins& origins) {
  const std::string& listen = config.metrics.listen;
  if (listen.empty()) return absl::OkStatus();
  const std::string subject = Subject(origins, "metrics.listen");
  RETURN_IF_ERROR(CheckListen(subject, listen));
  if (listen == config.server.listen && !absl::EndsWith(listen, ":0")) {
    return Invalid(subject, absl::StrCat(Quote(listen),
                                         " is also server.listen; the metrics "
                                         "endpoint needs a port of its own"));
  }
  return absl::OkStatus();
}

// Every tenant can be reached by some credential, no credential reaches
// two tenants, and a server nobody has to authenticate to stays on
// loopback unless the operator says otherwise.
absl::Status ValidateTenants(const Config& config, const Origins& origins) {
  std::map<std::string, std::string> token_owner, name_owner;
  for (const auto& [name, tenant] : config.tenants) {
    const std::string key = "tenants." + name;
    if (!IsTenant(name)) {
      return Invalid("tenants",
                     absl::StrCat("name ", Quote(name),
                                  " must match [a-z0-9][a-z0-9_-]{0,62}"));
    }
    if (tenant.token_digests.empty() && tenant.client_names.empty()) {
      return Invalid(key,
                     "needs token_sha256 or client_names: no caller could "
                     "authenticate as it");
    }
    for (const std::string& digest : tenant.token_digests) {
      const auto [it, added] = token_owner.emplace(digest, name);
      if (!added) {
        return Invalid(key + ".token_sha256",
                       absl::StrCat("a token digest is also listed for "
                                    "tenants.",
                                    it->second,
                                    "; each token names one "
                                    "tenant"));
      }
    }
    for (const std::string& client : tenant.client_names) {
      if (client.empty() || client.size() > 253 || HasControlChar(client)) {
        return Invalid(key + ".client_names",
                       absl::StrCat("must be certificate names (1-253 "
                                    "characters, no control characters), "
                                    "got ",
                                    Quote(client)));
      }
      const auto [it, added] = name_owner.emplace(client, name);
      if (!added) {
        return Invalid(key + ".client_names",
                       absl::StrCat(Quote(client),
                                    " is also listed for "
                                    "tenants.",
                                    it->second));
      }
    }
    if (!tenant.client_names.empty() &&
        config.server.tls_client_ca_file.empty()) {
      return Invalid(key + ".client_names",
                     "needs server.tls_client_ca_file: client certificates "
                     "are only asked for with mutual TLS");
    }
    for (const std::string& purpose : tenant.purposes) {
      if (!IsName(purpose, "_-")) {
        return Invalid(key + ".purposes",
                       absl::StrCat("purpose ", Quote(purpose), " must match ",
                                    kNamePattern));
      }
    }
  }

  if (config.tenants.empty() && !config.server.allow_unauthenticated &&
      !IsLoopbackListen(config.server.listen)) {
    return Invalid(
        "tenants",
        absl::StrCat(Subject(origins, "server.listen"), " ",
                     Quote(config.server.listen),
                     " is not a loopback address and no [tenants] are "
                     "configured, so anyone who reaches the port could "
                     "issue and verify codes; configure [tenants.NAME] with "
                     "token_sha256 or client_names, or set "
                     "server.allow_unauthenticated = true when something "
                     "else admits only your services"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const Config& config, const Origins& origins) {
  RETURN_IF_ERROR(
      CheckListen(Subject(origins, "server.listen"), config.server.listen));
  RETURN_IF_ERROR(ValidateTransport(config.server, origins));
  RETURN_IF_ERROR(ValidateMetrics(config, origins));
  RETURN_IF_ERROR(ValidateTenants(config, origins));
  RETURN_IF_ERROR(ValidateDelivery(config.delivery, origins));
  RETURN_IF_ERROR(CheckOneOf(Subject(origins, "log.level"), config.log.level,
                             {"trace", "debug", "info", "warn", "error"}));
  RETURN_IF_ERROR(
      CheckOneOf("log.format", config.log.format, {"logfmt", "json"}));

  RETURN_IF_ERROR(CheckFromAddress(config.mail.from_address));
  if (HasControlChar(config.mail.from_name)) {
    return Invalid("mail.from_name",
                   "must not contain line breaks or control characters");
  }
  if (!IsLocale(config.mail.default_locale)) {
    return Invalid("mail.default_locale",
                   absl::StrCat("must be a language tag such as \"en\" or "
                                "\"de-CH\", got ",
                                Quote(config.mail.default_locale)));
  }
  if (!IsTenant(config.default_tenant)) {
    return Invalid("default_tenant",
                   absl::StrCat("must match [a-z0-9][a-z0-9_-]{0,62}, got ",
                                Quote(config.default_tenant)));
  }
  return absl::OkStatus();
}

bool IsKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (!absl::ascii_isalnum(c) &&
        (i == 0 || (c != '.' && c != '_' && c != '-'))) {
      return false;
    }
  }
  return true;
}

// Errors here name the entry by number only: whatever the entry holds may
// be secret, even the part before the colon when the format was misread.
absl::StatusOr<Key> ParseKeyEntry(absl::string_view entry,
                                  const std::string& subject, size_t min_bytes,
                                  size_t max_bytes) {
  const size_t colon = entry.find(':');
  if (colon == absl::string_view::npos) {
    return Invalid(subject, "expected \"id:base64secret\"");
  }
  Key key;
  key.id = std::string(absl::StripAsciiWhitespace(entry.substr(0, colon)));
  if (!IsKeyId(key.id)) {
    return Invalid(subject,
                   "the id must match [A-Za-z0-9][A-Za-z0-9._-]{0,31}");
  }

  const absl::string_view encoded =
      absl::StripAsciiWhitespace(entry.substr(colon + 1));
  if (encoded.empty()) return Invalid(subject, "the secret is empty");
  if (!absl::Base64Unescape(encoded, &key.secret)) {
    return Invalid(subject, "the secret is not valid standard base64");
  }

  const size_t size = key.secret.size();
  if (size < min_bytes || size > max_bytes) {
    const std::string expected =
        min_bytes == max_bytes ? absl::StrCat("exactly ", min_bytes)
        : max_bytes == std::numeric_limits<size_t>::max()
            ? absl::StrCat("at least ", min_bytes)
            : absl::StrCat("between ", min_bytes, " and ", max_bytes);
    return Invalid(subject, absl::StrCat("the secret must be ", expected,
                                         " bytes, got ", size));
  }
  return key;
}

}  // namespace

absl::StatusOr<std::vector<Key>> ParseKeyRing(const std::string& text,
                                              const std::string& what,
                                              size_t min_bytes,
                                              size_t max_bytes) {
  std::vector<Key> keys;
  int entry = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;

    for (absl::string_view item :
         absl::StrSplit(line, ',', absl::SkipWhitespace())) {
      ++entry;
      const std::string subject = absl::StrCat(what, ": entry ", entry);
      ASSIGN_OR_RETURN(Key key,
                       ParseKeyEntry(item, subject, min_bytes, max_bytes));
      for (size_t i = 0; i < keys.size(); ++i) {
        if (keys[i].id == key.id) {
          return Invalid(subject,
                         absl::StrCat("duplicate id ", Quote(key.id),
                                      ", first used by entry ", i + 1));
        }
      }
      keys.push_back(std::move(key));
    }
  }

  if (keys.empty()) {
    return Invalid(what,
                   "no keys; expected \"id:base64secret\" entries, one per "
                   "line or separated by commas");
  }
  return keys;
}

bool IsLoopbackListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  const std::string host = listen.substr(0, colon);
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;

  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    const std::string bare = host.substr(1, host.size() - 2);
    in6_addr v6;
    if (inet_pton(AF_INET6, bare.c_str(), &v6) != 1) return false;
    // ::1, or 127.0.0.0/8 written as an IPv4-mapped address.
    return IN6_IS_ADDR_LOOPBACK(&v6) ||
           (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  }
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) != 1) return false;
  return (ntohl(v4.s_addr) >> 24) == 127;
}

namespace {

absl::Duration Longest(const Config& config,
                       std::vector<RateWindow> Config::Limits::*of_limits,
                       std::vector<RateWindow> Config::Tenant::*of_tenant) {
  absl::Duration longest;
  const auto consider = [&longest](const std::vector<RateWindow>& windows) {
    for (const RateWindow& w : windows) longest = std::max(longest, w.window);
  };
  consider(config.limits.*of_limits);
  for (const auto& [name, tenant] : config.tenants) consider(tenant.*of_tenant);
  return longest;
}

}  // namespace

absl::Duration LongestIssueWindow(const Config& config) {
  return Longest(config, &Config::Limits::issue, &Config::Tenant::issue);
}

absl::Duration LongestIpWindow(const Config& config) {
  return Longest(config, &Config::Limits::ip_issue, &Config::Tenant::ip_issue);
}

const std::vector<std::string>& ChainFor(const Config& config,
                                         const std::string& purpose) {
  const auto route = config.delivery.routes.find(purpose);
  if (route == config.delivery.routes.end()) return config.delivery.chain;
  return route->second;
}

Config::Provider ProviderInstance(const Config& config,
                                  const std::string& name) {
  const auto instance = config.providers.find(name);
  if (instance != config.providers.end()) return instance->second;
  Config::Provider bare;
  bare.type = name;
  return bare;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const absl::string_view text(*entry);
    const size_t equals = text.find('=');
    if (equals == absl::string_view::npos) continue;
    // Like getenv(), the first of duplicate names wins.
    env.emplace(std::string(text.substr(0, equals)),
                std::string(text.substr(equals + 1)));
  }
  return env;
}

absl::StatusOr<Config> LoadConfig(
    const std::string& path, const std::map<std::string, std::string>& env) {
  FileSettings file;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(file, ReadConfigFile(path));
  }
  Config& config = file.config;

  Origins origins;
  Override(env, "AUTHCODE_LISTEN", "server.listen", &config.server.listen,
           &origins);
  RETURN_IF_ERROR(OverrideChain(env, &config.delivery.chain, &origins));
  Override(env, "AUTHCODE_LOG_LEVEL", "log.level", &config.log.level, &origins);
  Override(env, "AUTHCODE_METRICS_LISTEN", "metrics.listen",
           &config.metrics.listen, &origins);
  // Paths from the environment are taken as they are, like the *_FILE
  // secrets: relative to the working directory.
  Config::Server& server = config.server;
  Override(env, "AUTHCODE_TLS_CERT_FILE", "server.tls_cert_file",
           &server.tls_cert_file, &origins);
  Override(env, "AUTHCODE_TLS_KEY_FILE", "server.tls_key_file",
           &server.tls_key_file, &origins);
  Override(env, "AUTHCODE_TLS_CLIENT_CA_FILE", "server.tls_client_ca_file",
           &server.tls_client_ca_file, &origins);
  RETURN_IF_ERROR(Validate(config, origins));
  if (!server.tls_client_ca_file.empty() && server.tls_client_auth.empty()) {
    server.tls_client_auth = "require";
  }

  RETURN_IF_ERROR(LoadSecrets(env, file, &config));
  return std::move(config);
}

}  // namespace authcode
