#include "server/provider_set.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "providers/registry.h"

namespace authcode {

std::vector<std::string> ChainedInstances(const Config& config) {
  std::set<std::string> names(config.delivery.chain.begin(),
                              config.delivery.chain.end());
  for (const auto& [purpose, chain] : config.delivery.routes) {
    names.insert(chain.begin(), chain.end());
  }
  return std::vector<std::string>(names.begin(), names.end());
}

absl::StatusOr<std::unique_ptr<providers::Provider>> BuildProvider(
    const Config& config, const std::string& name,
    const providers::ProviderRegistry& registry) {
  const Config::Provider instance = authcode::ProviderInstance(config, name);
  const std::vector<std::string> types = registry.Names();
  if (std::find(types.begin(), types.end(), instance.type) == types.end()) {
    const bool has_table = config.providers.count(name) > 0;
    return absl::InvalidArgumentError(absl::StrCat(
        "providers.", name, ": unknown provider type \"", instance.type, "\"",
        has_table ? ""
                  : absl::StrCat(" (a chain names \"", name,
                                 "\", which has no [providers.", name,
                                 "] table, so its type is its name)"),
        "; valid types: ", absl::StrJoin(types, ", ")));
  }
  return registry.Create(
      instance.type, providers::ProviderSettings(
                         absl::StrCat("providers.", name), instance.settings));
}

absl::StatusOr<std::unique_ptr<ProviderSet>> ProviderSet::Create(
    const Config& config,
    std::map<std::string, std::unique_ptr<providers::Provider>> overrides) {
  auto set = std::unique_ptr<ProviderSet>(new ProviderSet());
  set->config_ = &config;

  providers::ProviderRegistry registry;
  providers::RegisterBuiltinProviders(registry);
  for (const std::string& name : ChainedInstances(config)) {
    auto instance = std::make_unique<ProviderEntry>();
    instance->name = name;
    instance->config = authcode::ProviderInstance(config, name);
    auto override = overrides.find(name);
    if (override != overrides.end()) {
      instance->provider = std::move(override->second);
    } else {
      absl::StatusOr<std::unique_ptr<providers::Provider>> built =
          BuildProvider(config, name, registry);
      if (!built.ok()) return built.status();
      instance->provider = *std::move(built);
    }
    instance->breaker = std::make_unique<CircuitBreaker>(
        config.delivery.breaker_failures, config.delivery.breaker_cooldown);
    set->instances_[name] = std::move(instance);
  }
  return set;
}

std::vector<ProviderEntry*> ProviderSet::ChainFor(
    const std::string& purpose) const {
  std::vector<ProviderEntry*> chain;
  for (const std::string& name : authcode::ChainFor(*config_, purpose)) {
    chain.push_back(instances_.at(name).get());
  }
  return chain;
}

bool RelaxedAligned(absl::string_view a, absl::string_view b) {
  const std::string x = absl::AsciiStrToLower(a);
  const std::string y = absl::AsciiStrToLower(b);
  const auto under = [](const std::string& sub, const std::string& parent) {
    return sub.size() > parent.size() &&
           absl::EndsWith(sub, absl::StrCat(".", parent));
  };
  return x == y || under(x, y) || under(y, x);
}

std::vector<std::string> ProviderSet::MisalignedIdentities(
    const std::string& from_address) const {
  const size_t at = from_address.rfind('@');
  const std::string from_domain =
      at == std::string::npos ? from_address : from_address.substr(at + 1);
  std::vector<std::string> misaligned;
  for (const auto& [name, entry] : instances_) {
    for (const std::string& domain : entry->provider->IdentityDomains()) {
      if (!RelaxedAligned(from_domain, domain)) {
        misaligned.push_back(absl::StrCat(name, ": ", domain));
      }
    }
  }
  return misaligned;
}

}  // namespace authcode
