// DMARC records (RFC 7489) as far as the sender doctor reads them: where
// the record of a From domain is found, and its tags.
//
// Thread safety: pure functions.
#ifndef AUTHCODE_SERVER_DOCTOR_DMARC_H_
#define AUTHCODE_SERVER_DOCTOR_DMARC_H_

#include <optional>
#include <string>
#include <vector>

#include "server/doctor/records.h"

namespace authcode::doctor {

// Whether `record` is a DMARC record: its first tag is v=DMARC1.
bool IsDmarcRecord(const std::string& record);

// Where the DMARC record of a From domain was looked for, and found.
struct DmarcSearch {
  // _dmarc.<domain> where the records were found or a lookup failed;
  // the From domain's when none was found.
  std::string name;
  std::string domain;  // That name without "_dmarc.".
  // The DMARC records at `name`; empty when none was found.
  std::vector<std::string> records;
  // Set when a lookup failed (the search stops there).
  std::optional<TxtAnswer> failure;
};

// Looks for the DMARC record of `from_domain`: at _dmarc.<from_domain>,
// then, as the organizational domain's, at _dmarc.<parent> for each
// parent of at least two labels, nearest first. Without the public suffix
// list the organizational domain is not known; this finds it whenever it
// has a record, and may ask a public suffix's name (co.uk) in vain.
DmarcSearch FindDmarc(const std::string& from_domain, const TxtLookup& lookup);

}  // namespace authcode::doctor

#endif  // AUTHCODE_SERVER_DOCTOR_DMARC_H_
