#include "server/doctor/spf.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace authcode::doctor {
namespace {

// The mechanism of `term` without its qualifier, lower case.
std::string Mechanism(absl::string_view term) {
  if (!term.empty() &&
      absl::string_view("+-~?").find(term[0]) != absl::string_view::npos) {
    term.remove_prefix(1);
  }
  return absl::AsciiStrToLower(term);
}

// Whether `mechanism` is `name` alone or with an argument (":x", "/24").
bool IsMechanism(const std::string& mechanism, absl::string_view name) {
  return mechanism == name ||
         absl::StartsWith(mechanism, absl::StrCat(name, ":")) ||
         absl::StartsWith(mechanism, absl::StrCat(name, "/"));
}

// Whether `term` ends the mechanisms that matter: all, or a modifier
// that comes after them.
bool IsTail(absl::string_view term) {
  const std::string lower = absl::AsciiStrToLower(term);
  return Mechanism(term) == "all" || absl::StartsWith(lower, "redirect=") ||
         absl::StartsWith(lower, "exp=");
}

std::vector<std::string> Terms(const std::string& record) {
  std::vector<std::string> terms =
      absl::StrSplit(record, ' ', absl::SkipEmpty());
  if (!terms.empty()) terms.erase(terms.begin());  // "v=spf1"
  return terms;
}

class Walk {
 public:
  explicit Walk(const TxtLookup& lookup) : lookup_(lookup) {}

  // Reads the SPF record `text` of `domain` and what it reaches; returns
  // the qualifier of the all term that ends it.
  std::optional<char> Record(const std::string& domain,
                             const std::string& text) {
    visited_[domain] = std::nullopt;  // Until known; a loop ends here.
    const SpfRecord record = ParseSpf(text);
    tree_.lookups += record.lookups;
    for (const std::string& include : record.includes) {
      tree_.includes.insert(NormalizeName(include));
    }
    for (const std::string& include : record.includes) {
      Follow("include:", include);
    }
    std::optional<char> all = record.all;
    if (!all.has_value() && record.redirect.has_value()) {
      all = Follow("redirect=", *record.redirect);
    }
    visited_[domain] = all;
    return all;
  }

  SpfTree Take() && { return std::move(tree_); }

 private:
  std::optional<char> Follow(const char* how, const std::string& target) {
    const std::string domain = NormalizeName(target);
    if (const auto seen = visited_.find(domain); seen != visited_.end()) {
      return seen->second;
    }
    if (tree_.lookups > kMaxSpfLookups) return std::nullopt;
    visited_[domain] = std::nullopt;
    const TxtAnswer answer = lookup_(domain);
    if (answer.failed()) {
      tree_.problems.push_back(
          absl::StrCat(how, domain, ": ", Describe(answer)));
      return std::nullopt;
    }
    const std::vector<std::string> records = SpfRecords(answer);
    if (records.size() != 1) {
      tree_.problems.push_back(
          records.empty() ? absl::StrCat(how, domain, " has no SPF record")
                          : absl::StrCat(how, domain, " has ", records.size(),
                                         " SPF records"));
      return std::nullopt;
    }
    return Record(domain, records[0]);
  }

  const TxtLookup& lookup_;
  // Names followed, with the all qualifier that ends each one's record.
  std::map<std::string, std::optional<char>> visited_;
  SpfTree tree_;
};

}  // namespace

std::vector<std::string> SpfRecords(const TxtAnswer& answer) {
  std::vector<std::string> spf;
  if (answer.kind != TxtAnswer::Kind::kRecords) return spf;
  for (const std::string& record : answer.records) {
    const std::string lower = absl::AsciiStrToLower(record);
    if (lower == "v=spf1" || absl::StartsWith(lower, "v=spf1 ")) {
      spf.push_back(record);
    }
  }
  return spf;
}

bool IsAllTerm(absl::string_view term) { return Mechanism(term) == "all"; }

SpfRecord ParseSpf(const std::string& text) {
  SpfRecord record;
  record.terms = Terms(text);
  for (const std::string& term : record.terms) {
    const std::string mechanism = Mechanism(term);
    const std::string lower = absl::AsciiStrToLower(term);
    if (absl::StartsWith(lower, "redirect=")) {
      record.redirect = lower.substr(9);
      ++record.lookups;
    } else if (mechanism == "all") {
      record.all = mechanism.size() == term.size() ? '+' : term[0];
    } else if (absl::StartsWith(mechanism, "include:")) {
      record.includes.push_back(mechanism.substr(8));
      ++record.lookups;
    } else if (IsMechanism(mechanism, "a") || IsMechanism(mechanism, "mx") ||
               IsMechanism(mechanism, "ptr") ||
               absl::StartsWith(mechanism, "exists:")) {
      ++record.lookups;
    }
  }
  return record;
}

std::string WithTerm(const std::string& record, const std::string& mechanism) {
  std::vector<std::string> terms = Terms(record);
  const auto tail = std::find_if(terms.begin(), terms.end(), IsTail);
  terms.insert(tail, mechanism);
  return absl::StrCat("v=spf1 ", absl::StrJoin(terms, " "));
}

std::string WithAll(const std::string& record, const std::string& all) {
  std::vector<std::string> terms = Terms(record);
  const auto old = std::find_if(terms.begin(), terms.end(), [](auto& term) {
    return Mechanism(term) == "all";
  });
  if (old == terms.end()) return WithTerm(record, all);
  *old = all;
  return absl::StrCat("v=spf1 ", absl::StrJoin(terms, " "));
}

SpfTree WalkSpf(const std::string& domain, const std::string& record,
                const TxtLookup& lookup) {
  Walk walk(lookup);
  const std::optional<char> all = walk.Record(NormalizeName(domain), record);
  SpfTree tree = std::move(walk).Take();
  tree.all = all;
  return tree;
}

}  // namespace authcode::doctor
