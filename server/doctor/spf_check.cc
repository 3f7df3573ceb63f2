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
#include "server/doctor/spf.h"

namespace authcode::doctor {
namespace {

// The SPF record that the From domain should have: the includes the
// providers need, then ~all.
std::string SuggestedSpf(const Sender& sender) {
  std::string record = "v=spf1";
  std::set<std::string> seen;
  for (const Sender::Provider& provider : sender.providers) {
    if (!provider.spf_includes.has_value()) continue;
    for (const std::string& include : *provider.spf_includes) {
      if (seen.insert(include).second)
        absl::StrAppend(&record, " include:", include);
    }
  }
  return absl::StrCat(record, " ~all");
}

// Several SPF records made into one: every term of each but their all
// terms and modifiers, once, then the first record's all term or ~all.
std::string MergedSpf(const std::vector<std::string>& records) {
  std::vector<std::string> terms;
  std::optional<std::string> all;
  for (const std::string& text : records) {
    for (const std::string& term : ParseSpf(text).terms) {
      if (IsAllTerm(term)) {
        if (!all.has_value()) all = term;
      } else if (term.find('=') == std::string::npos &&
                 std::find(terms.begin(), terms.end(), term) == terms.end()) {
        terms.push_back(term);
      }
    }
  }
  terms.push_back(all.value_or("~all"));
  return absl::StrCat("v=spf1 ", absl::StrJoin(terms, " "));
}

Finding SpfAll(const std::string& domain, const std::string& record,
               std::optional<char> all) {
  const std::string fix =
      absl::StrCat("end the record in ~all (or -all): ",
                   Publish(domain, WithAll(record, "~all")));
  if (!all.has_value()) {
    return Warn("spf.all",
                "no all term: mail from hosts the record does not list gets "
                "a neutral result, as if there were no record",
                fix);
  }
  switch (*all) {
    case '-':
      return Pass("spf.all", "-all: mail from unlisted hosts fails SPF");
    case '~':
      return Pass("spf.all", "~all: mail from unlisted hosts soft-fails SPF");
    case '?':
      return Warn("spf.all",
                  "?all: mail from unlisted hosts gets a neutral result, as "
                  "if there were no record",
                  fix);
    default:
      return Warn("spf.all",
                  "+all: every host on the internet passes SPF for this "
                  "domain, so SPF vouches for no one",
                  fix);
  }
}

Finding SpfLookups(const SpfTree& tree) {
  if (!tree.problems.empty()) {
    return Fail("spf.lookups",
                absl::StrCat(absl::StrJoin(tree.problems, "; "),
                             ": receivers treat the record as an error "
                             "(permerror), so SPF fails"),
                "remove those terms, or have their records published");
  }
  if (tree.lookups > kMaxSpfLookups) {
    return Fail(
        "spf.lookups",
        absl::StrCat("the record takes ", tree.lookups,
                     " DNS lookups (include, a, mx, ptr, exists, "
                     "redirect, counted through its includes); "
                     "more than ",
                     kMaxSpfLookups, " is an error (permerror), so SPF fails"),
        "drop terms you do not need, or replace a and mx terms "
        "with the ip4:/ip6: ranges they stand for");
  }
  return Pass("spf.lookups",
              absl::StrCat(tree.lookups, " of the ", kMaxSpfLookups,
                           " DNS lookups SPF allows"));
}

// The includes of `provider` that `tree` does not reach.
std::vector<std::string> MissingIncludes(const Sender::Provider& provider,
                                         const SpfTree& tree) {
  std::vector<std::string> missing;
  if (!provider.spf_includes.has_value()) return missing;
  for (const std::string& include : *provider.spf_includes) {
    if (tree.includes.count(NormalizeName(include)) == 0) {
      missing.push_back(absl::StrCat("include:", include));
    }
  }
  return missing;
}

// `complete` is the record with what every provider misses added, so
// that each failing provider's fix is the one record to publish.
Finding SpfInclude(const Sender& sender, const Sender::Provider& provider,
                   const SpfTree& tree, const std::string& complete) {
  if (!provider.spf_includes.has_value()) {
    return Warn(
        "spf.include",
        absl::StrCat(Label(provider),
                     ": cannot tell which hosts it sends from, so "
                     "cannot check that the SPF record covers them"),
        absl::StrCat("set spf_include in [providers.", provider.instance,
                     "] to the domain whose SPF record lists the "
                     "relay's hosts (its operator documents it)"));
  }
  const std::vector<std::string> missing = MissingIncludes(provider, tree);
  const std::string needs = absl::StrJoin(
      *provider.spf_includes, " ",
      [](std::string* out, auto& d) { absl::StrAppend(out, "include:", d); });
  if (!missing.empty()) {
    return Fail(
        "spf.include",
        absl::StrCat(Label(provider), " sends from hosts listed at ",
                     absl::StrJoin(missing, " "), ", which the SPF record of ",
                     sender.from_domain, " lacks"),
        Publish(sender.from_domain, complete));
  }
  return Pass("spf.include",
              absl::StrCat(Label(provider), ": the record reaches ", needs));
}

}  // namespace

std::vector<Finding> CheckSpf(const Sender& sender, const RecordSet& records) {
  const std::string& domain = sender.from_domain;
  const TxtAnswer answer = LookupIn(records)(domain);
  if (answer.failed()) {
    return {Fail("spf", absl::StrCat(domain, ": ", Describe(answer)),
                 LookupFix(domain))};
  }
  const std::vector<std::string> spf = SpfRecords(answer);
  if (spf.empty()) {
    return {
        Fail("spf",
             absl::StrCat("no SPF record at ", domain, " (", Describe(answer),
                          "): receivers cannot tell which hosts may send "
                          "as it"),
             Publish(domain, SuggestedSpf(sender)))};
  }
  if (spf.size() > 1) {
    return {Fail(
        "spf",
        absl::StrCat(spf.size(), " SPF records at ", domain,
                     ": receivers treat that as an error "
                     "(permerror), so SPF fails"),
        absl::StrCat("merge them into one: ", Publish(domain, MergedSpf(spf)),
                     ", and remove the others"))};
  }

  const SpfTree tree = WalkSpf(domain, spf[0], LookupIn(records));
  std::vector<Finding> findings = {
      Pass("spf",
           absl::StrCat("one SPF record at ", domain, ": ", Quoted(spf[0]))),
      SpfAll(domain, spf[0], tree.all), SpfLookups(tree)};
  std::string complete = spf[0];
  std::set<std::string> added;
  for (const Sender::Provider& provider : sender.providers) {
    for (const std::string& include : MissingIncludes(provider, tree)) {
      if (added.insert(include).second) complete = WithTerm(complete, include);
    }
  }
  for (const Sender::Provider& provider : sender.providers) {
    if (provider.spf_includes.has_value() && provider.spf_includes->empty()) {
      continue;  // Its mail never leaves this machine.
    }
    findings.push_back(SpfInclude(sender, provider, tree, complete));
  }
  return findings;
}

}  // namespace authcode::doctor
