// authcode: the server binary.
//
//   authcode [--config FILE] [serve]   run the server (the default)
//   authcode [--config FILE] migrate   apply the schema and exit
//   authcode [--config FILE] check-config
//                                      validate the config (and read the
//                                      TLS files) and exit
//   authcode new-token                 print a new bearer token and the
//                                      digest that goes in the config
//
// SIGTERM or SIGINT stops the server; SIGHUP reloads its TLS files.
#include <pthread.h>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include <openssl/rand.h>

#include "CLI/CLI.hpp"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/callers.h"
#include "server/config.h"
#include "server/log.h"
#include "server/server.h"
#include "server/store.h"
#include "server/tls.h"

namespace {

int Fail(const absl::Status& status) {
  authcode::log::Error("server.fatal",
                       {{"error", std::string(status.message())}});
  std::cerr << "authcode: " << status.message() << "\n";
  return 1;
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
  CLI::App* check =
      app.add_subcommand("check-config", "Validate the config and exit");
  CLI::App* new_token = app.add_subcommand(
      "new-token", "Print a new bearer token and its token_sha256");
  CLI11_PARSE(app, argc, argv);
  (void)serve;
  if (new_token->parsed()) return NewToken();

  absl::StatusOr<authcode::Config> config =
      authcode::LoadConfig(config_path, authcode::ProcessEnvironment());
  if (!config.ok()) {
    std::cerr << "authcode: " << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = authcode::log::Init(config->log); !s.ok()) {
    std::cerr << "authcode: " << s.message() << "\n";
    return 2;
  }

  if (check->parsed()) {
    if (authcode::TlsEnabled(config->server)) {
      const absl::StatusOr<authcode::TlsMaterial> tls =
          authcode::ReadTlsMaterial(config->server);
      if (!tls.ok()) {
        std::cerr << "authcode: " << tls.status().message() << "\n";
        return 2;
      }
    }
    std::cout << "config OK\n";
    return 0;
  }
  if (migrate->parsed()) {
    auto store = authcode::Store::Connect(config->database.url, 1);
    if (!store.ok()) return Fail(store.status());
    if (absl::Status s = (*store)->Migrate(); !s.ok()) return Fail(s);
    std::cout << "schema up to date\n";
    return 0;
  }
  return Serve(*std::move(config));
}
