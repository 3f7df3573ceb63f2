// The sender doctor's checks: what the From domain publishes in DNS for
// SPF (RFC 7208), DKIM (RFC 6376, RFC 8463) and DMARC (RFC 7489), held
// against what the config says about the mail authcode sends.
//
// Each check is a pure function of a Sender (the From domain and the
// provider instances of the delivery chains) and a RecordSet (records.h);
// Collect() fills that set through a lookup, the real resolver in
// `authcode doctor`, a map in tests. A check yields one or more Findings:
// pass, warn or fail, a one-line finding, and for warn and fail the fix,
// naming the exact record to publish where it can be known.
//
// What is approximated, and what follows from it:
//  - SPF is judged at the From domain. Receivers check SPF at the
//    envelope sender's domain, which API providers often set to one of
//    their own (a bounce domain); there the From domain's record matters
//    for DMARC's SPF alignment only when the envelope domain is the From
//    domain.
//  - DMARC's organizational domain is guessed without the public suffix
//    list: with no record at _dmarc.<From domain>, each parent domain of
//    at least two labels is tried, nearest first; alignment is relaxed
//    alignment as RelaxedAligned (server/provider_set.h) approximates it,
//    so sibling subdomains count as misaligned (a warning too many).
//  - A provider that signs with a key of its own (not one from our
//    config) is not looked at: the doctor cannot know its selector.
//
// Thread safety: pure functions.
#ifndef AUTHCODE_SERVER_DOCTOR_CHECKS_H_
#define AUTHCODE_SERVER_DOCTOR_CHECKS_H_

#include <optional>
#include <string>
#include <vector>

#include "providers/provider.h"
#include "server/doctor/records.h"

namespace authcode::doctor {

// What the config says about the mail authcode sends.
struct Sender {
  // The domain of mail.from_address: ASCII (A-labels), lower case.
  std::string from_domain;

  // A provider instance that a delivery chain names.
  struct Provider {
    std::string instance;  // As the chain names it, e.g. "relay".
    std::string type;      // Its registered type, e.g. "smtp".
    // Provider::SpfIncludes(): the domains the From domain's SPF record
    // must include; nullopt when the provider cannot tell.
    std::optional<std::vector<std::string>> spf_includes;
    // Provider::DkimKey(): the key from our config it signs with.
    std::optional<providers::DkimPublicKey> dkim;
    // Provider::IdentityDomains(): domains it signs or logs in as.
    std::vector<std::string> identity_domains;
  };
  std::vector<Provider> providers;
};

enum class Verdict { kPass, kWarn, kFail };

// "pass", "warn" or "fail".
const char* VerdictName(Verdict verdict);

struct Finding {
  // Which check, e.g. "spf", "spf.include", "dkim", "dmarc.alignment".
  std::string check;
  Verdict verdict;
  std::string finding;  // One line.
  std::string fix;      // Empty for a pass.
};

// Looks up, through `lookup`, every name the checks read: the From
// domain's SPF record and the records its include: and redirect= terms
// reach (as many as SPF allows), each DKIM key's record, and the DMARC
// record at the From domain or its nearest parent that has one.
RecordSet Collect(const Sender& sender, const TxtLookup& lookup);

// The SPF record at the From domain: present and single ("spf"), its
// all term ("spf.all"), the DNS lookups it takes ("spf.lookups"), and per
// provider whether it includes what the provider needs ("spf.include").
std::vector<Finding> CheckSpf(const Sender& sender, const RecordSet& records);

// Per distinct DKIM key of the providers, whether its record exists and
// publishes the configured key ("dkim"); a warning when no provider signs
// with a key from our config.
std::vector<Finding> CheckDkim(const Sender& sender, const RecordSet& records);

// The DMARC record ("dmarc"), its policy ("dmarc.policy"), and whether the
// From domain aligns with every domain the providers sign or log in as
// ("dmarc.alignment").
std::vector<Finding> CheckDmarc(const Sender& sender, const RecordSet& records);

// All of the above, in that order.
std::vector<Finding> CheckAll(const Sender& sender, const RecordSet& records);

// The record `text` as a zone file writes it: quoted strings of at most
// 255 characters each, separated by spaces (a TXT record's strings are
// limited to 255 octets, and a longer record is split into several).
std::string QuotedTxt(const std::string& text);

}  // namespace authcode::doctor

#endif  // AUTHCODE_SERVER_DOCTOR_CHECKS_H_
