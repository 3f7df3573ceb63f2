// The subcommands: each builds its request from the options, makes one
// call, reports the result and returns the process exit code
// (exit_codes.h).
#ifndef AUTHCODE_CLIENTS_CLI_COMMANDS_H_
#define AUTHCODE_CLIENTS_CLI_COMMANDS_H_

#include "authcode/v1/authcode.grpc.pb.h"
#include "clients/cli/connection.h"
#include "clients/cli/exit_codes.h"
#include "clients/cli/options.h"
#include "clients/cli/output.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace authcode::cli {

// The services a command may call. Stub interfaces, not the concrete
// stubs, so that a fake server can stand in.
struct Stubs {
  v1::AuthCodeService::StubInterface& api;
  grpc::health::v1::Health::StubInterface& health;
};

// Runs options.command against `stubs`.
ExitCode RunCommand(const CliOptions& options, const CallSettings& call,
                    const Stubs& stubs, Reporter& reporter);

}  // namespace authcode::cli

#endif  // AUTHCODE_CLIENTS_CLI_COMMANDS_H_
