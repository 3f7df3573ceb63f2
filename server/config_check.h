// `authcode check-config`: the checks start-up makes, without serving, and
// on request the dependencies the config names, reached the way the server
// would reach them.
//
// Offline (always): the TLS files are read and matched as on SIGHUP, the
// mail templates are parsed, and every provider instance a chain names is
// built from its table, which reads its secret files and variables (a
// maildir instance creates its folders, as at start-up). With `connect`
// also: the database is connected to and its schema compared with this
// binary's migrations (nothing is applied), and each provider instance's
// CheckReachable() runs (nothing is sent). Loading the config itself is
// main's step before these.
//
// Thread safety: a plain function of its arguments; it may block for the
// database's connect timeout and each provider's own timeouts.
#ifndef AUTHCODE_SERVER_CONFIG_CHECK_H_
#define AUTHCODE_SERVER_CONFIG_CHECK_H_

#include <string>
#include <vector>

#include "server/config.h"

namespace authcode {

// What a failed check asks of the operator; the values are the process's
// exit status.
enum class CheckOutcome : int {
  kPassed = 0,
  kInvalidConfig = 2,   // Fix the config, a file or a variable it names.
  kUnreachable = 3,     // The database or a provider did not answer, or
                        // refused us (a certificate, a login).
  kSchemaMismatch = 4,  // The database needs `authcode migrate`, or was
                        // migrated by a later binary.
};

struct ConfigCheck {
  std::string subject;  // "server.tls", "database", "providers.relay", ...
  CheckOutcome outcome = CheckOutcome::kPassed;
  std::string detail;  // What was found, or why it failed.
};

// Every check, in order, one per line of output.
std::vector<ConfigCheck> CheckConfig(const Config& config, bool connect);

// The exit status for `checks`: 0 when all passed, else the outcome of the
// most fundamental failure (an invalid config before an unreachable
// dependency before a schema to migrate).
int CheckExitStatus(const std::vector<ConfigCheck>& checks);

// "ok    subject: detail" or "FAIL  subject: detail"; just the detail after
// the mark when it names the subject or one of its keys already
// ("providers.relay.port: ...").
std::string FormatCheck(const ConfigCheck& check);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_CONFIG_CHECK_H_
