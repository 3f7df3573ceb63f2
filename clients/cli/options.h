// The command line of authcode-cli, parsed into plain structs.
//
// Parsing checks everything that can be checked without touching the
// network or the file system: required flags, flags that need or exclude
// each other, the --timeout syntax and the --value pairs. Files named by
// flags are read later, by Connect() (connection.h).
#ifndef AUTHCODE_CLIENTS_CLI_OPTIONS_H_
#define AUTHCODE_CLIENTS_CLI_OPTIONS_H_

#include <map>
#include <optional>
#include <ostream>
#include <string>

#include "absl/time/time.h"

namespace authcode::cli {

enum class Command { kIssue, kVerify, kStatus, kHealth };

// Where and how to call: the global flags.
struct ConnectionOptions {
  std::string target;
  bool tls = false;
  std::string ca_file;    // empty: the system's roots
  std::string cert_file;  // with key_file: a client certificate (mTLS)
  std::string key_file;
  std::string token;  // at most one of token and token_file is set
  std::string token_file;
  absl::Duration timeout;
};

struct IssueArgs {
  std::string recipient;
  std::string purpose;
  std::string locale;
  std::map<std::string, std::string> template_values;
  std::string client_ip;
  std::string idempotency_key;
};

struct VerifyArgs {
  std::string recipient;
  std::string purpose;
  std::string code;
};

struct StatusArgs {
  std::string code_id;
};

struct HealthArgs {
  std::string service;  // empty: the server as a whole
};

struct CliOptions {
  Command command = Command::kIssue;
  ConnectionOptions connection;
  bool json = false;
  // Only the one for `command` is filled in.
  IssueArgs issue;
  VerifyArgs verify;
  StatusArgs status;
  HealthArgs health;
};

struct ParseResult {
  // Set when there is a command to run.
  std::optional<CliOptions> options;
  // Help was asked for and has been written: exit 0, run nothing.
  bool help_shown = false;
  // Why the command line is wrong, when it is.
  std::string error;
  // Whether --json was asked for, known even when parsing failed, so that
  // a usage error can be reported in the format the caller expects.
  bool json = false;
};

// Parses argv. Writes only help text, to `out`.
ParseResult ParseCommandLine(int argc, const char* const* argv,
                             std::ostream& out);

}  // namespace authcode::cli

#endif  // AUTHCODE_CLIENTS_CLI_OPTIONS_H_
