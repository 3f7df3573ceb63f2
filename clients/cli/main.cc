// authcode-cli: the operator's command-line client of authcode. Parses the
// command line, connects, runs one subcommand and exits with a code scripts
// can rely on (exit_codes.h).
#include <iostream>

#include "authcode/v1/authcode.grpc.pb.h"
#include "clients/cli/commands.h"
#include "clients/cli/connection.h"
#include "clients/cli/exit_codes.h"
#include "clients/cli/options.h"
#include "clients/cli/output.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace authcode::cli {
namespace {

ExitCode Main(int argc, const char* const* argv) {
  const ParseResult parsed = ParseCommandLine(argc, argv, std::cout);
  if (parsed.help_shown) return kExitOk;
  Reporter reporter(parsed.json, std::cout, std::cerr);
  if (!parsed.options) {
    reporter.UsageError(parsed.error);
    return kExitUsage;
  }

  absl::StatusOr<Connection> connection = Connect(parsed.options->connection);
  if (!connection.ok()) {
    reporter.UsageError(connection.status().message());
    return kExitUsage;
  }

  auto api = v1::AuthCodeService::NewStub(connection->channel);
  auto health = grpc::health::v1::Health::NewStub(connection->channel);
  return RunCommand(*parsed.options, connection->call, Stubs{*api, *health},
                    reporter);
}

}  // namespace
}  // namespace authcode::cli

int main(int argc, char** argv) { return authcode::cli::Main(argc, argv); }
