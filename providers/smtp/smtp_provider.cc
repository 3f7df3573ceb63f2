#include "providers/smtp/smtp_provider.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "providers/message/mime.h"
#include "server/log.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "smtp";

const std::set<std::string>& ValidKeys() {
  static const auto* keys = new std::set<std::string>{"host",
                                                      "port",
                                                      "security",
                                                      "ca_file",
                                                      "verify_peer",
                                                      "server_name",
                                                      "username",
                                                      "password",
                                                      "password_file",
                                                      "password_env",
                                                      "auth",
                                                      "oauth_token",
                                                      "oauth_token_file",
                                                      "oauth_token_env",
                                                      "helo",
                                                      "timeout",
                                                      "pool_size",
                                                      "idle_timeout",
                                                      "dkim_domain",
                                                      "dkim_selector",
                                                      "dkim_key_file",
                                                      "from_domain",
                                                      "spf_include"};
  return *keys;
}

// A name for EHLO: a domain-like name or an address literal.
bool IsHeloName(absl::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::string_view(".-:[]_").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::string LocalHostName() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0) return "localhost";
  return IsHeloName(buffer) ? std::string(buffer) : "localhost";
}

absl::Status ParseSecurity(const ProviderSettings& settings,
                           SmtpConnectionOptions& options) {
  const std::string security = settings.GetString("security", "starttls");
  if (security == "starttls") {
    options.security = SmtpSecurity::kStartTls;
  } else if (security == "tls") {
    options.security = SmtpSecurity::kImplicitTls;
  } else if (security == "none") {
    options.security = SmtpSecurity::kNone;
  } else {
    return settings.Error("security",
                          absl::StrCat("must be \"starttls\", \"tls\" or "
                                       "\"none\", got \"",
                                       absl::CHexEscape(security), "\""));
  }
  absl::StatusOr<long long> port = settings.GetInt(
      "port", options.security == SmtpSecurity::kImplicitTls ? 465 : 587, 1,
      65535);
  if (!port.ok()) return port.status();
  options.port = static_cast<int>(*port);
  return absl::OkStatus();
}

absl::Status ParseCredentials(const ProviderSettings& settings,
                              SmtpCredentials& creds) {
  const std::string auth = settings.GetString("auth", "auto");
  const std::map<std::string, SmtpAuthMechanism> mechanisms = {
      {"auto", SmtpAuthMechanism::kAuto},
      {"plain", SmtpAuthMechanism::kPlain},
      {"login", SmtpAuthMechanism::kLogin},
      {"xoauth2", SmtpAuthMechanism::kXoauth2}};
  auto it = mechanisms.find(auth);
  if (it == mechanisms.end()) {
    return settings.Error(
        "auth",
        absl::StrCat("must be \"auto\", \"plain\", \"login\" or \"xoauth2\", "
                     "got \"",
                     absl::CHexEscape(auth), "\""));
  }
  creds.mechanism = it->second;
  creds.username = settings.GetString("username", "");
  if (creds.username.find_first_of("\r\n") != std::string::npos) {
    return settings.Error("username", "holds a line break");
  }

  absl::StatusOr<std::string> password = settings.GetSecret("password");
  if (!password.ok()) return password.status();
  absl::StatusOr<std::string> token = settings.GetSecret("oauth_token");
  if (!token.ok()) return token.status();
  creds.password = *std::move(password);
  creds.oauth_token = *std::move(token);

  if (creds.username.empty()) {
    if (!creds.password.empty() || !creds.oauth_token.empty()) {
      return settings.Error("username",
                            "required when a password or token is set");
    }
    return absl::OkStatus();
  }
  const bool xoauth2 = creds.mechanism == SmtpAuthMechanism::kXoauth2 ||
                       (creds.mechanism == SmtpAuthMechanism::kAuto &&
                        !creds.oauth_token.empty());
  if (xoauth2 && creds.oauth_token.empty()) {
    return settings.Error("oauth_token",
                          "auth = \"xoauth2\" needs one of oauth_token, "
                          "oauth_token_file, oauth_token_env");
  }
  if (!xoauth2 && creds.password.empty()) {
    return settings.Error("password",
                          "a username needs one of password, password_file, "
                          "password_env");
  }
  return absl::OkStatus();
}

// The relay's SPF domains from `spf_include`: comma-separated DNS names;
// nullopt when it is not set.
absl::StatusOr<std::optional<std::vector<std::string>>> ParseSpfIncludes(
    const ProviderSettings& settings) {
  if (settings.values().count("spf_include") == 0) return std::nullopt;
  std::vector<std::string> domains;
  for (absl::string_view part :
       absl::StrSplit(settings.GetString("spf_include", ""), ',')) {
    const std::string domain =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(part));
    if (!IsHeloName(domain) ||
        domain.find_first_of(":[]") != std::string::npos) {
      return settings.Error("spf_include",
                            "must be one or more domain names, separated by "
                            "commas, such as \"_spf.example.net\"");
    }
    domains.push_back(domain);
  }
  return domains;
}

// DMARC passes on DKIM only when the signing domain aligns with the From
// domain (relaxed: the same, or one a parent of the other's organisational
// domain; approximated here by a suffix match).
void WarnOnMisalignment(const ProviderSettings& settings) {
  const std::string dkim =
      absl::AsciiStrToLower(settings.GetString("dkim_domain", ""));
  const std::string from =
      absl::AsciiStrToLower(settings.GetString("from_domain", ""));
  if (dkim.empty()) return;
  if (from.empty()) {
    log::Info(
        "provider.smtp_dkim_alignment_unchecked",
        {{"section", settings.section()},
         {"note", "set from_domain to check DKIM alignment at start-up"}});
    return;
  }
  if (from == dkim || absl::EndsWith(from, "." + dkim) ||
      absl::EndsWith(dkim, "." + from)) {
    return;
  }
  log::Warn("provider.smtp_dkim_misaligned",
            {{"section", settings.section()},
             {"dkim_domain", dkim},
             {"from_domain", from},
             {"note", "DMARC will not pass on this DKIM signature"}});
}

void WarnOnWeakSecurity(const ProviderSettings& settings,
                        const SmtpConnectionOptions& options) {
  if (options.security == SmtpSecurity::kNone) {
    log::Warn("provider.smtp_plaintext",
              {{"section", settings.section()},
               {"host", options.host},
               {"note",
                "security = \"none\": mail, one-time codes "
                "included, and any credentials travel unencrypted; "
                "only for a trusted local relay"}});
  }
  if (!options.verify_peer && options.security != SmtpSecurity::kNone) {
    log::Warn("provider.smtp_tls_unverified",
              {{"section", settings.section()},
               {"host", options.host},
               {"note",
                "verify_peer = false: ANYONE ON THE PATH CAN "
                "IMPERSONATE THE SERVER and read every one-time "
                "code; never in production"}});
  }
}

absl::StatusOr<SmtpProviderConfig> ParseConfig(
    const ProviderSettings& settings) {
  if (absl::Status s = settings.CheckKeys(ValidKeys()); !s.ok()) return s;
  SmtpProviderConfig config;
  SmtpConnectionOptions& options = config.connection;
  absl::StatusOr<std::string> host = settings.GetRequiredString("host");
  if (!host.ok()) return host.status();
  options.host = *host;
  if (absl::Status s = ParseSecurity(settings, options); !s.ok()) return s;

  absl::StatusOr<bool> verify = settings.GetBool("verify_peer", true);
  if (!verify.ok()) return verify.status();
  options.verify_peer = *verify;
  options.server_name = settings.GetString("server_name", "");
  options.helo = settings.GetString("helo", LocalHostName());
  if (!IsHeloName(options.helo)) {
    return settings.Error("helo", "must be a host name or an address literal");
  }
  if (absl::Status s = ParseCredentials(settings, options.credentials);
      !s.ok()) {
    return s;
  }

  absl::StatusOr<absl::Duration> timeout =
      settings.GetDuration("timeout", absl::Seconds(30));
  if (!timeout.ok()) return timeout.status();
  options.timeout = *timeout;
  absl::StatusOr<absl::Duration> idle =
      settings.GetDuration("idle_timeout", absl::Seconds(60));
  if (!idle.ok()) return idle.status();
  config.idle_timeout = *idle;
  absl::StatusOr<long long> pool = settings.GetInt("pool_size", 2, 1, 64);
  if (!pool.ok()) return pool.status();
  config.pool_size = static_cast<int>(*pool);

  if (options.security != SmtpSecurity::kNone) {
    const std::string ca_file = settings.GetString("ca_file", "");
    absl::StatusOr<std::shared_ptr<SSL_CTX>> tls =
        MakeSmtpTlsContext(ca_file, options.verify_peer);
    if (!tls.ok()) {
      return settings.Error(ca_file.empty() ? "verify_peer" : "ca_file",
                            tls.status().message());
    }
    config.tls = *std::move(tls);
  }

  absl::StatusOr<std::shared_ptr<const DkimSigner>> dkim =
      DkimSignerFromSettings(settings);
  if (!dkim.ok()) return dkim.status();
  config.dkim = *std::move(dkim);
  absl::StatusOr<std::optional<std::vector<std::string>>> spf =
      ParseSpfIncludes(settings);
  if (!spf.ok()) return spf.status();
  config.spf_includes = *std::move(spf);
  return config;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateSmtpProvider(
    const ProviderSettings& settings) {
  absl::StatusOr<SmtpProviderConfig> config = ParseConfig(settings);
  if (!config.ok()) return config.status();
  WarnOnWeakSecurity(settings, config->connection);
  WarnOnMisalignment(settings);
  return std::make_unique<SmtpProvider>(*std::move(config));
}

// What the delivery layer should do with a failed step.
SendResult ToResult(const absl::Status& status) {
  const std::string error = absl::StrCat("smtp: ", status.message());
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
      return SendResult::Retryable(error);
    default:
      return SendResult::Permanent(error);
  }
}

}  // namespace

void RegisterSmtpProvider(ProviderRegistry& registry) {
  registry.Register(kName, CreateSmtpProvider);
}

SmtpProvider::SmtpProvider(SmtpProviderConfig config)
    : config_(std::move(config)) {
  reaper_ = std::thread([this] { ReapIdle(); });
}

SmtpProvider::~SmtpProvider() {
  std::deque<Idle> idle;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    idle.swap(idle_);
  }
  reaper_.join();
  for (Idle& entry : idle) entry.connection->Quit();
}

SendResult SmtpProvider::Send(const Message& message) {
  absl::StatusOr<MimeMessage> mime = BuildMime(message);
  if (!mime.ok()) {
    return SendResult::Permanent(
        absl::StrCat("smtp: ", mime.status().message(), "; nothing was sent"));
  }
  std::string data = std::move(mime->data);
  if (config_.dkim != nullptr) {
    absl::StatusOr<std::string> signature = config_.dkim->Sign(data);
    if (!signature.ok()) {
      return SendResult::Retryable(absl::StrCat("smtp: DKIM signing failed: ",
                                                signature.status().message()));
    }
    data = *signature + data;
  }
  const bool smtputf8 =
      NeedsSmtpUtf8(message.from_address) || NeedsSmtpUtf8(message.to_address);

  absl::StatusOr<std::unique_ptr<SmtpConnection>> connection = Acquire();
  if (!connection.ok()) return ToResult(connection.status());
  absl::StatusOr<SmtpReply> reply =
      (*connection)
          ->Send(message.from_address, message.to_address, data, smtputf8);
  Release(*std::move(connection));
  if (!reply.ok()) return ToResult(reply.status());
  return SendResult::Sent(mime->message_id);
}

absl::Status SmtpProvider::CheckReachable() {
  absl::StatusOr<std::unique_ptr<SmtpConnection>> connection =
      SmtpConnection::Open(config_.connection, config_.tls);
  if (!connection.ok()) {
    return absl::Status(connection.status().code(),
                        absl::StrCat("smtp: ", connection.status().message()));
  }
  (*connection)->Quit();
  return absl::OkStatus();
}

std::vector<std::string> SmtpProvider::IdentityDomains() const {
  std::vector<std::string> domains;
  if (config_.dkim != nullptr) domains.push_back(config_.dkim->domain());
  const std::string& user = config_.connection.credentials.username;
  const size_t at = user.rfind('@');
  if (at != std::string::npos && at + 1 < user.size()) {
    domains.push_back(absl::AsciiStrToLower(user.substr(at + 1)));
  }
  return domains;
}

std::optional<std::vector<std::string>> SmtpProvider::SpfIncludes() const {
  return config_.spf_includes;
}

std::optional<DkimPublicKey> SmtpProvider::DkimKey() const {
  if (config_.dkim == nullptr) return std::nullopt;
  return config_.dkim->public_key();
}

absl::StatusOr<std::unique_ptr<SmtpConnection>> SmtpProvider::Acquire() {
  absl::StatusOr<std::unique_ptr<SmtpConnection>> slot = TakeSlot();
  if (!slot.ok()) return slot.status();
  if (*slot != nullptr) {
    // A server may drop a connection while it is idle; RSET finds out.
    absl::Status reset = (*slot)->Reset();
    if (reset.ok()) return slot;
    (*slot)->Quit();
  }

  absl::StatusOr<std::unique_ptr<SmtpConnection>> fresh =
      SmtpConnection::Open(config_.connection, config_.tls);
  if (!fresh.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
  }
  return fresh;
}

absl::StatusOr<std::unique_ptr<SmtpConnection>> SmtpProvider::TakeSlot() {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || open_ < config_.pool_size;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready),
                            config_.connection.timeout)) {
    return absl::UnavailableError(
        absl::StrCat("all ", config_.pool_size,
                     " connections stayed busy for the timeout (pool_size)"));
  }
  if (idle_.empty()) {
    ++open_;
    return std::unique_ptr<SmtpConnection>();
  }
  std::unique_ptr<SmtpConnection> connection =
      std::move(idle_.back().connection);
  idle_.pop_back();
  return connection;
}

void SmtpProvider::Release(std::unique_ptr<SmtpConnection> connection) {
  if (!connection->usable()) {
    connection.reset();
    absl::MutexLock lock(&mu_);
    --open_;
    return;
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back({std::move(connection), absl::Now()});
}

void SmtpProvider::ReapIdle() {
  const absl::Duration interval =
      std::min(absl::Seconds(1), config_.idle_timeout / 2);
  while (true) {
    std::vector<std::unique_ptr<SmtpConnection>> expired;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) return;
      const absl::Time cutoff = absl::Now() - config_.idle_timeout;
      while (!idle_.empty() && idle_.front().since < cutoff) {
        expired.push_back(std::move(idle_.front().connection));
        idle_.pop_front();
        --open_;
      }
    }
    for (auto& connection : expired) connection->Quit();
  }
}

}  // namespace authcode::providers
