#include "server/doctor/checks.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "server/doctor/check_util.h"
#include "server/doctor/dmarc.h"
#include "server/doctor/spf.h"

namespace authcode::doctor {
namespace {

// The longest character-string a TXT record may hold.
constexpr size_t kMaxTxtString = 255;

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPass:
      return "pass";
    case Verdict::kWarn:
      return "warn";
    case Verdict::kFail:
      return "fail";
  }
  return "fail";
}

std::string QuotedTxt(const std::string& text) {
  std::vector<std::string> strings;
  for (size_t at = 0; at < text.size() || strings.empty();
       at += kMaxTxtString) {
    strings.push_back(Quoted(text.substr(at, kMaxTxtString)));
  }
  return absl::StrJoin(strings, " ");
}

RecordSet Collect(const Sender& sender, const TxtLookup& lookup) {
  RecordSet records;
  const TxtLookup recording = [&](const std::string& name) {
    const std::string key = NormalizeName(name);
    auto it = records.find(key);
    if (it == records.end()) it = records.emplace(key, lookup(key)).first;
    return it->second;
  };

  const std::vector<std::string> spf =
      SpfRecords(recording(sender.from_domain));
  if (spf.size() == 1) WalkSpf(sender.from_domain, spf[0], recording);
  for (const Sender::Provider& provider : sender.providers) {
    if (provider.dkim.has_value()) recording(DkimName(*provider.dkim));
  }
  FindDmarc(sender.from_domain, recording);
  return records;
}

std::vector<Finding> CheckAll(const Sender& sender, const RecordSet& records) {
  std::vector<Finding> findings = CheckSpf(sender, records);
  for (std::vector<Finding> more :
       {CheckDkim(sender, records), CheckDmarc(sender, records)}) {
    findings.insert(findings.end(), more.begin(), more.end());
  }
  return findings;
}

}  // namespace authcode::doctor
