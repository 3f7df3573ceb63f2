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

namespace authcode::doctor {
namespace {

std::string DkimRecord(const providers::DkimPublicKey& key) {
  return absl::StrCat("v=DKIM1; k=", key.type,
                      "; p=", absl::Base64Escape(key.key));
}

// Why the key record `text` does not publish `key`, or "" when it does.
std::string DkimMismatch(const std::string& text,
                         const providers::DkimPublicKey& key) {
  const std::optional<TagList> tags = ParseTagList(text);
  if (!tags.has_value()) return "it is not a list of tag=value pairs";
  const std::optional<std::string> version = TagValue(*tags, "v");
  if (version.has_value() && *version != "DKIM1") {
    return absl::StrCat("v=", *version, " is not v=DKIM1");
  }
  const std::string type = TagValue(*tags, "k").value_or("rsa");
  if (!absl::EqualsIgnoreCase(type, key.type)) {
    return absl::StrCat("it holds a k=", type,
                        " key, the config a k=", key.type, " one");
  }
  const std::optional<std::string> hashes = TagValue(*tags, "h");
  if (hashes.has_value() && !absl::StrContains(*hashes, "sha256")) {
    return absl::StrCat("h=", *hashes, " does not allow sha256");
  }
  const std::optional<std::string> p = TagValue(*tags, "p");
  if (!p.has_value()) return "it has no p= tag";
  std::string base64 = *p;
  base64.erase(std::remove_if(base64.begin(), base64.end(),
                              [](char c) { return absl::ascii_isspace(c); }),
               base64.end());
  if (base64.empty()) return "p= is empty: the key is revoked";
  std::string published;
  if (!absl::Base64Unescape(base64, &published)) return "p= is not base64";
  if (published != key.key) {
    return "p= is not the public half of the configured private key";
  }
  return "";
}

// Whether the key record `text` says t=y: testing, so receivers may treat
// signed mail as unsigned.
bool DkimTesting(const std::string& text) {
  const std::optional<TagList> tags = ParseTagList(text);
  if (!tags.has_value()) return false;
  const std::optional<std::string> flags = TagValue(*tags, "t");
  if (!flags.has_value()) return false;
  for (absl::string_view flag : absl::StrSplit(*flags, ':')) {
    if (absl::StripAsciiWhitespace(flag) == "y") return true;
  }
  return false;
}

Finding CheckDkimKey(const providers::DkimPublicKey& key,
                     const std::string& users, const RecordSet& records) {
  const std::string name = DkimName(key);
  const std::string fix = Publish(name, DkimRecord(key));
  const TxtAnswer answer = LookupIn(records)(name);
  if (answer.failed()) {
    return Fail("dkim", absl::StrCat(name, ": ", Describe(answer)),
                LookupFix(name));
  }
  if (answer.empty()) {
    return Fail("dkim",
                absl::StrCat("no DKIM key record at ", name, " (",
                             Describe(answer), "), so receivers cannot check ",
                             "the signatures of ", users),
                fix);
  }

  std::vector<std::string> problems;
  for (const std::string& record : answer.records) {
    problems.push_back(DkimMismatch(record, key));
  }
  const auto matching =
      static_cast<size_t>(std::count(problems.begin(), problems.end(), ""));
  if (matching == 0) {
    return Fail("dkim",
                absl::StrCat(name, ": ", absl::StrJoin(problems, "; "),
                             ", so the signatures of ", users, " fail"),
                absl::StrCat(fix, answer.records.size() > 1
                                      ? ", as the only record there"
                                      : ", in place of the one there"));
  }
  if (answer.records.size() > 1) {
    return Warn("dkim",
                absl::StrCat(name, " holds ", answer.records.size(),
                             " records and only ", matching,
                             " match; receivers may pick any"),
                absl::StrCat(fix, ", as the only record there"));
  }
  if (DkimTesting(answer.records[0])) {
    return Warn("dkim",
                absl::StrCat(name, " publishes the configured ", key.type,
                             " key with t=y (testing): receivers may treat ",
                             "signed mail as unsigned"),
                absl::StrCat(fix, ", without t=y"));
  }
  return Pass("dkim", absl::StrCat(name, " publishes the configured ", key.type,
                                   " key of ", users));
}

}  // namespace

std::vector<Finding> CheckDkim(const Sender& sender, const RecordSet& records) {
  // Instances that share a key are checked once, together.
  std::map<std::tuple<std::string, std::string, std::string>,
           std::pair<providers::DkimPublicKey, std::vector<std::string>>>
      keys;
  for (const Sender::Provider& provider : sender.providers) {
    if (!provider.dkim.has_value()) continue;
    auto& entry = keys[{DkimName(*provider.dkim), provider.dkim->type,
                        provider.dkim->key}];
    entry.first = *provider.dkim;
    entry.second.push_back(provider.instance);
  }
  if (keys.empty()) {
    return {
        Warn("dkim", "no provider here signs with a DKIM key from this config",
             absl::StrCat("if your provider signs for you, check in its domain "
                          "setup that it signs as ",
                          sender.from_domain,
                          "; otherwise set dkim_domain, dkim_selector and "
                          "dkim_key_file in the table of a provider that takes "
                          "them"))};
  }
  std::vector<Finding> findings;
  for (const auto& [id, entry] : keys) {
    findings.push_back(
        CheckDkimKey(entry.first, absl::StrJoin(entry.second, ", "), records));
  }
  return findings;
}

}  // namespace authcode::doctor
