// The configured provider instances, each with its circuit breaker and
// quota, and the chain of them to try for a purpose.
//
// Built once at start-up from Config::providers and the chains; every name
// a chain uses must build, or start-up fails naming it.
//
// Thread safety: immutable after Create(), apart from each breaker's own
// state; may be shared by all workers.
#ifndef AUTHCODE_SERVER_PROVIDER_SET_H_
#define AUTHCODE_SERVER_PROVIDER_SET_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "providers/provider.h"
#include "providers/registry.h"
#include "server/circuit_breaker.h"
#include "server/config.h"

namespace authcode {

struct ProviderEntry {
  std::string name;  // As the chain names it, e.g. "gmail".
  Config::Provider config;
  std::unique_ptr<providers::Provider> provider;
  std::unique_ptr<CircuitBreaker> breaker;
};

// Every instance name that delivery.chain or a route uses, sorted.
std::vector<std::string> ChainedInstances(const Config& config);

// Builds the instance `name` from its [providers.NAME] table with
// `registry`. An unknown type fails naming the instance and the valid
// types; bad settings fail as the provider's factory says.
absl::StatusOr<std::unique_ptr<providers::Provider>> BuildProvider(
    const Config& config, const std::string& name,
    const providers::ProviderRegistry& registry);

// Whether domains `a` and `b` align under DMARC's relaxed mode (RFC 7489
// 3.1), approximated without the public suffix list: equal, ignoring case,
// or one a subdomain of the other. Sibling subdomains (mail.example.com,
// auth.example.com) count as misaligned, though DMARC accepts them.
bool RelaxedAligned(absl::string_view a, absl::string_view b);

class ProviderSet {
 public:
  // Builds every instance a chain names. Instances in `overrides` (tests)
  // are used as they are instead of being built from config.
  static absl::StatusOr<std::unique_ptr<ProviderSet>> Create(
      const Config& config,
      std::map<std::string, std::unique_ptr<providers::Provider>> overrides =
          {});

  // The instances to try for `purpose`, in order.
  std::vector<ProviderEntry*> ChainFor(const std::string& purpose) const;

  // "instance: domain" for every identity domain of an instance that does
  // not align with `from_address`'s domain: not the same domain, nor one a
  // subdomain of the other. Without the public suffix list, sibling
  // subdomains (mail.example.com, auth.example.com) count as misaligned,
  // though DMARC's relaxed mode accepts them: a warning too many, never
  // one too few.
  std::vector<std::string> MisalignedIdentities(
      const std::string& from_address) const;

  // Every instance a chain names, by name.
  const std::map<std::string, std::unique_ptr<ProviderEntry>>& instances()
      const {
    return instances_;
  }

 private:
  ProviderSet() = default;

  const Config* config_ = nullptr;
  std::map<std::string, std::unique_ptr<ProviderEntry>> instances_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_PROVIDER_SET_H_
