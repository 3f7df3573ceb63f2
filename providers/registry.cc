#include "providers/registry.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "providers/console/console_provider.h"
#include "providers/maildir/maildir_provider.h"
#include "providers/mailgun/mailgun_provider.h"
#include "providers/postmark/postmark_provider.h"
#include "providers/resend/resend_provider.h"
#include "providers/sendgrid/sendgrid_provider.h"
#include "providers/ses/ses_provider.h"
#include "providers/smtp/smtp_provider.h"

namespace authcode::providers {
namespace {

// Values are echoed in errors so an operator sees the typo; escaping keeps
// a stray control character from breaking the log line.
std::string Quoted(const std::string& value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

}  // namespace

std::string ProviderSettings::GetString(const std::string& key,
                                        const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

absl::StatusOr<std::string> ProviderSettings::GetRequiredString(
    const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end() || it->second.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(section_, ".", key, ": required, but not set"));
  }
  return it->second;
}

absl::StatusOr<long long> ProviderSettings::GetInt(const std::string& key,
                                                   long long fallback,
                                                   long long min,
                                                   long long max) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;

  long long value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(section_, ".", key, ": must be an integer between ", min,
                     " and ", max, ", got ", Quoted(it->second)));
  }
  return value;
}

absl::StatusOr<bool> ProviderSettings::GetBool(const std::string& key,
                                               bool fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;

  // Only the spellings TOML itself uses, so a config reads the same
  // everywhere; "yes" or "1" are more likely typos than intent.
  if (it->second == "true") return true;
  if (it->second == "false") return false;
  return absl::InvalidArgumentError(absl::StrCat(
      section_, ".", key, ": must be true or false, got ", Quoted(it->second)));
}

absl::StatusOr<absl::Duration> ProviderSettings::GetDuration(
    const std::string& key, absl::Duration fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;

  absl::Duration value;
  if (!absl::ParseDuration(it->second, &value) ||
      value <= absl::ZeroDuration() || value > absl::Hours(1)) {
    return Error(key, absl::StrCat("must be a duration such as \"30s\" or "
                                   "\"500ms\", up to 1h, got ",
                                   Quoted(it->second)));
  }
  return value;
}

absl::StatusOr<std::string> ProviderSettings::GetSecret(
    const std::string& key) const {
  const std::string file_key = key + "_file";
  const std::string env_key = key + "_env";
  const size_t set =
      values_.count(key) + values_.count(file_key) + values_.count(env_key);
  if (set == 0) return std::string();
  if (set > 1) {
    return Error(key, absl::StrCat("set only one of ", key, ", ", file_key,
                                   ", ", env_key));
  }

  std::string value;
  if (values_.count(key) > 0) {
    value = values_.at(key);
  } else if (values_.count(file_key) > 0) {
    absl::StatusOr<std::string> content = ReadWholeFile(values_.at(file_key));
    if (!content.ok()) return Error(file_key, content.status().message());
    value =
        std::string(absl::StripSuffix(absl::StripSuffix(*content, "\n"), "\r"));
  } else {
    const std::string& name = values_.at(env_key);
    const char* env = std::getenv(name.c_str());
    if (env == nullptr) {
      return Error(env_key, absl::StrCat("the environment variable ",
                                         Quoted(name), " is not set"));
    }
    value = env;
  }
  if (value.empty() || value.find_first_of("\r\n") != std::string::npos) {
    return Error(key, "the secret is empty or holds a line break");
  }
  return value;
}

absl::Status ProviderSettings::CheckKeys(
    const std::set<std::string>& valid) const {
  for (const auto& [key, value] : values_) {
    if (valid.count(key) == 0) {
      return Error(key, absl::StrCat("unknown setting; valid: ",
                                     absl::StrJoin(valid, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::Status ProviderSettings::Error(const std::string& key,
                                     absl::string_view problem) const {
  return absl::InvalidArgumentError(
      absl::StrCat(section_, ".", key, ": ", problem));
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open the file ", Quoted(path)));
  }
  std::stringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the file ", Quoted(path)));
  }
  return content.str();
}

void ProviderRegistry::Register(const std::string& name,
                                ProviderFactory factory) {
  // A duplicate or empty registration is a bug in this build, not in the
  // config, so it stops the process before anything is served.
  if (name.empty() || !factory) {
    std::fprintf(stderr, "provider registry: empty name or factory for %s\n",
                 Quoted(name).c_str());
    std::abort();
  }
  if (!factories_.emplace(name, std::move(factory)).second) {
    std::fprintf(stderr, "provider registry: %s registered twice\n",
                 Quoted(name).c_str());
    std::abort();
  }
}

absl::StatusOr<std::unique_ptr<Provider>> ProviderRegistry::Create(
    const std::string& name, const ProviderSettings& settings) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    const std::vector<std::string> names = Names();
    return absl::NotFoundError(
        absl::StrCat("unknown provider ", Quoted(name),
                     " (delivery.provider); valid names: ",
                     names.empty() ? "(none)" : absl::StrJoin(names, ", ")));
  }

  absl::StatusOr<std::unique_ptr<Provider>> provider = it->second(settings);
  if (provider.ok() && *provider == nullptr) {
    return absl::InternalError(
        absl::StrCat("provider ", Quoted(name), ": factory returned null"));
  }
  return provider;
}

std::vector<std::string> ProviderRegistry::Names() const {
  std::vector<std::string> names;
  names.reserve(factories_.size());
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

void RegisterBuiltinProviders(ProviderRegistry& registry) {
  RegisterConsoleProvider(registry);
  RegisterMaildirProvider(registry);
  RegisterMailgunProvider(registry);
  RegisterPostmarkProvider(registry);
  RegisterResendProvider(registry);
  RegisterSendGridProvider(registry);
  RegisterSesProvider(registry);
  RegisterSmtpProvider(registry);
}

}  // namespace authcode::providers
