#include "server/doctor/records.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace authcode::doctor {

std::string Describe(const TxtAnswer& answer) {
  switch (answer.kind) {
    case TxtAnswer::Kind::kRecords:
      if (answer.records.empty()) return "no TXT records";
      return absl::StrCat(answer.records.size(), " TXT record",
                          answer.records.size() == 1 ? "" : "s");
    case TxtAnswer::Kind::kNoData:
      return "no TXT records";
    case TxtAnswer::Kind::kNxDomain:
      return "does not exist (NXDOMAIN)";
    case TxtAnswer::Kind::kTimeout:
      return "the lookup timed out";
    case TxtAnswer::Kind::kError:
      return absl::StrCat("the lookup failed: ", answer.error);
  }
  return "unknown";
}

TxtLookup LookupIn(const RecordSet& records) {
  return [&records](const std::string& name) {
    const auto it = records.find(NormalizeName(name));
    if (it == records.end()) return TxtAnswer::Error("not looked up");
    return it->second;
  };
}

std::optional<TagList> ParseTagList(absl::string_view text) {
  TagList tags;
  for (absl::string_view element : absl::StrSplit(text, ';')) {
    element = absl::StripAsciiWhitespace(element);
    if (element.empty()) continue;  // A final ';' is allowed.

    const size_t equals = element.find('=');
    if (equals == absl::string_view::npos) return std::nullopt;
    const std::string name(
        absl::StripAsciiWhitespace(element.substr(0, equals)));
    if (name.empty() || TagValue(tags, name).has_value()) return std::nullopt;
    tags.emplace_back(
        name,
        std::string(absl::StripAsciiWhitespace(element.substr(equals + 1))));
  }
  return tags;
}

std::optional<std::string> TagValue(const TagList& tags,
                                    absl::string_view name) {
  for (const auto& [tag, value] : tags) {
    if (tag == name) return value;
  }
  return std::nullopt;
}

std::string NormalizeName(absl::string_view name) {
  return absl::AsciiStrToLower(absl::StripSuffix(name, "."));
}

}  // namespace authcode::doctor
