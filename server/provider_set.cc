#include "server/provider_set.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "providers/registry.h"

namespace authcode {

absl::StatusOr<std::unique_ptr<ProviderSet>> ProviderSet::Create(
    const Config& config,
    std::map<std::string, std::unique_ptr<providers::Provider>> overrides) {
  auto set = std::unique_ptr<ProviderSet>(new ProviderSet());
  set->config_ = &config;

  std::set<std::string> names(config.delivery.chain.begin(),
                              config.delivery.chain.end());
  for (const auto& [purpose, chain] : config.delivery.routes) {
    names.insert(chain.begin(), chain.end());
  }

  providers::ProviderRegistry registry;
  providers::RegisterBuiltinProviders(registry);
  for (const std::string& name : names) {
    auto instance = std::make_unique<ProviderEntry>();
    instance->name = name;
    instance->config = authcode::ProviderInstance(config, name);
    auto override = overrides.find(name);
    if (override != overrides.end()) {
      instance->provider = std::move(override->second);
    } else {
      absl::StatusOr<std::unique_ptr<providers::Provider>> built =
          registry.Create(
              instance->config.type,
              providers::ProviderSettings(absl::StrCat("providers.", name),
                                          instance->config.settings));
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

}  // namespace authcode
