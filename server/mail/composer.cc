#include "server/mail/composer.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <kainjow/mustache.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/embedded.h"
#include "server/status_macros.h"

namespace authcode {
namespace {

namespace mustache = kainjow::mustache;
namespace fs = std::filesystem;

constexpr char kDefaultPurpose[] = "default";

// The parts of a mail, indexing the arrays below.
enum Part : size_t { kSubject = 0, kText = 1, kHtml = 2, kNumParts = 3 };
constexpr std::array<const char*, kNumParts> kExtensions = {"subject", "txt",
                                                            "html"};

// One template file as read, before parsing.
struct SourceFile {
  std::string relative_path;  // "<locale>/<purpose>.<extension>"
  std::string name;           // For messages: where the file came from.
  std::string contents;
};

// The files of one purpose in one locale, merged from built-in and override
// files; a part stays empty until some source has it.
struct FileSet {
  std::string stem;  // "<locale>/<purpose>" as first seen, for messages.
  std::array<std::optional<SourceFile>, kNumParts> parts;
};

struct ParsedTemplate {
  std::string name;
  mustache::mustache tmpl;
};

// All three parts of one purpose in one locale, parsed.
struct TemplateSet {
  std::vector<ParsedTemplate> parts;  // Indexed by Part.
};

// (normalised locale, purpose).
using SetKey = std::pair<std::string, std::string>;
using TemplateMap = std::map<SetKey, TemplateSet>;

// "de_CH" and "de-ch" both become "de-ch".
std::string NormalizeLocale(const std::string& locale) {
  std::string normalized = absl::AsciiStrToLower(locale);
  std::replace(normalized.begin(), normalized.end(), '_', '-');
  return normalized;
}

bool IsValidLocale(const std::string& normalized) {
  return !normalized.empty() && normalized.front() != '-' &&
         std::all_of(normalized.begin(), normalized.end(), [](char c) {
           return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
         });
}

bool HasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

bool IsHiddenName(const std::string& name) {
  return !name.empty() && name.front() == '.';
}

absl::Status NotATemplate(const std::string& name) {
  return absl::InvalidArgumentError(absl::StrCat(
      "mail template ", name,
      ": not a template file; expected <locale>/<purpose>.subject, .txt or "
      ".html"));
}

// Files into `sets`, each replacing whatever an earlier source gave for the
// same part. Two files of one source naming the same part (de-CH/x.txt and
// de_ch/x.txt) are refused, since which one won would depend on the order
// the folder was listed in.
absl::Status AddFiles(std::vector<SourceFile> files,
                      std::map<SetKey, FileSet>& sets) {
  std::map<std::pair<SetKey, size_t>, std::string> seen;
  for (SourceFile& file : files) {
    const std::vector<std::string> components =
        absl::StrSplit(file.relative_path, '/');
    // Editor and system droppings (.x.txt.swp, .DS_Store) may sit in the
    // source tree that built-in templates are embedded from, too.
    if (std::any_of(components.begin(), components.end(), IsHiddenName)) {
      continue;
    }
    if (components.size() != 2) return NotATemplate(file.name);

    const std::string& base = components[1];
    const size_t dot = base.rfind('.');
    if (dot == std::string::npos || dot == 0) return NotATemplate(file.name);
    const auto ext = std::find(kExtensions.begin(), kExtensions.end(),
                               std::string_view(base).substr(dot + 1));
    const std::string locale = NormalizeLocale(components[0]);
    if (ext == kExtensions.end() || !IsValidLocale(locale)) {
      return NotATemplate(file.name);
    }

    const SetKey key(locale, base.substr(0, dot));
    const size_t part = static_cast<size_t>(ext - kExtensions.begin());
    auto [it, inserted] = seen.emplace(std::make_pair(key, part), file.name);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mail templates ", it->second, " and ", file.name,
          " are the same template (locales match case-insensitively)"));
    }

    FileSet& set = sets[key];
    if (set.stem.empty()) {
      set.stem = absl::StrCat(components[0], "/", key.second);
    }
    set.parts[part] = std::move(file);
  }
  return absl::OkStatus();
}

std::vector<SourceFile> BuiltinFiles() {
  std::vector<SourceFile> files;
  for (const EmbeddedFile& file : EmbeddedTemplates()) {
    std::string path(file.path);
    std::string name = "built-in " + path;
    files.push_back(
        {std::move(path), std::move(name), std::string(file.contents)});
  }
  return files;
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string contents((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
  if (!in.is_open() || in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mail template ", path.string(), ": cannot be read"));
  }
  return contents;
}

bool IsHidden(const fs::path& path) {
  return IsHiddenName(path.filename().string());
}

// The layout is exactly two levels deep, so the folder is walked level by
// level rather than recursively: a symlinked locale folder still counts,
// and a stray nested folder is reported instead of searched.
absl::StatusOr<std::vector<fs::path>> ListFolder(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!IsHidden(it->path())) entries.push_back(it->path());
  }
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mail.templates_dir: cannot list ", dir.string(), ": ", ec.message()));
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

absl::StatusOr<std::vector<SourceFile>> OverrideFiles(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mail.templates_dir: ", root.string(), " is not a folder"));
  }

  std::vector<SourceFile> files;
  ASSIGN_OR_RETURN(const std::vector<fs::path> locales, ListFolder(root));
  for (const fs::path& locale : locales) {
    if (!fs::is_directory(locale, ec)) return NotATemplate(locale.string());
    ASSIGN_OR_RETURN(const std::vector<fs::path> entries, ListFolder(locale));
    for (const fs::path& entry : entries) {
      if (!fs::is_regular_file(entry, ec)) return NotATemplate(entry.string());
      ASSIGN_OR_RETURN(std::string contents, ReadFile(entry));
      files.push_back({entry.lexically_relative(root).generic_string(),
                       entry.string(), std::move(contents)});
    }
  }
  return files;
}

// kainjow looks a partial's name up among the same values as a variable's,
// so {{>app_name}} would parse the caller's value as a template. A changed
// delimiter would hide tags from this scan, so it is refused as well.
absl::Status CheckTags(const SourceFile& file) {
  const std::string& text = file.contents;
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    size_t i = pos + 2;
    while (i < text.size() &&
           (text[i] == '{' || absl::ascii_isspace(text[i]))) {
      ++i;
    }
    if (i < text.size() && (text[i] == '>' || text[i] == '=')) {
      return absl::InvalidArgumentError(
          absl::StrCat("mail template ", file.name, ": ",
                       text[i] == '>' ? "partials" : "delimiter changes",
                       " are not supported (at byte ", pos, ")"));
    }
    pos = text.find("}}", i);
    if (pos == std::string::npos) break;  // The parser reports it.
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedTemplate> Parse(const SourceFile& file) {
  RETURN_IF_ERROR(CheckTags(file));
  ParsedTemplate parsed{file.name, mustache::mustache(file.contents)};
  if (!parsed.tmpl.is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mail template ", file.name, ": ", parsed.tmpl.error_message()));
  }
  // Values are escaped, or not, before rendering (see Values()), so that a
  // {{{name}}} or {{&name}} tag cannot skip the HTML escaping.
  parsed.tmpl.set_custom_escape([](const std::string& s) { return s; });
  return parsed;
}

absl::StatusOr<TemplateMap> ParseAll(const std::map<SetKey, FileSet>& sets) {
  TemplateMap templates;
  for (const auto& [key, files] : sets) {
    TemplateSet set;
    for (size_t part = 0; part < kNumParts; ++part) {
      if (!files.parts[part].has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mail template ", files.stem, ".", kExtensions[part],
            " is missing; every purpose needs .subject, .txt and .html in ",
            "its locale (mail.templates_dir or built in)"));
      }
      ASSIGN_OR_RETURN(ParsedTemplate parsed, Parse(*files.parts[part]));
      set.parts.push_back(std::move(parsed));
    }
    templates.emplace(key, std::move(set));
  }
  return templates;
}

// The locales to try, best first, without repeats.
std::vector<std::string> CandidateLocales(const std::string& requested,
                                          const std::string& fallback) {
  std::vector<std::string> locales;
  for (const std::string& locale : {NormalizeLocale(requested), fallback}) {
    const std::string language = locale.substr(0, locale.find('-'));
    for (const std::string& candidate : {locale, language}) {
      if (!candidate.empty() && std::find(locales.begin(), locales.end(),
                                          candidate) == locales.end()) {
        locales.push_back(candidate);
      }
    }
  }
  return locales;
}

const TemplateSet* FindSet(const TemplateMap& templates,
                           const std::string& purpose,
                           const std::vector<std::string>& locales) {
  for (const std::string& wanted : {purpose, std::string(kDefaultPurpose)}) {
    for (const std::string& locale : locales) {
      auto it = templates.find({locale, wanted});
      if (it != templates.end()) return &it->second;
    }
  }
  return nullptr;
}

absl::Status CheckConfig(const Config::Mail& config) {
  if (config.from_address.empty()) {
    return absl::InvalidArgumentError("mail.from_address: required");
  }
  if (HasControlCharacter(config.from_address)) {
    return absl::InvalidArgumentError(
        "mail.from_address: must not contain control characters");
  }
  if (HasControlCharacter(config.from_name)) {
    return absl::InvalidArgumentError(
        "mail.from_name: must not contain control characters");
  }
  if (!IsValidLocale(NormalizeLocale(config.default_locale))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mail.default_locale: must be a locale such as \"en\" or \"de-CH\", ",
        "got \"", absl::CHexEscape(config.default_locale), "\""));
  }
  return absl::OkStatus();
}

// The template values. In the HTML part every value is escaped here rather
// than by the tag, so no tag form can insert a caller's markup. An empty
// value is left out, so that {{#name}}...{{/name}} skips it as it would a
// missing one (kainjow treats "" as true).
mustache::data Values(const MailRequest& request, bool html) {
  const int64_t minutes =
      absl::ToInt64Minutes(absl::Ceil(request.expires_in, absl::Minutes(1)));

  mustache::data values;
  const auto set = [&values, html](const std::string& key,
                                   const std::string& value) {
    if (value.empty()) return;
    values.set(key, html ? mustache::html_escape(value) : value);
  };
  for (const auto& [key, value] : request.values) set(key, value);
  // After the caller's values, so these win should a key ever clash.
  set("code", request.code);
  set("expires_in_minutes", absl::StrCat(minutes));
  set("recipient", request.recipient);
  set("purpose", request.purpose);
  return values;
}

// kainjow's render() is not const: it records errors of partials and
// lambdas in the template object. Neither can occur here (partials are
// refused, values are strings), but the API makes no promise, so each call
// renders a private copy of the parsed tree. Copying reads the shared
// template only and costs less than parsing it again.
absl::StatusOr<std::string> Render(const ParsedTemplate& parsed,
                                   const mustache::data& values) {
  mustache::mustache tmpl = parsed.tmpl;
  std::string out = tmpl.render(values);
  if (!tmpl.is_valid()) {
    return absl::InternalError(absl::StrCat("mail template ", parsed.name, ": ",
                                            tmpl.error_message()));
  }
  return out;
}

}  // namespace

struct Composer::Templates {
  std::string from_address;
  std::string from_name;
  std::string default_locale;  // Normalised.
  TemplateMap sets;
};

absl::StatusOr<std::unique_ptr<Composer>> Composer::Create(
    const Config::Mail& config) {
  RETURN_IF_ERROR(CheckConfig(config));

  std::map<SetKey, FileSet> files;
  RETURN_IF_ERROR(AddFiles(BuiltinFiles(), files));
  if (!config.templates_dir.empty()) {
    ASSIGN_OR_RETURN(std::vector<SourceFile> overrides,
                     OverrideFiles(config.templates_dir));
    RETURN_IF_ERROR(AddFiles(std::move(overrides), files));
  }

  auto templates = std::make_shared<Templates>();
  templates->from_address = config.from_address;
  templates->from_name = config.from_name;
  templates->default_locale = NormalizeLocale(config.default_locale);
  ASSIGN_OR_RETURN(templates->sets, ParseAll(files));

  // Every lookup ends at "default" in the default locale, so without it
  // some request would fail at send time instead of here.
  if (FindSet(templates->sets, kDefaultPurpose,
              CandidateLocales("", templates->default_locale)) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mail.default_locale: no templates for \"", config.default_locale,
        "\"; it needs at least ", templates->default_locale,
        "/default.subject, .txt and .html"));
  }

  std::unique_ptr<Composer> composer(new Composer());
  composer->templates_ = std::move(templates);
  return composer;
}

absl::StatusOr<providers::Message> Composer::Compose(
    const MailRequest& request) const {
  if (templates_ == nullptr) {
    return absl::FailedPreconditionError(
        "mail composer: not built by Composer::Create()");
  }
  const TemplateSet* set =
      FindSet(templates_->sets, request.purpose,
              CandidateLocales(request.locale, templates_->default_locale));
  if (set == nullptr) {
    return absl::InternalError(absl::StrCat(
        "mail templates: none for purpose \"", request.purpose, "\""));
  }

  const mustache::data plain = Values(request, /*html=*/false);
  ASSIGN_OR_RETURN(std::string subject, Render(set->parts[kSubject], plain));
  ASSIGN_OR_RETURN(std::string text, Render(set->parts[kText], plain));
  ASSIGN_OR_RETURN(std::string html,
                   Render(set->parts[kHtml], Values(request, /*html=*/true)));

  // A line break in the subject would let the rest of it pass as headers.
  subject = std::string(absl::StripAsciiWhitespace(subject));
  if (HasControlCharacter(subject)) {
    return absl::InternalError(absl::StrCat(
        "mail template ", set->parts[kSubject].name,
        ": the rendered subject holds a line break or other control "
        "character"));
  }

  providers::Message message;
  message.from_address = templates_->from_address;
  message.from_name = templates_->from_name;
  message.to_address = request.recipient;
  message.subject = std::move(subject);
  message.text = std::move(text);
  message.html = std::move(html);
  return message;
}

}  // namespace authcode
