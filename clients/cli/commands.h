// The three subcommands: each builds its request from the options, makes
// one call, reports the result and returns the process exit code
// (exit_codes.h).
#ifndef AUTHCODE_CLIENTS_CLI_COMMANDS_H_
#define AUTHCODE_CLIENTS_CLI_COMMANDS_H_

#include "authcode/v1/authcode.grpc.pb.h"
#include "clients/cli/connection.h"
#include "clients/cli/exit_codes.h"
#include "clients/cli/options.h"
#include "clients/cli/output.h"

namespace authcode::cli {

// Runs options.command against `stub`. The stub interface, not the
// concrete stub, so that a fake server can stand in.
ExitCode RunCommand(const CliOptions& options, const CallSettings& call,
                    v1::AuthCodeService::StubInterface& stub,
                    Reporter& reporter);

}  // namespace authcode::cli

#endif  // AUTHCODE_CLIENTS_CLI_COMMANDS_H_
