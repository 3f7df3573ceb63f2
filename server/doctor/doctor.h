// `authcode doctor`: looks up the From domain's SPF, DKIM and DMARC
// records and reports, per check, pass / warn / fail with the fix.
//
// Run() builds the provider instances of the delivery chains (as the
// server would, so their settings are validated too), asks each what it
// needs of the From domain (providers/provider.h: SpfIncludes(),
// DkimKey(), IdentityDomains()), looks the names up with the resolver
// (resolver.h) and runs the checks (checks.h) on what it found. Nothing is
// sent and the database is not touched.
//
// Thread safety: Run() uses its own resolver; the rest are pure.
#ifndef AUTHCODE_SERVER_DOCTOR_DOCTOR_H_
#define AUTHCODE_SERVER_DOCTOR_DOCTOR_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/config.h"
#include "server/doctor/checks.h"

namespace authcode::doctor {

// Exit codes of `authcode doctor`.
inline constexpr int kExitOk = 0;      // No check failed (warnings may).
inline constexpr int kExitFailed = 1;  // At least one check failed.
inline constexpr int kExitUsage = 2;   // Bad config, flags or resolver.

struct Options {
  // DNS servers, as Config::Doctor::resolver; empty for the config's.
  std::string resolver;
  bool json = false;
};

// Writes the report to `out` and returns kExitOk or kExitFailed; writes
// the problem to `err` and returns kExitUsage when the checks cannot run:
// a From domain that DNS cannot be asked about, providers that do not
// build, a resolver address c-ares cannot use.
int Run(const Config& config, const Options& options, std::ostream& out,
        std::ostream& err);

// The From domain and the chains' provider instances, from `config`.
// InvalidArgument naming mail.from_address when its domain is not a
// public DNS name; a provider's own error when it does not build.
absl::StatusOr<Sender> SenderFromConfig(const Config& config);

// kExitFailed when any finding fails, else kExitOk.
int ExitCode(const std::vector<Finding>& findings);

// One line per finding, "pass  dkim             <finding>", each warn or
// fail followed by an indented "fix: ..." line; a heading naming the From
// domain and the resolver first, a count of each verdict last.
std::string RenderText(const std::string& from_domain,
                       const std::string& resolver,
                       const std::vector<Finding>& findings);

// The same as one JSON object: from_domain, resolver, checks (check,
// verdict, finding, fix) and a summary of counts.
std::string RenderJson(const std::string& from_domain,
                       const std::string& resolver,
                       const std::vector<Finding>& findings);

}  // namespace authcode::doctor

#endif  // AUTHCODE_SERVER_DOCTOR_DOCTOR_H_
