#include "clients/cli/options.h"

#include <cstring>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/exit_codes.h"

namespace authcode::cli {
namespace {

constexpr char kDefaultTarget[] = "127.0.0.1:50051";
constexpr char kDefaultTimeout[] = "5s";

constexpr char kDescription[] =
    "Operator's client of an authcode server (authcode.v1.AuthCodeService):\n"
    "issues one-time codes, verifies them, reports how their delivery is\n"
    "going, and tells whether the server is ready.";

constexpr char kFooterText[] =
    "Global flags go before or after the subcommand. Run\n"
    "'authcode-cli SUBCOMMAND --help' for the flags of one subcommand.\n"
    "\n"
    "Output: one line on stdout for people. With --json, exactly one JSON\n"
    "object on stdout: the response, with the proto's snake_case field\n"
    "names, or {\"error\": {...}} with \"code\" (the gRPC status name, or\n"
    "USAGE for exit 2), \"message\", and when the server sent them\n"
    "\"retry_after_seconds\" and \"field_violations\". Errors always also\n"
    "get a line on stderr.\n"
    "\n"
    "--token and --token-file send \"authorization: Bearer <token>\" with\n"
    "every call; a server with [tenants] takes the call as the token's\n"
    "tenant (a server without accepts any token, or none). Without --tls\n"
    "it crosses the network in clear text, and a\n"
    "--token on the command line is visible to other local users; prefer\n"
    "--token-file.\n"
    "\n";

// Flags that CLI11 stores as text and that are converted after parsing.
struct RawFlags {
  std::string timeout = kDefaultTimeout;
  std::vector<std::string> values;
};

void AddGlobalFlags(CLI::App& app, CliOptions& options, RawFlags& raw) {
  ConnectionOptions& c = options.connection;
  c.target = kDefaultTarget;
  app.add_option("--target", c.target, "Server address, HOST:PORT")
      ->envname("AUTHCODE_TARGET")
      ->capture_default_str();
  CLI::Option* tls =
      app.add_flag("--tls", c.tls, "Use TLS (default: plaintext)");
  app.add_option("--ca-file", c.ca_file,
                 "PEM roots for the server (default: system roots)")
      ->needs(tls);
  CLI::Option* cert =
      app.add_option("--cert", c.cert_file,
                     "PEM client certificate chain, for mutual TLS")
          ->needs(tls);
  CLI::Option* key =
      app.add_option("--key", c.key_file, "PEM private key of --cert")
          ->needs(tls);
  cert->needs(key);
  key->needs(cert);
  CLI::Option* token = app.add_option(
      "--token", c.token, "Bearer token naming the caller's tenant");
  app.add_option("--token-file", c.token_file,
                 "File with the bearer token, on one line")
      ->excludes(token);
  app.add_option("--timeout", raw.timeout,
                 "Deadline of the call, e.g. 500ms, 5s, 1m")
      ->capture_default_str();
  app.add_flag("--json", options.json,
               "Print one JSON object instead of a text line");
}

void AddIssue(CLI::App& app, IssueArgs& args, RawFlags& raw) {
  CLI::App* issue = app.add_subcommand(
      "issue", "Issue a code and queue its mail (IssueCode)");
  issue->add_option("--recipient", args.recipient, "Email address")->required();
  issue
      ->add_option("--purpose", args.purpose,
                   "Slug, e.g. login or signup; picks the template")
      ->required();
  issue->add_option("--locale", args.locale,
                    "BCP 47 tag for the template, e.g. en or de-CH");
  issue->add_option("--value", raw.values,
                    "Template value KEY=VALUE; repeatable");
  issue->add_option("--client-ip", args.client_ip,
                    "IP address of the end user asking for the code");
  issue->add_option("--idempotency-key", args.idempotency_key,
                    "Makes a retry of this exact request safe");
}

void AddVerify(CLI::App& app, VerifyArgs& args) {
  CLI::App* verify = app.add_subcommand(
      "verify", "Check a code (VerifyCode); exit 1 unless accepted");
  verify->add_option("--recipient", args.recipient, "Email address")
      ->required();
  verify->add_option("--purpose", args.purpose, "Slug the code was issued for")
      ->required();
  verify->add_option("--code", args.code, "The digits the user typed")
      ->required();
}

void AddStatus(CLI::App& app, StatusArgs& args) {
  CLI::App* status = app.add_subcommand(
      "status", "Show how a code's delivery is going (GetDelivery)");
  status
      ->add_option("--delivery-id", args.code_id,
                   "The code_id that issue printed")
      ->required();
}

void AddHealth(CLI::App& app, HealthArgs& args) {
  CLI::App* health = app.add_subcommand(
      "health",
      "Ask the server's grpc.health.v1 service whether it serves; exit 1 "
      "unless SERVING (for readiness probes)");
  health->add_option("--service", args.service,
                     "Service name to ask about, e.g. "
                     "authcode.v1.AuthCodeService (default: the server)");
}

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration timeout;
  if (!absl::ParseDuration(text, &timeout)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout: \"", text, "\" is not a duration such as 500ms, 5s, 1m"));
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout: must be positive, got \"", text, "\""));
  }
  return timeout;
}

absl::StatusOr<std::map<std::string, std::string>> ParseValues(
    const std::vector<std::string>& pairs) {
  std::map<std::string, std::string> values;
  for (const std::string& pair : pairs) {
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--value: expected KEY=VALUE with a non-empty KEY, got \"", pair,
          "\""));
    }
    const std::string key = pair.substr(0, eq);
    if (!values.emplace(key, pair.substr(eq + 1)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--value: key \"", key, "\" given more than once"));
    }
  }
  return values;
}

// Checks and converts what CLI11 could not: the target, the timeout and
// the template values.
absl::Status ConvertRawFlags(const RawFlags& raw, CliOptions& options) {
  if (options.connection.target.empty()) {
    return absl::InvalidArgumentError(
        "--target (or AUTHCODE_TARGET) must not be empty");
  }
  absl::StatusOr<absl::Duration> timeout = ParseTimeout(raw.timeout);
  if (!timeout.ok()) return timeout.status();
  absl::StatusOr<std::map<std::string, std::string>> values =
      ParseValues(raw.values);
  if (!values.ok()) return values.status();

  options.connection.timeout = *timeout;
  options.issue.template_values = *std::move(values);
  return absl::OkStatus();
}

Command CommandNamed(const std::string& name) {
  if (name == "verify") return Command::kVerify;
  if (name == "status") return Command::kStatus;
  if (name == "health") return Command::kHealth;
  return Command::kIssue;
}

// Whether --json is on the command line, for reporting a usage error when
// CLI11 stopped before reaching it.
bool MentionsJson(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

}  // namespace

ParseResult ParseCommandLine(int argc, const char* const* argv,
                             std::ostream& out) {
  CliOptions options;
  RawFlags raw;
  CLI::App app(kDescription, "authcode-cli");
  app.fallthrough();  // inherited: global flags work after the subcommand
  AddGlobalFlags(app, options, raw);
  AddIssue(app, options.issue, raw);
  AddVerify(app, options.verify);
  AddStatus(app, options.status);
  AddHealth(app, options.health);
  app.require_subcommand(1);
  app.footer(absl::StrCat(kFooterText, kExitCodesHelp));

  ParseResult result;
  result.json = MentionsJson(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& help) {
    app.exit(help, out, out);
    result.help_shown = true;
    return result;
  } catch (const CLI::ParseError& e) {
    result.error = e.what();
    return result;
  }
  result.json = options.json;

  const absl::Status converted = ConvertRawFlags(raw, options);
  if (!converted.ok()) {
    result.error = std::string(converted.message());
    return result;
  }
  options.command = CommandNamed(app.get_subcommands().front()->get_name());
  result.options = std::move(options);
  return result;
}

}  // namespace authcode::cli
