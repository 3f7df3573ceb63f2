// Builds providers by canonical name from their settings.
//
// Each provider folder exposes a Register<Name>Provider(ProviderRegistry&)
// function; RegisterBuiltinProviders() calls all of them and is called
// explicitly from main (static self-registration can be dropped by the
// linker). An unknown name is an error that lists the valid ones.
//
// Thread safety: register everything before the first Create(); after that
// the registry is read-only and may be shared.
#ifndef AUTHCODE_PROVIDERS_REGISTRY_H_
#define AUTHCODE_PROVIDERS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "providers/provider.h"

namespace authcode::providers {

// A provider's own config section, e.g. [providers.smtp] in the config
// file, as flat string values. Getters fail with a message naming the full
// key, such as "providers.smtp.port".
class ProviderSettings {
 public:
  ProviderSettings(std::string section,
                   std::map<std::string, std::string> values)
      : section_(std::move(section)), values_(std::move(values)) {}

  const std::string& section() const { return section_; }
  const std::map<std::string, std::string>& values() const { return values_; }

  std::string GetString(const std::string& key,
                        const std::string& fallback) const;
  absl::StatusOr<std::string> GetRequiredString(const std::string& key) const;
  absl::StatusOr<long long> GetInt(const std::string& key, long long fallback,
                                   long long min, long long max) const;
  absl::StatusOr<bool> GetBool(const std::string& key, bool fallback) const;
  // A duration such as "30s" or "500ms", above zero and at most an hour.
  absl::StatusOr<absl::Duration> GetDuration(const std::string& key,
                                             absl::Duration fallback) const;
  // A secret from exactly one of `key`, `key`_file (the file's content
  // without a final line break) and `key`_env (the variable it names);
  // "" when none is set. Errors name the key, never the value.
  absl::StatusOr<std::string> GetSecret(const std::string& key) const;

  // InvalidArgument naming any key not in `valid`, listing the valid ones.
  absl::Status CheckKeys(const std::set<std::string>& valid) const;
  // InvalidArgument "<section>.<key>: <problem>".
  absl::Status Error(const std::string& key, absl::string_view problem) const;

 private:
  std::string section_;
  std::map<std::string, std::string> values_;
};

// The whole content of a file, or InvalidArgument naming the path.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

using ProviderFactory = std::function<absl::StatusOr<std::unique_ptr<Provider>>(
    const ProviderSettings&)>;

class ProviderRegistry {
 public:
  // Adds a factory. Registering a name twice is a programming error and
  // aborts.
  void Register(const std::string& name, ProviderFactory factory);

  // Builds the named provider. NotFound, listing the registered names, when
  // the name is unknown; the factory's error when the settings are bad.
  absl::StatusOr<std::unique_ptr<Provider>> Create(
      const std::string& name, const ProviderSettings& settings) const;

  std::vector<std::string> Names() const;

 private:
  std::map<std::string, ProviderFactory> factories_;
};

// Registers every provider this build contains.
void RegisterBuiltinProviders(ProviderRegistry& registry);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_REGISTRY_H_
