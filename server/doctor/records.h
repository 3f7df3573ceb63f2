// DNS TXT answers as the sender doctor sees them, and the tag lists that
// DKIM and DMARC records are written in.
//
// A TxtAnswer says what one TXT lookup found: records, a name without TXT
// records (no data), a name that does not exist (NXDOMAIN), a timeout, or
// another failure. The doctor looks every name up once into a RecordSet;
// the checks (checks.h) read only that, so they are pure and testable on
// hand-written record sets.
//
// Thread safety: plain values.
#ifndef AUTHCODE_SERVER_DOCTOR_RECORDS_H_
#define AUTHCODE_SERVER_DOCTOR_RECORDS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace authcode::doctor {

struct TxtAnswer {
  enum class Kind { kRecords, kNoData, kNxDomain, kTimeout, kError };

  static TxtAnswer Records(std::vector<std::string> records) {
    return {Kind::kRecords, std::move(records), {}};
  }
  static TxtAnswer NoData() { return {Kind::kNoData, {}, {}}; }
  static TxtAnswer NxDomain() { return {Kind::kNxDomain, {}, {}}; }
  static TxtAnswer Timeout() { return {Kind::kTimeout, {}, {}}; }
  static TxtAnswer Error(std::string error) {
    return {Kind::kError, {}, std::move(error)};
  }

  // Whether the name has no TXT records: it exists without them, or it
  // does not exist. Either way there is nothing to read.
  bool empty() const {
    return kind == Kind::kNoData || kind == Kind::kNxDomain ||
           (kind == Kind::kRecords && records.empty());
  }
  // Whether the lookup itself failed, so nothing is known of the name.
  bool failed() const { return kind == Kind::kTimeout || kind == Kind::kError; }

  Kind kind;
  // One entry per TXT record, its character-strings joined (a record over
  // 255 characters arrives as several strings).
  std::vector<std::string> records;
  // What went wrong, for kError; e.g. "the server failed (SERVFAIL)".
  std::string error;
};

// "no TXT records", "does not exist (NXDOMAIN)", "timed out", the error,
// or "N TXT records".
std::string Describe(const TxtAnswer& answer);

// Looks up the TXT records of a name (lower case, no final dot).
using TxtLookup = std::function<TxtAnswer(const std::string& name)>;

// Answers by name (lower case, no final dot).
using RecordSet = std::map<std::string, TxtAnswer>;

// A lookup that reads `records`; a name not in it is an error ("not
// looked up"), never a silent "no records". `records` must outlive it.
TxtLookup LookupIn(const RecordSet& records);

// A tag=value list (RFC 6376 3.2), as DKIM key records and DMARC records
// are written: tags in order, names and values with surrounding
// whitespace removed. nullopt when a non-empty element has no '=' or an
// empty name, or a name appears twice.
using TagList = std::vector<std::pair<std::string, std::string>>;
std::optional<TagList> ParseTagList(absl::string_view text);

// The value of `name` in `tags`, or nullopt.
std::optional<std::string> TagValue(const TagList& tags,
                                    absl::string_view name);

// `name` lower-cased, without a final dot.
std::string NormalizeName(absl::string_view name);

}  // namespace authcode::doctor

#endif  // AUTHCODE_SERVER_DOCTOR_RECORDS_H_
