// SPF records (RFC 7208) as far as the sender doctor reads them: which TXT
// records are SPF records, their terms, and the tree of records that
// include: and redirect= reach.
//
// Thread safety: pure functions.
#ifndef AUTHCODE_SERVER_DOCTOR_SPF_H_
#define AUTHCODE_SERVER_DOCTOR_SPF_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/doctor/records.h"

namespace authcode::doctor {

// RFC 7208 4.6.4: evaluating a record may take at most this many DNS
// lookups, or it fails (permerror).
inline constexpr int kMaxSpfLookups = 10;

// The records of `answer` that are SPF records: "v=spf1" alone or
// followed by a space, in any case.
std::vector<std::string> SpfRecords(const TxtAnswer& answer);

struct SpfRecord {
  std::vector<std::string> terms;     // After "v=spf1", as written.
  std::vector<std::string> includes;  // include: targets, lower case.
  std::optional<std::string> redirect;
  std::optional<char> all;  // The all mechanism's qualifier: + - ~ ?
  // Terms that cost a DNS lookup: include, a, mx, ptr, exists, redirect.
  int lookups = 0;
};

SpfRecord ParseSpf(const std::string& text);

// Whether `term` is the all mechanism, with or without a qualifier.
bool IsAllTerm(absl::string_view term);

// `record` with `mechanism` added before its all term (or redirect=, or
// exp=), or at its end when it has none of them.
std::string WithTerm(const std::string& record, const std::string& mechanism);

// `record` with its all term replaced by `all` (e.g. "~all"), or `all`
// added as WithTerm() adds a mechanism when it has none.
std::string WithAll(const std::string& record, const std::string& all);

// What a record and every record it reaches hold together.
struct SpfTree {
  int lookups = 0;
  std::set<std::string> includes;  // Every include: target reached.
  // Targets that could not be followed: "include:x.example has no SPF
  // record", "redirect=y.example: the lookup timed out".
  std::vector<std::string> problems;
  // The qualifier of the all term that ends evaluation: the record's own,
  // or that of the record its redirect= names.
  std::optional<char> all;
};

// Walks the SPF record `record` of `domain` and what it reaches through
// `lookup`. Stops following once the lookups exceed kMaxSpfLookups, and
// follows a name only once (a name reached twice counts its own lookups
// once, though receivers count them each time).
SpfTree WalkSpf(const std::string& domain, const std::string& record,
                const TxtLookup& lookup);

}  // namespace authcode::doctor

#endif  // AUTHCODE_SERVER_DOCTOR_SPF_H_
