// The exit codes of authcode-cli: the contract with the scripts that run it.
// The help text and the README quote kExitCodesHelp, so the table lives
// here, beside the values, and nowhere else.
#ifndef AUTHCODE_CLIENTS_CLI_EXIT_CODES_H_
#define AUTHCODE_CLIENTS_CLI_EXIT_CODES_H_

#include "grpcpp/support/status.h"

namespace authcode::cli {

enum ExitCode : int {
  kExitOk = 0,          // issued, verified, delivery status read, or serving
  kExitRejected = 1,    // verify answered with any outcome but VERIFIED, or
                        // health with any status but SERVING
  kExitUsage = 2,       // bad flags or an unreadable file; nothing was sent
  kExitCallFailed = 3,  // the call failed with a gRPC error
  kExitBackOff = 4,     // the call failed with RESOURCE_EXHAUSTED
};

inline constexpr char kExitCodesHelp[] =
    "Exit codes:\n"
    "  0  success: code issued, code verified, delivery status read, or\n"
    "     the server is SERVING\n"
    "  1  verify rejected the code (wrong, expired, no active code,\n"
    "     too many attempts), or health is not SERVING\n"
    "  2  usage error: bad flags or an unreadable file; nothing was sent\n"
    "  3  the call failed (any gRPC error other than RESOURCE_EXHAUSTED,\n"
    "     including an unreachable server and a timeout)\n"
    "  4  RESOURCE_EXHAUSTED: rate limited or locked out; back off and\n"
    "     retry after retry_after_seconds\n";

// 4 for RESOURCE_EXHAUSTED, so a script can tell "wait" from "broken";
// 3 for every other failure.
inline ExitCode ExitCodeForFailure(grpc::StatusCode code) {
  return code == grpc::StatusCode::RESOURCE_EXHAUSTED ? kExitBackOff
                                                      : kExitCallFailed;
}

}  // namespace authcode::cli

#endif  // AUTHCODE_CLIENTS_CLI_EXIT_CODES_H_
