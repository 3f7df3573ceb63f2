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
#include <string>
#include <vector>

#include "absl/status/statusor.h"
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

 private:
  std::string section_;
  std::map<std::string, std::string> values_;
};

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
