// Files compiled into the binary (migrations, default templates), generated
// at build time by authcode_embed() in the top CMakeLists.txt.
#ifndef AUTHCODE_SERVER_EMBEDDED_H_
#define AUTHCODE_SERVER_EMBEDDED_H_

#include <string_view>
#include <vector>

namespace authcode {

struct EmbeddedFile {
  std::string_view path;  // Relative to the folder it was embedded from.
  std::string_view contents;
};

// migrations/*.sql, sorted by name.
const std::vector<EmbeddedFile>& EmbeddedMigrations();
// server/mail/templates/**, the built-in mail templates.
const std::vector<EmbeddedFile>& EmbeddedTemplates();

}  // namespace authcode

#endif  // AUTHCODE_SERVER_EMBEDDED_H_
