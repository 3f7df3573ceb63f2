// The recipient address parser: the one place that decides whether a
// string is an address authcode will mail a code to, and under which key
// codes and limits for it are stored.
//
// What is accepted is a deliberately narrow subset of RFC 5321:
//
//   - a bare address, local-part "@" domain: no display name ("Ada <...>"),
//     no angle brackets, quotes, comments, spaces or lists of addresses;
//   - no control characters at all (CR, LF, NUL, tab, DEL, ...);
//   - the local part a dot-atom of ASCII atext (letters, digits and
//     !#$%&'*+-/=?^_`{|}~, dots only between them), at most 64 octets.
//     Quoted local parts and non-ASCII (SMTPUTF8) mailboxes are refused;
//   - the domain a host name of at least two labels, each 1-63 octets of
//     letters, digits and '-' (not first or last), the last one not all
//     digits, at most 255 octets; no IP address, bracketed or bare;
//   - at most 254 octets in all, counted in the form that goes on the wire.
//
// Internationalized domains are converted with libidn2 (IDNA2008 with
// Unicode TR46 non-transitional mapping and NFC): "bücher.example",
// "BÜCHER.example" and "xn--bcher-kva.example" are the same domain, always
// mailed and keyed in its ASCII (A-label) form. An "xn--" label must be
// the exact A-label of a valid IDNA2008 label. Look-alikes are handled by
// IDNA2008's rules, plus one of our own: a label that mixes Latin, Greek
// and Cyrillic letters (a Cyrillic "а" in "example") is refused. A label
// written entirely in one script that looks like another ("аpple" in
// Cyrillic) is a different, valid domain: it gets its own key, so it can
// never share codes or limits with the domain it imitates.
//
// Error messages describe the address without naming a request field
// (callers add "recipient: "), quote at most a short, escaped piece of the
// input, and never hold a raw CR, LF or NUL, so they are safe to log.
//
// Thread safety: every function here is pure and may be called from any
// thread.
#ifndef AUTHCODE_SERVER_ADDRESS_H_
#define AUTHCODE_SERVER_ADDRESS_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace authcode {

// RFC 5321's limits, section 4.5.3.1, as octets of the ASCII form.
inline constexpr size_t kMaxAddressOctets = 254;
inline constexpr size_t kMaxLocalPartOctets = 64;
inline constexpr size_t kMaxDomainOctets = 255;
inline constexpr size_t kMaxLabelOctets = 63;

// A recipient accepted by ParseRecipientAddress().
struct Recipient {
  // Where the mail goes, ASCII only: the local part as written, then the
  // domain as written when it was ASCII, else in its A-label form.
  std::string mailbox;
  // What codes and limits are keyed on: `mailbox` with its ASCII letters
  // lower-cased, so "Ada@Example.COM", "ada@example.com" and
  // "ada@EXAMPLE.com" are one recipient.
  std::string key;
};

// Parses `input` as the recipient of a code. Returns the recipient, or
// InvalidArgument saying why the address is refused (the first problem
// found, e.g. "the local part is longer than 64 octets; got 65").
absl::StatusOr<Recipient> ParseRecipientAddress(absl::string_view input);

// The same parse, returning only the normalised address (Recipient::key).
absl::StatusOr<std::string> ParseRecipient(absl::string_view input);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_ADDRESS_H_
