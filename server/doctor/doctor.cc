#include "server/doctor/doctor.h"

#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "server/address.h"
#include "server/doctor/resolver.h"
#include "server/provider_set.h"

namespace authcode::doctor {
namespace {

// Check names are padded to this width in the text report.
constexpr int kCheckColumn = 16;

std::map<Verdict, int> Counts(const std::vector<Finding>& findings) {
  std::map<Verdict, int> counts = {
      {Verdict::kPass, 0}, {Verdict::kWarn, 0}, {Verdict::kFail, 0}};
  for (const Finding& finding : findings) ++counts[finding.verdict];
  return counts;
}

}  // namespace

absl::StatusOr<Sender> SenderFromConfig(const Config& config) {
  // The recipient parser turns an internationalized domain into the
  // A-labels DNS is asked in, and refuses what DNS cannot be asked about
  // (a single label such as "localhost", an IP address).
  absl::StatusOr<Recipient> from =
      ParseRecipientAddress(config.mail.from_address);
  if (!from.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mail.from_address: the doctor needs an address at a domain it can "
        "look up in DNS (",
        from.status().message(), ")"));
  }
  Sender sender;
  sender.from_domain =
      NormalizeName(from->key.substr(from->key.rfind('@') + 1));

  absl::StatusOr<std::unique_ptr<ProviderSet>> set =
      ProviderSet::Create(config);
  if (!set.ok()) return set.status();
  for (const auto& [name, entry] : (*set)->instances()) {
    Sender::Provider provider;
    provider.instance = name;
    provider.type = entry->config.type;
    provider.spf_includes = entry->provider->SpfIncludes();
    provider.dkim = entry->provider->DkimKey();
    provider.identity_domains = entry->provider->IdentityDomains();
    sender.providers.push_back(std::move(provider));
  }
  return sender;
}

int ExitCode(const std::vector<Finding>& findings) {
  const bool failed =
      std::any_of(findings.begin(), findings.end(),
                  [](const Finding& f) { return f.verdict == Verdict::kFail; });
  return failed ? kExitFailed : kExitOk;
}

std::string RenderText(const std::string& from_domain,
                       const std::string& resolver,
                       const std::vector<Finding>& findings) {
  std::string text = absl::StrCat("authcode doctor: From domain ", from_domain,
                                  ", resolver ", resolver, "\n");
  for (const Finding& finding : findings) {
    absl::StrAppend(&text, VerdictName(finding.verdict), "  ",
                    absl::StrFormat("%-*s", kCheckColumn, finding.check), " ",
                    finding.finding, "\n");
    if (!finding.fix.empty()) {
      absl::StrAppend(&text, std::string(kCheckColumn + 7, ' '),
                      "fix: ", finding.fix, "\n");
    }
  }
  std::map<Verdict, int> counts = Counts(findings);
  absl::StrAppend(&text, "summary: ", counts[Verdict::kPass], " pass, ",
                  counts[Verdict::kWarn], " warn, ", counts[Verdict::kFail],
                  " fail\n");
  return text;
}

std::string RenderJson(const std::string& from_domain,
                       const std::string& resolver,
                       const std::vector<Finding>& findings) {
  nlohmann::json checks = nlohmann::json::array();
  for (const Finding& finding : findings) {
    checks.push_back({{"check", finding.check},
                      {"verdict", VerdictName(finding.verdict)},
                      {"finding", finding.finding},
                      {"fix", finding.fix}});
  }
  std::map<Verdict, int> counts = Counts(findings);
  const nlohmann::json report = {{"from_domain", from_domain},
                                 {"resolver", resolver},
                                 {"checks", checks},
                                 {"summary",
                                  {{"pass", counts[Verdict::kPass]},
                                   {"warn", counts[Verdict::kWarn]},
                                   {"fail", counts[Verdict::kFail]}}}};
  return report.dump(2) + "\n";
}

int Run(const Config& config, const Options& options, std::ostream& out,
        std::ostream& err) {
  absl::StatusOr<Sender> sender = SenderFromConfig(config);
  if (!sender.ok()) {
    err << "authcode doctor: " << sender.status().message() << "\n";
    return kExitUsage;
  }

  const bool from_flag = !options.resolver.empty();
  const std::string servers =
      from_flag ? options.resolver : config.doctor.resolver;
  absl::StatusOr<std::unique_ptr<Resolver>> resolver =
      Resolver::Create({servers, config.doctor.timeout});
  if (!resolver.ok()) {
    err << "authcode doctor: " << (from_flag ? "--" : "doctor.")
        << resolver.status().message() << "\n";
    return kExitUsage;
  }

  const RecordSet records = Collect(*sender, [&](const std::string& name) {
    return (*resolver)->LookupTxt(name);
  });
  const std::vector<Finding> findings = CheckAll(*sender, records);
  const std::string shown = servers.empty() ? "system" : servers;
  out << (options.json ? RenderJson(sender->from_domain, shown, findings)
                       : RenderText(sender->from_domain, shown, findings));
  return ExitCode(findings);
}

}  // namespace authcode::doctor
