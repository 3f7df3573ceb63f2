#include "server/doctor/checks.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/doctor/check_util.h"
#include "server/doctor/dmarc.h"
#include "server/provider_set.h"

namespace authcode::doctor {
namespace {

// Lower-case tags of a DMARC record, or nullopt when it does not parse.
std::optional<TagList> DmarcTags(const std::string& record) {
  std::optional<TagList> tags = ParseTagList(record);
  if (!tags.has_value()) return std::nullopt;
  for (auto& [name, value] : *tags) {
    absl::AsciiStrToLower(&name);
    absl::AsciiStrToLower(&value);
  }
  return tags;
}

Finding DmarcPolicy(const Sender& sender, const DmarcSearch& search,
                    const std::string& record, const TagList& tags) {
  const bool inherited = search.domain != sender.from_domain;
  std::optional<std::string> policy = TagValue(tags, "p");
  std::string tag = "p";
  if (inherited && TagValue(tags, "sp").has_value()) {
    policy = TagValue(tags, "sp");
    tag = "sp";
  }
  const std::string stricter = absl::StrCat(
      "once reports show your mail passes, ",
      Publish(search.name, tag == "p"
                               ? "v=DMARC1; p=quarantine"
                               : "v=DMARC1; p=quarantine; sp=quarantine"),
      ", keeping any other tags");
  if (policy == "quarantine" || policy == "reject") {
    return Pass("dmarc.policy",
                absl::StrCat(tag, "=", *policy, ": receivers ",
                             *policy == "reject" ? "reject" : "quarantine",
                             " mail that fails DMARC"));
  }
  if (policy == "none") {
    return Warn("dmarc.policy",
                absl::StrCat(tag, "=none: receivers deliver mail that fails ",
                             "DMARC as they would without a record; it only "
                             "asks for reports"),
                stricter);
  }
  return Fail("dmarc.policy",
              absl::StrCat(search.name, " has no valid ", tag,
                           "= (none, quarantine or reject), so receivers "
                           "ignore the record: ",
                           Quoted(record)),
              Publish(search.name, "v=DMARC1; p=quarantine"));
}

// Whether the record asks for strict alignment for this kind of identity.
bool Strict(const std::optional<TagList>& tags, bool dkim) {
  if (!tags.has_value()) return false;
  return TagValue(*tags, dkim ? "adkim" : "aspf") == "s";
}

Finding DmarcAlignment(const Sender& sender,
                       const std::optional<TagList>& tags) {
  std::vector<std::string> aligned;
  std::vector<std::string> misaligned;
  for (const Sender::Provider& provider : sender.providers) {
    std::set<std::string> seen;  // A DKIM and a login domain may coincide.
    for (const std::string& identity : provider.identity_domains) {
      const std::string domain = NormalizeName(identity);
      if (!seen.insert(domain).second) continue;
      const bool dkim = provider.dkim.has_value() &&
                        NormalizeName(provider.dkim->domain) == domain;
      const bool ok = Strict(tags, dkim)
                          ? domain == sender.from_domain
                          : RelaxedAligned(sender.from_domain, domain);
      (ok ? aligned : misaligned)
          .push_back(absl::StrCat(provider.instance, " ",
                                  dkim ? "signs as " : "signs or logs in as ",
                                  domain));
    }
  }
  if (!misaligned.empty()) {
    return Fail("dmarc.alignment",
                absl::StrCat("From domain ", sender.from_domain,
                             " does not align with what ",
                             absl::StrJoin(misaligned, ", "),
                             ": DMARC fails for mail sent that way"),
                absl::StrCat("send from an address at the domain the "
                             "provider signs or logs in as, or sign (DKIM d=) "
                             "and log in as ",
                             sender.from_domain, " or a domain under it"));
  }
  if (aligned.empty()) {
    return Warn("dmarc.alignment",
                absl::StrCat("no provider here names the domain it signs or "
                             "logs in as, so alignment with ",
                             sender.from_domain, " cannot be checked"),
                absl::StrCat("make sure the provider signs with DKIM as ",
                             sender.from_domain,
                             " (d=) or a domain under it; its domain setup "
                             "says which"));
  }
  return Pass("dmarc.alignment",
              absl::StrCat("From domain ", sender.from_domain,
                           " aligns with what ", absl::StrJoin(aligned, ", ")));
}

}  // namespace

std::vector<Finding> CheckDmarc(const Sender& sender,
                                const RecordSet& records) {
  const DmarcSearch search = FindDmarc(sender.from_domain, LookupIn(records));
  std::vector<Finding> findings;
  std::optional<TagList> tags;
  if (search.failure.has_value()) {
    findings.push_back(Fail(
        "dmarc", absl::StrCat(search.name, ": ", Describe(*search.failure)),
        LookupFix(search.name)));
  } else if (search.records.empty()) {
    findings.push_back(
        Fail("dmarc",
             absl::StrCat("no DMARC record at ", search.name,
                          search.domain.find('.') != search.domain.rfind('.')
                              ? " nor at its parent domains"
                              : "",
                          ": receivers apply no policy to mail that fails SPF "
                          "and DKIM alignment"),
             absl::StrCat(Publish(search.name, "v=DMARC1; p=quarantine"),
                          " (add rua=mailto:ADDRESS to receive reports)")));
  } else if (search.records.size() > 1) {
    findings.push_back(
        Fail("dmarc",
             absl::StrCat(search.records.size(), " DMARC records at ",
                          search.name, ": receivers then apply none"),
             absl::StrCat("keep one of them at ", search.name)));
  } else if (tags = DmarcTags(search.records[0]); !tags.has_value()) {
    findings.push_back(
        Fail("dmarc",
             absl::StrCat(search.name, " is not a list of tag=value pairs: ",
                          Quoted(search.records[0])),
             Publish(search.name, "v=DMARC1; p=quarantine")));
  } else {
    findings.push_back(Pass(
        "dmarc",
        absl::StrCat(search.name,
                     search.domain == sender.from_domain
                         ? ""
                         : absl::StrCat(" (the organizational domain's, for ",
                                        sender.from_domain, ")"),
                     ": ", Quoted(search.records[0]))));
    findings.push_back(DmarcPolicy(sender, search, search.records[0], *tags));
  }
  findings.push_back(DmarcAlignment(sender, tags));
  return findings;
}

}  // namespace authcode::doctor
