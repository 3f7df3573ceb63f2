#include "server/doctor/dmarc.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace authcode::doctor {

bool IsDmarcRecord(const std::string& record) {
  std::string first = record.substr(0, record.find(';'));
  first.erase(std::remove_if(first.begin(), first.end(),
                             [](char c) { return absl::ascii_isspace(c); }),
              first.end());
  return first == "v=DMARC1";
}

DmarcSearch FindDmarc(const std::string& from_domain, const TxtLookup& lookup) {
  DmarcSearch search;
  std::string domain = NormalizeName(from_domain);
  // Each turn drops a label, so the loop ends within the name's labels.
  while (true) {
    search.domain = domain;
    search.name = absl::StrCat("_dmarc.", domain);
    const TxtAnswer answer = lookup(search.name);
    if (answer.failed()) {
      search.failure = answer;
      return search;
    }
    for (const std::string& record : answer.records) {
      if (IsDmarcRecord(record)) search.records.push_back(record);
    }
    if (!search.records.empty()) return search;

    const size_t dot = domain.find('.');
    if (dot == std::string::npos ||
        domain.find('.', dot + 1) == std::string::npos) {
      // No parent of two labels or more: none found.
      search.domain = NormalizeName(from_domain);
      search.name = absl::StrCat("_dmarc.", search.domain);
      return search;
    }
    domain = domain.substr(dot + 1);
  }
}

}  // namespace authcode::doctor
