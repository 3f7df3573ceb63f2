#include "providers/registry.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "providers/console/console_provider.h"
#include "providers/maildir/maildir_provider.h"
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
  RegisterSmtpProvider(registry);
}

}  // namespace authcode::providers
