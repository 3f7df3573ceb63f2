#include "server/address.h"

#include <idn2.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "server/status_macros.h"

namespace authcode {
namespace {

// Longer input cannot be an address: no character takes more than four
// octets of UTF-8, and each one becomes at least one octet on the wire
// (the few that TR46 drops are not worth a longer input).
constexpr size_t kMaxInputOctets = 4 * kMaxAddressOctets;

// IDNA2008 as browsers and mail clients do it: UTS #46 non-transitional
// mapping ("ß" stays "ß", upper case and full-width forms map down), input
// normalised to NFC first.
constexpr int kIdnaFlags = IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL;

// Characters that only a display name, a quoted string, a comment, a
// group or a list of addresses would bring (RFC 5322's specials but '@'
// and '.', and space).
constexpr absl::string_view kNotInABareAddress = " \"(),:;<>[\\]";

// The label separators that UTS #46 maps to '.': the ideographic, the
// full-width and the half-width ideographic full stop.
constexpr absl::string_view kUnicodeDots[] = {"\xE3\x80\x82", "\xEF\xBC\x8E",
                                              "\xEF\xBD\xA1"};

absl::Status Refuse(absl::string_view why) {
  return absl::InvalidArgumentError(why);
}

// A short, printable rendering of untrusted text for an error message.
std::string Quote(absl::string_view s) {
  constexpr size_t kShown = 40;
  std::string shown = absl::CHexEscape(s.substr(0, kShown));
  if (s.size() > kShown) absl::StrAppend(&shown, "...");
  return absl::StrCat("\"", shown, "\"");
}

bool IsAscii(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x80;
  });
}

bool IsAtext(char c) {
  return absl::ascii_isalnum(c) ||
         absl::string_view("!#$%&'*+/=?^_`{|}~-").find(c) !=
             absl::string_view::npos;
}

bool IsAllDigits(absl::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isdigit(c); });
}

bool HasALabelPrefix(absl::string_view label) {
  return absl::StartsWithIgnoreCase(label, "xn--");
}

// Frees what libidn2 allocated.
struct Idn2Deleter {
  void operator()(void* p) const { idn2_free(p); }
};

// ---------------------------------------------------------------------------
// The address as a whole.

absl::Status CheckWhole(absl::string_view input) {
  if (input.empty()) return Refuse("required");
  if (input.size() > kMaxInputOctets) {
    return Refuse(absl::StrCat("is longer than ", kMaxAddressOctets,
                               " octets; got ", input.size()));
  }
  if (std::any_of(input.begin(), input.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    return Refuse("may not hold control characters (CR, LF, NUL, tab, ...)");
  }
  const size_t at = input.rfind('@');
  if (at != absl::string_view::npos && at + 1 < input.size() &&
      input[at + 1] == '[') {
    return Refuse(
        "IP address literals such as [192.0.2.1] are not accepted; use a "
        "domain name");
  }
  if (input.find_first_of(kNotInABareAddress) != absl::string_view::npos) {
    return Refuse(
        "must be a bare address such as ada@example.com: no display name, "
        "angle brackets, quotes, comments, spaces or lists of addresses");
  }
  if (at == absl::string_view::npos) {
    return Refuse("must contain '@' between the local part and the domain");
  }
  if (input.find('@') != at) {
    return Refuse("must contain exactly one '@'");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The local part: an ASCII dot-atom.

absl::Status CheckLocalPart(absl::string_view local) {
  if (local.empty()) return Refuse("the local part (before '@') is empty");
  if (!IsAscii(local)) {
    return Refuse(
        "the local part must be ASCII: internationalized mailboxes "
        "(SMTPUTF8) are not supported");
  }
  if (local.size() > kMaxLocalPartOctets) {
    return Refuse(absl::StrCat("the local part is longer than ",
                               kMaxLocalPartOctets, " octets; got ",
                               local.size()));
  }
  if (local.front() == '.' || local.back() == '.' ||
      local.find("..") != absl::string_view::npos) {
    return Refuse("the local part may not start or end with '.' or hold '..'");
  }
  for (char c : local) {
    if (!IsAtext(c) && c != '.') {
      return Refuse(absl::StrCat("the local part may not hold ",
                                 Quote(absl::string_view(&c, 1))));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Domain labels.

// Why libidn2 refused `label`, in our words: its own texts are translated
// by the process's locale.
std::string IdnaError(int rc, absl::string_view label) {
  const std::string subject = absl::StrCat("the domain label ", Quote(label));
  switch (rc) {
    case IDN2_ENCODING_ERROR:
      return "the domain is not valid UTF-8";
    case IDN2_TOO_BIG_LABEL:
    case IDN2_TOO_BIG_DOMAIN:
    case IDN2_PUNYCODE_BIG_OUTPUT:  // The A-label does not fit in 63.
      return absl::StrCat(subject, " is longer than ", kMaxLabelOctets,
                          " octets in its ASCII (xn--) form");
    case IDN2_PUNYCODE_BAD_INPUT:
    case IDN2_PUNYCODE_OVERFLOW:
    case IDN2_INVALID_ALABEL:
    case IDN2_UALABEL_MISMATCH:
    case IDN2_ALABEL_ROUNDTRIP_FAILED:
      return absl::StrCat(subject, " is not a valid A-label (xn--)");
    case IDN2_2HYPHEN:
      return absl::StrCat(subject,
                          " has '--' in its third and fourth places, which "
                          "only xn-- labels may");
    case IDN2_HYPHEN_STARTEND:
      return absl::StrCat(subject, " starts or ends with '-'");
    case IDN2_LEADING_COMBINING:
      return absl::StrCat(subject, " starts with a combining mark");
    case IDN2_BIDI:
      return absl::StrCat(subject,
                          " mixes right-to-left and left-to-right text in a "
                          "way IDNA2008 does not allow");
    case IDN2_CONTEXTJ:
    case IDN2_CONTEXTJ_NO_RULE:
    case IDN2_CONTEXTO:
    case IDN2_CONTEXTO_NO_RULE:
      return absl::StrCat(subject,
                          " holds a joiner or other character where "
                          "IDNA2008 does not allow it");
    default:  // DISALLOWED, UNASSIGNED, INVALID_NONTRANSITIONAL, ...
      return absl::StrCat(subject,
                          " holds a character that IDNA2008 does not allow "
                          "in domain names (",
                          idn2_strerror_name(rc), ")");
  }
}

// The A-label (or plain ASCII label, for full-width letters and the like)
// of a non-ASCII label. `label` holds no NUL: CheckWhole() saw to that.
absl::StatusOr<std::string> ToAscii(absl::string_view label) {
  const std::string text(label);
  char* out = nullptr;
  const int rc = idn2_to_ascii_8z(text.c_str(), &out, kIdnaFlags);
  const std::unique_ptr<char, Idn2Deleter> owned(out);
  if (rc != IDN2_OK) return Refuse(IdnaError(rc, label));
  return std::string(out);
}

// Scripts, as bits of a set.
constexpr unsigned kLatin = 1;
constexpr unsigned kGreek = 2;
constexpr unsigned kCyrillic = 4;

// The script of a letter among the three whose letters pass for each
// other, or 0 for anything else (digits, marks, other scripts).
unsigned ScriptOf(uint32_t c) {
  const auto in = [c](uint32_t first, uint32_t last) {
    return c >= first && c <= last;
  };
  if (in('a', 'z') || in('A', 'Z') || in(0xC0, 0x24F) || in(0x250, 0x2AF) ||
      in(0x1E00, 0x1EFF) || in(0x2C60, 0x2C7F) || in(0xA720, 0xA7FF) ||
      in(0xAB30, 0xAB6F)) {
    return c == 0xD7 || c == 0xF7 ? 0u : kLatin;
  }
  if (in(0x370, 0x3FF) || in(0x1F00, 0x1FFF)) return kGreek;
  if (in(0x400, 0x52F) || in(0x1C80, 0x1C8F) || in(0x2DE0, 0x2DFF) ||
      in(0xA640, 0xA69F)) {
    return kCyrillic;
  }
  return 0;
}

// Refuses an A-label whose letters come from more than one of Latin,
// Greek and Cyrillic: registries forbid such labels, and they exist to
// look like another domain ("exаmple" with a Cyrillic "а").
absl::Status CheckScripts(absl::string_view alabel) {
  const std::string text(alabel);
  uint32_t* decoded = nullptr;
  const int rc = idn2_to_unicode_8z4z(text.c_str(), &decoded, 0);
  const std::unique_ptr<uint32_t, Idn2Deleter> owned(decoded);
  if (rc != IDN2_OK) return Refuse(IdnaError(rc, alabel));

  unsigned seen = 0;
  for (const uint32_t* c = decoded; *c != 0; ++c) seen |= ScriptOf(*c);
  if (seen == kLatin || seen == kGreek || seen == kCyrillic || seen == 0) {
    return absl::OkStatus();
  }
  std::vector<absl::string_view> names;
  if (seen & kLatin) names.push_back("Latin");
  if (seen & kGreek) names.push_back("Greek");
  if (seen & kCyrillic) names.push_back("Cyrillic");
  return Refuse(absl::StrCat("the domain label ", Quote(alabel), " mixes ",
                             absl::StrJoin(names, " and "),
                             " letters, as look-alike domains do"));
}

// An "xn--" label must be the one A-label of a valid IDNA2008 label, so
// that each domain has exactly one ASCII form.
absl::Status CheckALabel(absl::string_view label) {
  ASSIGN_OR_RETURN(const std::string canonical, ToAscii(label));
  if (canonical != absl::AsciiStrToLower(label)) {
    return Refuse(IdnaError(IDN2_ALABEL_ROUNDTRIP_FAILED, label));
  }
  return CheckScripts(canonical);
}

// Letters, digits and '-' (not first or last), 1-63 octets.
absl::Status CheckLdhLabel(absl::string_view label) {
  if (label.empty()) {
    return Refuse(
        "the domain has an empty label (a '.' at the start or the end, or "
        "two in a row)");
  }
  if (label.size() > kMaxLabelOctets) {
    return Refuse(absl::StrCat("the domain label ", Quote(label),
                               " is longer than ", kMaxLabelOctets,
                               " octets; got ", label.size()));
  }
  for (char c : label) {
    if (!absl::ascii_isalnum(c) && c != '-') {
      return Refuse(absl::StrCat(
          "the domain may hold only letters, digits, '-' and '.'; got ",
          Quote(absl::string_view(&c, 1))));
    }
  }
  if (label.front() == '-' || label.back() == '-') {
    return Refuse(absl::StrCat("the domain label ", Quote(label),
                               " starts or ends with '-'"));
  }
  return absl::OkStatus();
}

// The label as it goes on the wire: as written when ASCII, else its
// A-label.
absl::StatusOr<std::string> WireLabel(absl::string_view label) {
  std::string wire(label);
  if (!IsAscii(label) && !label.empty()) {
    ASSIGN_OR_RETURN(wire, ToAscii(label));
  }
  RETURN_IF_ERROR(CheckLdhLabel(wire));
  if (HasALabelPrefix(wire)) RETURN_IF_ERROR(CheckALabel(wire));
  return wire;
}

// ---------------------------------------------------------------------------
// The domain.

absl::StatusOr<std::string> WireDomain(absl::string_view domain) {
  if (domain.empty()) return Refuse("has no domain after '@'");

  std::string dotted(domain);
  if (!IsAscii(domain)) {
    for (absl::string_view dot : kUnicodeDots) {
      dotted = absl::StrReplaceAll(dotted, {{dot, "."}});
    }
  }
  std::vector<std::string> labels;
  for (absl::string_view label : absl::StrSplit(dotted, '.')) {
    ASSIGN_OR_RETURN(std::string wire, WireLabel(label));
    labels.push_back(std::move(wire));
  }

  const std::string wire = absl::StrJoin(labels, ".");
  if (wire.size() > kMaxDomainOctets) {
    return Refuse(absl::StrCat("the domain is longer than ", kMaxDomainOctets,
                               " octets; got ", wire.size()));
  }
  if (labels.size() < 2) {
    return Refuse(absl::StrCat(
        "the domain must have at least two labels, such as example.com; got ",
        Quote(wire)));
  }
  if (std::all_of(labels.begin(), labels.end(), IsAllDigits)) {
    return Refuse("IP addresses are not accepted; use a domain name");
  }
  if (IsAllDigits(labels.back())) {
    return Refuse("the top-level domain may not be all digits");
  }
  return wire;
}

}  // namespace

absl::StatusOr<Recipient> ParseRecipientAddress(absl::string_view input) {
  RETURN_IF_ERROR(CheckWhole(input));

  const size_t at = input.find('@');
  const absl::string_view local = input.substr(0, at);
  RETURN_IF_ERROR(CheckLocalPart(local));
  ASSIGN_OR_RETURN(const std::string domain, WireDomain(input.substr(at + 1)));

  Recipient recipient;
  recipient.mailbox = absl::StrCat(local, "@", domain);
  if (recipient.mailbox.size() > kMaxAddressOctets) {
    return Refuse(absl::StrCat(
        "is longer than ", kMaxAddressOctets, " octets",
        recipient.mailbox == input ? "" : " in its ASCII (xn--) form", "; got ",
        recipient.mailbox.size()));
  }
  recipient.key = absl::AsciiStrToLower(recipient.mailbox);
  return recipient;
}

absl::StatusOr<std::string> ParseRecipient(absl::string_view input) {
  ASSIGN_OR_RETURN(Recipient recipient, ParseRecipientAddress(input));
  return std::move(recipient.key);
}

}  // namespace authcode
