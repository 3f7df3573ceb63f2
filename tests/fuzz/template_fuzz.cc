// libFuzzer target: template rendering with hostile caller values and, for
// one input in eight (first byte), hostile templates too. The rest of the
// input is split at NUL bytes into caller values (key=value) or, with
// templates, into a subject, a text and an HTML template first. The
// composer must never crash; a subject it returns holds no line break; and
// a caller value with markup in it never reaches the HTML part unescaped.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "server/mail/composer.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

std::vector<std::string> SplitAtNul(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      parts.emplace_back();
    } else {
      parts.back() += static_cast<char>(data[i]);
    }
  }
  return parts;
}

void Write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A folder of override templates, removed when the fuzzer exits.
struct TemplateDir {
  TemplateDir()
      : path("/tmp/authcode-template-fuzz-" + std::to_string(getpid())) {
    std::filesystem::create_directories(path / "en");
  }
  ~TemplateDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  const std::filesystem::path path;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const TemplateDir dir;
  static const auto* builtin =
      authcode::Composer::Create(authcode::Config::Mail()).value().release();
  const bool own_templates = data[0] % 8 == 0;
  const std::vector<std::string> parts = SplitAtNul(data + 1, size - 1);
  auto part = [&](size_t i) { return i < parts.size() ? parts[i] : ""; };

  std::unique_ptr<authcode::Composer> custom;
  size_t first_value = 0;
  if (own_templates) {
    Write(dir.path / "en" / "login.subject", part(0));
    Write(dir.path / "en" / "login.txt", part(1));
    Write(dir.path / "en" / "login.html", part(2));
    authcode::Config::Mail config;
    config.templates_dir = dir.path.string();
    auto created = authcode::Composer::Create(config);
    if (!created.ok()) return 0;  // A broken template is refused at start.
    custom = *std::move(created);
    first_value = 3;
  }
  const authcode::Composer& composer = custom ? *custom : *builtin;

  authcode::MailRequest request;
  request.purpose = "login";
  request.locale = "en";
  request.recipient = "ada@example.com";
  request.code = "123456";
  request.expires_in = absl::Minutes(10);
  for (size_t i = first_value; i < parts.size(); ++i) {
    const size_t equals = parts[i].find('=');
    if (equals == std::string::npos || equals == 0) continue;
    request.values[parts[i].substr(0, equals)] = parts[i].substr(equals + 1);
  }
  request.values["app_name"] = "<script>x</script>";

  absl::StatusOr<authcode::providers::Message> mail = composer.Compose(request);
  if (!mail.ok()) return 0;
  Check(mail->subject.find_first_of("\r\n") == std::string::npos);
  // The caller's value comes out escaped; a template may still hold the
  // same text itself (templates are the operator's, not the caller's).
  if (!own_templates ||
      part(2).find("<script>x</script>") == std::string::npos) {
    Check(mail->html.find("<script>x</script>") == std::string::npos);
  }
  return 0;
}
