// Turns a delivery (purpose, locale, code, caller's values) into a Message
// with a subject, a text/plain part and a text/html part, rendered from
// per-purpose, per-locale Mustache templates.
//
// Templates come built in (server/mail/templates/, embedded at build time)
// and may be overridden file by file from a folder named in the config
// (mail.templates_dir). Both use one layout:
//
//   <locale>/<purpose>.subject   the subject line (trimmed)
//   <locale>/<purpose>.txt       the text/plain part
//   <locale>/<purpose>.html      the text/html part
//
// e.g. de/login.txt. A purpose in a locale needs all three files, counting
// built-in and override files together; an override file replaces the
// built-in file of the same name or adds a new one. Hidden files are
// skipped; any other file is an error. Built in: purposes signup, login,
// password_reset and the generic "default", in en, de and fr.
//
// Template values: {{code}}, {{expires_in_minutes}} (rounded up),
// {{recipient}}, {{purpose}} and the caller's values, e.g. {{app_name}};
// a missing value renders as nothing, so wrap optional ones in a section:
// {{#app_name}} for {{app_name}}{{/app_name}}. Partials and delimiter
// changes are refused, so a caller's value is never read as a template.
//
// Lookup for purpose P and locale L ("de-CH"): P in L, P in L's language
// ("de"), P in the default locale (then its language), then the generic
// "default" purpose in the same locales. Locales match case-insensitively
// and '_' counts as '-'. All templates are parsed once at start-up, so a
// broken template fails Create(), not a send.
//
// Every value is HTML-escaped in the HTML part, whatever tag renders it;
// the subject and the text part get values verbatim. The rendered subject
// must hold no CR, LF or other control character; a template that makes
// one is an error.
//
// Thread safety: a Composer is immutable after Create(); Compose() may be
// called from any number of threads.
#ifndef AUTHCODE_SERVER_MAIL_COMPOSER_H_
#define AUTHCODE_SERVER_MAIL_COMPOSER_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "providers/provider.h"
#include "server/config.h"

namespace authcode {

struct MailRequest {
  std::string purpose;
  std::string locale;  // May be empty: the default locale.
  std::string recipient;
  std::string code;
  absl::Duration expires_in;
  // The caller's template values. Their keys never clash with the built-in
  // names (code, expires_in_minutes, recipient, purpose): the request
  // validator refuses those.
  std::map<std::string, std::string> values;
};

class Composer {
 public:
  // Loads and parses every template. Fails naming the template file and
  // the problem.
  static absl::StatusOr<std::unique_ptr<Composer>> Create(
      const Config::Mail& config);

  virtual ~Composer() = default;

  // Renders the mail for `request`. The Message has no delivery_id: the
  // caller sets it.
  absl::StatusOr<providers::Message> Compose(const MailRequest& request) const;

 protected:
  Composer() = default;

 private:
  struct Templates;  // Every parsed template; defined in composer.cc.
  std::shared_ptr<const Templates> templates_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_MAIL_COMPOSER_H_
