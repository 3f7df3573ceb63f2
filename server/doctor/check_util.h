// Pieces the sender doctor's check files share: making findings, and the
// names and texts they all use. Internal to server/doctor/.
//
// Thread safety: pure functions.
#ifndef AUTHCODE_SERVER_DOCTOR_CHECK_UTIL_H_
#define AUTHCODE_SERVER_DOCTOR_CHECK_UTIL_H_

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "providers/provider.h"
#include "server/doctor/checks.h"
#include "server/doctor/records.h"

namespace authcode::doctor {

inline Finding Pass(std::string check, std::string finding) {
  return {std::move(check), Verdict::kPass, std::move(finding), ""};
}
inline Finding Warn(std::string check, std::string finding, std::string fix) {
  return {std::move(check), Verdict::kWarn, std::move(finding), std::move(fix)};
}
inline Finding Fail(std::string check, std::string finding, std::string fix) {
  return {std::move(check), Verdict::kFail, std::move(finding), std::move(fix)};
}

// The fix for a lookup that failed: the records may be fine.
inline std::string LookupFix(const std::string& name) {
  return absl::StrCat(
      "make sure the resolver (--resolver, or doctor.resolver in the config) "
      "answers, and that the name servers of ",
      name, " do; then run the doctor again");
}

inline std::string Publish(const std::string& name, const std::string& record) {
  return absl::StrCat("publish TXT ", name, " ", QuotedTxt(record));
}

inline std::string Quoted(const std::string& text) {
  return absl::StrCat("\"", text, "\"");
}

// "relay (smtp)", or "ses" for an instance named after its type.
inline std::string Label(const Sender::Provider& provider) {
  if (provider.instance == provider.type) return provider.instance;
  return absl::StrCat(provider.instance, " (", provider.type, ")");
}

// <selector>._domainkey.<domain>, where a DKIM key is published.
inline std::string DkimName(const providers::DkimPublicKey& key) {
  return absl::StrCat(NormalizeName(key.selector), "._domainkey.",
                      NormalizeName(key.domain));
}

}  // namespace authcode::doctor

#endif  // AUTHCODE_SERVER_DOCTOR_CHECK_UTIL_H_
