// authcode: the server binary.
//
//   authcode [--config FILE] [serve]   run the server (the default)
//   authcode [--config FILE] migrate   apply the schema and exit: 0, or
//                                      3 when the database is unreachable,
//                                      4 when its schema is not ours to
//                                      change (a later binary's), 1 else
//   authcode [--config FILE] check-config [--connect]
//                                      (or --check-config) validate the
//                                      config and what it names; with
//                                      --connect also reach the database
//                                      and the providers. Exit 0, or 2 bad
//                                      config, 3 unreachable, 4 schema
//                                      not migrated (config_check.h)
//   authcode [--config FILE] doctor [--resolver HOST[:PORT]] [--json]
//                                      look up the From domain's SPF, DKIM
//                                      and DMARC records and say what to
//                                      fix (server/doctor/doctor.h). Exit
//                                      0, or 1 a check failed, 2 bad
//                                      config or usage
//   authcode new-token                 print a new bearer token and the
//                                      digest that goes in the config
//
// SIGTERM or SIGINT stops the server; SIGHUP reloads its TLS files.
#include <pthread.h>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <openssl/rand.h>

#include "CLI/CLI.hpp"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/callers.h"
#include "server/config.h"
#include "server/config_check.h"
#include "server/doctor/doctor.h"
#include "server/log.h"
#include "server/server.h"
#include "server/store.h"

namespace {

int Fail(const absl::Status& status) {
  authcode::log::Error("server.fatal",
                       {{"error", std::string(status.message())}});
  std::cerr << "authcode: " << status.message() << "\n";
  return 1;
}

// One line per check: passes on stdout, failures on stderr.
int RunCheckConfig(const authcode::Config& config, bool connect) {
  const std::vector<authcode::ConfigCheck> checks =
      authcode::CheckConfig(config, connect);
  for (const authcode::ConfigCheck& check : checks) {
    (check.outcome == authcode::CheckOutcome::kPassed ? std::cout : std::cerr)
        << authcode::FormatCheck(check) << "\n";
  }
  const int status = authcode::CheckExitStatus(checks);
  if (status == 0) {
    std::cout << (connect ? "config OK, database and providers reachable\n"
                          : "config OK\n");
  } else {
    std::cerr << "authcode: check-config failed (exit " << status << ")\n";
  }
  return status;
}

int RunMigrate(const authcode::Config& config) {
  auto store = authcode::Store::Connect(config.database.url, 1);
  std::vector<std::string> applied;
  const absl::Status status =
      store.ok() ? (*store)->Migrate(&applied) : store.status();
  if (!status.ok()) {
    Fail(status);
    // The exit statuses check-config gives for the same conditions.
    if (status.code() == absl::StatusCode::kUnavailable) {
      return static_cast<int>(authcode::CheckOutcome::kUnreachable);
    }
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      return static_cast<int>(authcode::CheckOutcome::kSchemaMismatch);
    }
    return 1;
  }
  for (const std::string& name : applied) {
    std::cout << "applied " << name << "\n";
  }
  std::cout << (applied.empty() ? "schema up to date, nothing to apply\n"
                                : "schema up to date\n");
  return 0;
}

// Blocks SIGINT, SIGTERM and SIGHUP in every thread (call before starting
// any) and returns the set, for sigwait(). Blocked from the start, a
// SIGHUP never takes its default action of ending the process.
sigset_t BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int Serve(authcode::Config config) {
  const sigset_t signals = BlockSignals();
  absl::StatusOr<std::unique_ptr<authcode::Server>> server =
      authcode::Server::Start(std::move(config), {});
  if (!server.ok()) return Fail(server.status());

  // SIGHUP reloads the TLS files (a failure is logged and changes
  // nothing); SIGINT or SIGTERM stops.
  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    (void)(*server)->ReloadTls();
  }
  authcode::log::Info("server.stopping",
                      {{"signal", signal == SIGINT ? "SIGINT" : "SIGTERM"}});
  if (!(*server)->Shutdown()) {
    // A send is stuck past the grace period; its lease lets another
    // worker take the job. Leave without waiting for it.
    spdlog::default_logger()->flush();
    std::_Exit(0);
  }
  return 0;
}

// A token of 256 random bits, and the line that lets a tenant use it.
int NewToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    std::cerr << "authcode: the system's random source failed\n";
    return 1;
  }
  const std::string token = absl::StrCat(
      "ac_", absl::WebSafeBase64Escape(absl::string_view(
                 reinterpret_cast<const char*>(bytes), sizeof(bytes))));
  std::cout << "token (give it to the calling service; shown only now):\n  "
            << token << "\n"
            << "for its [tenants.NAME] table:\n  token_sha256 = [\""
            << absl::BytesToHexString(authcode::TokenDigest(token)) << "\"]\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"authcode: issues and verifies one-time codes sent by email"};
  std::string config_path;
  app.add_option("--config", config_path,
                 "TOML config file (see config.example.toml); without one "
                 "the embedded defaults apply")
      ->check(CLI::ExistingFile);
  app.require_subcommand(0, 1);
  CLI::App* serve = app.add_subcommand("serve", "Run the server (default)");
  CLI::App* migrate =
      app.add_subcommand("migrate", "Apply the database schema and exit");
  CLI::App* check = app.add_subcommand(
      "check-config",
      "Validate the config and what it names, and exit (0 OK, 2 invalid "
      "config, 3 a dependency unreachable, 4 schema not migrated)");
  // Lets --connect and --config follow the subcommand.
  check->fallthrough();
  bool check_flag = false;
  app.add_flag("--check-config", check_flag, "Same as check-config");
  bool connect = false;
  app.add_flag("--connect", connect,
               "check-config: also connect to the database (comparing its "
               "schema, applying nothing) and to each provider (sending "
               "nothing)");
  CLI::App* new_token = app.add_subcommand(
      "new-token", "Print a new bearer token and its token_sha256");
  CLI::App* doctor = app.add_subcommand(
      "doctor",
      "Look up the From domain's SPF, DKIM and DMARC records and say what "
      "to fix (0 nothing failed, 1 a check failed, 2 bad config or usage)");
  doctor->fallthrough();  // Lets --config follow the subcommand.
  authcode::doctor::Options doctor_options;
  doctor->add_option("--resolver", doctor_options.resolver,
                     "DNS server(s) to ask, HOST[:PORT], comma-separated "
                     "(default: doctor.resolver, else the system's)");
  doctor->add_flag("--json", doctor_options.json, "Print the report as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; a usage error exits 2, as a bad config does.
    return app.exit(e) == 0 ? 0 : 2;
  }
  (void)serve;
  if (new_token->parsed()) return NewToken();
  const bool checking = check->parsed() || check_flag;
  if (connect && !checking) {
    std::cerr << "authcode: --connect goes with check-config\n";
    return 2;
  }
  if (check_flag && !app.get_subcommands().empty() && !check->parsed()) {
    std::cerr << "authcode: --check-config takes no subcommand\n";
    return 2;
  }

  absl::StatusOr<authcode::Config> config =
      authcode::LoadConfig(config_path, authcode::ProcessEnvironment());
  if (!config.ok()) {
    std::cerr << (checking ? "FAIL  config: " : "authcode: ")
              << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = authcode::log::Init(config->log); !s.ok()) {
    std::cerr << "authcode: " << s.message() << "\n";
    return 2;
  }

  if (checking) {
    std::cout << "ok    config: "
              << (config_path.empty() ? "embedded defaults" : config_path)
              << " and the environment\n";
    return RunCheckConfig(*config, connect);
  }
  if (migrate->parsed()) return RunMigrate(*config);
  if (doctor->parsed()) {
    return authcode::doctor::Run(*config, doctor_options, std::cout, std::cerr);
  }
  return Serve(*std::move(config));
}
