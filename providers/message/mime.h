// The wire form of a Message: RFC 5322 headers and a MIME
// multipart/alternative body (text/plain first, then text/html), in UTF-8,
// with CRLF line ends, for providers that send raw mail (SMTP, SES raw,
// Maildir).
//
// Header injection is impossible rather than filtered: every header value
// is checked for CR, LF and other control characters and the build fails
// (naming the header) instead of writing one; non-ASCII subjects and
// display names become RFC 2047 encoded words; no line exceeds 998 octets
// (bodies are quoted-printable or base64, so their lines stay within 76).
//
// Headers: From, To, Subject, Date (UTC), Message-ID, MIME-Version, the
// Message's extra headers in order, then Content-Type. Plain ASCII values
// are folded at spaces to lines of 78 where the words allow. Extra header
// values that are not ASCII become encoded words too; ASCII ones are
// written as they are, as they may be structured (List-Unsubscribe).
// Addresses may hold UTF-8 (see NeedsSmtpUtf8) and are written as is.
//
// Bodies: quoted-printable (RFC 2045 6.7) turns every line break of the
// input (CRLF, bare LF or bare CR) into CRLF, as MIME's canonical form of
// text and SMTP require, so a decoded part holds CRLF line breaks. Base64
// encodes the body byte for byte, without that normalisation, so a decoded
// part equals the input exactly (Maildir relies on this). The SMTP client,
// not the builder, dot-stuffs.
//
// Thread safety: the functions are pure (BuildMime draws randomness for
// the boundary and Message-ID from OpenSSL, which is thread-safe).
#ifndef AUTHCODE_PROVIDERS_MESSAGE_MIME_H_
#define AUTHCODE_PROVIDERS_MESSAGE_MIME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "providers/provider.h"

namespace authcode::providers {

struct MimeOptions {
  enum class Encoding { kQuotedPrintable, kBase64 };
  Encoding encoding = Encoding::kQuotedPrintable;
  // The Date header's time.
  absl::Time date = absl::Now();
  // The right-hand side of the Message-ID; empty means the domain of the
  // From address, so the id is "on the sending domain".
  std::string message_id_domain;
  // Fixed multipart boundary and Message-ID local part, for tests; empty
  // means random.
  std::string boundary;
  std::string message_id_local;
};

struct MimeMessage {
  std::string data;        // The whole message, CRLF line ends.
  std::string message_id;  // Without angle brackets: "local@domain".
};

// InvalidArgument naming the field when a header value holds CR, LF or a
// control character other than HTAB, or is not valid UTF-8; an address is
// malformed (not local@domain with dot-atom parts, or over 254 octets); an
// extra header's name is not a valid field name (or is over 76 characters)
// or clashes with one the builder writes; an ASCII extra header value has
// a word too long for a line of 998; or a fixed boundary or Message-ID
// part in the options is invalid (or the From domain is not ASCII and no
// message_id_domain is given). Nothing is built then.
absl::StatusOr<MimeMessage> BuildMime(const Message& message,
                                      const MimeOptions& options = {});

// The checks BuildMime makes of the message's addresses, subject, display
// name and extra headers, for providers that hand the parts to an API
// rather than sending MIME themselves. Same errors as BuildMime.
absl::Status CheckMessage(const Message& message);

// "name <address>" on one line, the name written as in the From header
// (as is, quoted, or RFC 2047 encoded words); the bare address when the
// name is empty. For APIs that take a mailbox as one string.
std::string FormatMailbox(absl::string_view name, absl::string_view address);

// True when an address needs SMTPUTF8 (non-ASCII in it).
bool NeedsSmtpUtf8(absl::string_view address);

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_MESSAGE_MIME_H_
