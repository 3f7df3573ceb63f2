#include "server/config_check.h"

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "providers/registry.h"
#include "server/embedded.h"
#include "server/mail/composer.h"
#include "server/provider_set.h"
#include "server/store.h"
#include "server/tls.h"

namespace authcode {
namespace {

ConfigCheck Passed(std::string subject, std::string detail) {
  return {std::move(subject), CheckOutcome::kPassed, std::move(detail)};
}

ConfigCheck Failed(std::string subject, CheckOutcome outcome,
                   const absl::Status& status) {
  return {std::move(subject), outcome, std::string(status.message())};
}

ConfigCheck CheckTls(const Config::Server& server) {
  if (!TlsEnabled(server)) {
    return Passed("server.tls", "off: the listener speaks plaintext");
  }
  const absl::StatusOr<TlsMaterial> tls = ReadTlsMaterial(server);
  if (!tls.ok()) {
    return Failed("server.tls", CheckOutcome::kInvalidConfig, tls.status());
  }
  return Passed("server.tls",
                absl::StrCat(TransportName(server),
                             ", certificate and key match, certificate valid "
                             "until ",
                             absl::FormatTime(absl::RFC3339_sec, tls->not_after,
                                              absl::UTCTimeZone())));
}

ConfigCheck CheckTemplates(const Config::Mail& mail) {
  const absl::StatusOr<std::unique_ptr<Composer>> composer =
      Composer::Create(mail);
  if (!composer.ok()) {
    return Failed("mail.templates", CheckOutcome::kInvalidConfig,
                  composer.status());
  }
  return Passed("mail.templates",
                mail.templates_dir.empty()
                    ? "built-in templates"
                    : absl::StrCat("built-in templates and those in ",
                                   mail.templates_dir));
}

std::string DescribeSchema(const SchemaStatus& schema) {
  if (const absl::Status refusal = schema.Refusal(); !refusal.ok()) {
    return std::string(refusal.message());
  }
  return absl::StrCat(
      schema.pending.size(), " of ", EmbeddedMigrations().size(),
      " migrations pending: ", absl::StrJoin(schema.pending, ", "),
      "; run `authcode migrate` (the server also applies "
      "them at start-up)");
}

ConfigCheck CheckDatabase(const Config::Database& database) {
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Connect(database.url, 1);
  if (!store.ok()) {
    return {"database", CheckOutcome::kUnreachable,
            absl::StrCat(store.status().message(),
                         " (database.url; event=db.unavailable above gives "
                         "the reason)")};
  }
  const absl::StatusOr<SchemaStatus> schema = (*store)->CheckSchema();
  if (!schema.ok()) {
    return Failed("database", CheckOutcome::kUnreachable, schema.status());
  }
  if (!schema->current()) {
    return {"database", CheckOutcome::kSchemaMismatch, DescribeSchema(*schema)};
  }
  return Passed("database",
                absl::StrCat("reachable, schema current (",
                             EmbeddedMigrations().size(), " migrations)"));
}

// One line for building each instance and, with `connect`, one for
// reaching it.
void CheckProviders(const Config& config, bool connect,
                    std::vector<ConfigCheck>& checks) {
  providers::ProviderRegistry registry;
  providers::RegisterBuiltinProviders(registry);
  for (const std::string& name : ChainedInstances(config)) {
    const std::string subject = absl::StrCat("providers.", name);
    const std::string type = ProviderInstance(config, name).type;
    absl::StatusOr<std::unique_ptr<providers::Provider>> provider =
        BuildProvider(config, name, registry);
    if (!provider.ok()) {
      checks.push_back(
          Failed(subject, CheckOutcome::kInvalidConfig, provider.status()));
      continue;
    }
    checks.push_back(Passed(subject, absl::StrCat(type, ", settings valid")));
    if (!connect) continue;

    const absl::Status reached = (*provider)->CheckReachable();
    checks.push_back(
        reached.ok()
            ? Passed(subject, absl::StrCat(type, ", reachable (nothing sent)"))
            : Failed(subject, CheckOutcome::kUnreachable, reached));
  }
}

}  // namespace

std::vector<ConfigCheck> CheckConfig(const Config& config, bool connect) {
  std::vector<ConfigCheck> checks;
  checks.push_back(CheckTls(config.server));
  checks.push_back(CheckTemplates(config.mail));
  CheckProviders(config, connect, checks);
  if (connect) checks.push_back(CheckDatabase(config.database));
  return checks;
}

int CheckExitStatus(const std::vector<ConfigCheck>& checks) {
  for (CheckOutcome outcome :
       {CheckOutcome::kInvalidConfig, CheckOutcome::kUnreachable,
        CheckOutcome::kSchemaMismatch}) {
    for (const ConfigCheck& check : checks) {
      if (check.outcome == outcome) return static_cast<int>(outcome);
    }
  }
  return static_cast<int>(CheckOutcome::kPassed);
}

std::string FormatCheck(const ConfigCheck& check) {
  const char* mark =
      check.outcome == CheckOutcome::kPassed ? "ok    " : "FAIL  ";
  // A provider's own error names its key ("providers.relay.port: ...").
  if (absl::StartsWith(check.detail, absl::StrCat(check.subject, ".")) ||
      absl::StartsWith(check.detail, absl::StrCat(check.subject, ":"))) {
    return absl::StrCat(mark, check.detail);
  }
  return absl::StrCat(mark, check.subject, ": ", check.detail);
}

}  // namespace authcode
