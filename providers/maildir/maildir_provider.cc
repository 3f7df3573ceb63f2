#include "providers/maildir/maildir_provider.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/log.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "maildir";
constexpr char kEncodedWordStart[] = "=?UTF-8?B?";
constexpr char kEncodedWordEnd[] = "?=";
// 39 bytes make 52 base64 characters: with its markers an encoded word is
// 64 characters, so "Subject: " and the first word still fit in 78.
constexpr size_t kEncodedWordBytes = 39;
// Longer plain subjects go out as encoded words, which fold safely, so no
// header line nears the limit of 998.
constexpr size_t kMaxPlainHeaderValue = 900;
constexpr size_t kBase64LineLength = 76;
constexpr size_t kMaxNamePart = 64;
constexpr int kMaxNameAttempts = 16;

// Headers this provider writes itself; an extra header of the same name
// would make a second From or a Content-Type that breaks the MIME structure.
constexpr const char* kOwnHeaders[] = {"from",
                                       "to",
                                       "subject",
                                       "date",
                                       "message-id",
                                       "mime-version",
                                       "content-type",
                                       "content-transfer-encoding",
                                       "x-authcode-delivery-id"};

// Debian's Abseil has its own string_view, not std::string_view.
absl::string_view ToAbsl(std::string_view value) {
  return absl::string_view(value.data(), value.size());
}

// "No space left on device (ENOSPC)".
std::string ErrnoText(int err) {
  char buffer[256];
  // The GNU strerror_r returns the text, which need not be in `buffer`.
  const char* text = strerror_r(err, buffer, sizeof(buffer));
  const char* name = strerrorname_np(err);
  return name == nullptr ? std::string(text)
                         : absl::StrCat(text, " (", name, ")");
}

// Keeps [A-Za-z0-9._-], turns anything else into '_', cuts to `max`.
std::string SanitizeForFileName(std::string_view value, size_t max) {
  std::string out(value.substr(0, max));
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      c = '_';
    }
  }
  return out;
}

std::string LocalHostName() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') {
    return "localhost";
  }
  return SanitizeForFileName(buffer, kMaxNamePart);
}

// --- Headers -------------------------------------------------------------

bool HasLineBreak(std::string_view value) {
  return value.find_first_of("\r\n") != std::string_view::npos;
}

bool IsFieldName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c < 33 || c > 126 || c == ':') return false;
  }
  return true;
}

// Header names appear in errors: escaped, so an injected line break shows
// as \r\n, and cut, so an error stays one short line.
std::string QuotedName(std::string_view name) {
  return absl::StrCat("\"", absl::CHexEscape(ToAbsl(name.substr(0, 64))), "\"");
}

// The first reason the message's headers cannot be written safely, or "".
std::string FindHeaderProblem(const Message& message) {
  const std::pair<const char*, const std::string*> own[] = {
      {"From (address)", &message.from_address},
      {"From (display name)", &message.from_name},
      {"To", &message.to_address},
      {"Subject", &message.subject},
      {"X-Authcode-Delivery-Id", &message.delivery_id}};
  for (const auto& [header, value] : own) {
    if (HasLineBreak(*value)) {
      return absl::StrCat("the ", header, " header holds a CR or LF");
    }
  }

  for (const auto& [name, value] : message.headers) {
    if (!IsFieldName(name)) {
      return absl::StrCat("extra header ", QuotedName(name),
                          " is not a valid header name");
    }
    if (HasLineBreak(value)) {
      return absl::StrCat("extra header ", QuotedName(name),
                          " holds a CR or LF");
    }
    for (const char* reserved : kOwnHeaders) {
      if (absl::EqualsIgnoreCase(name, reserved)) {
        return absl::StrCat("extra header ", QuotedName(name),
                            " would duplicate a header the provider writes");
      }
    }
  }
  return "";
}

// Plain printable ASCII can go out as is; anything else, or text a reader
// could mistake for an encoded word, is encoded.
bool NeedsEncoding(std::string_view value) {
  if (value.size() > kMaxPlainHeaderValue) return true;
  if (value.find("=?") != std::string_view::npos) return true;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return true;
  }
  return false;
}

// RFC 2047 "B" encoded words, folded onto continuation lines. Each word
// holds whole UTF-8 characters, as RFC 2047 requires.
std::string EncodeWords(std::string_view value) {
  std::string out;
  size_t start = 0;
  while (start < value.size()) {
    size_t end = std::min(value.size(), start + kEncodedWordBytes);
    size_t cut = end;
    while (cut > start && cut < value.size() &&
           (static_cast<unsigned char>(value[cut]) & 0xc0) == 0x80) {
      --cut;
    }
    if (cut > start) end = cut;  // Else not UTF-8: cut anywhere.

    if (!out.empty()) out += "\r\n ";
    absl::StrAppend(&out, kEncodedWordStart,
                    absl::Base64Escape(
                        absl::string_view(value.data() + start, end - start)),
                    kEncodedWordEnd);
    start = end;
  }
  return out;
}

bool IsAtomText(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::strchr("!#$%&'*+-/=?^_`{|}~ ", c) != nullptr;
}

// A display name as an RFC 5322 phrase: as is when it is atoms and spaces,
// quoted when it holds specials such as ',' or '.', encoded words when it
// is not plain ASCII.
std::string DisplayName(std::string_view name) {
  if (NeedsEncoding(name)) return EncodeWords(name);

  bool plain = true;
  for (char c : name) plain = plain && IsAtomText(c);
  if (plain) return std::string(name);

  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string UnstructuredValue(std::string_view value) {
  return NeedsEncoding(value) ? EncodeWords(value) : std::string(value);
}

// "Tue, 05 Mar 2024 14:03:07 +0000", in English whatever the locale.
std::string FormatDate(absl::Time time) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu",
                                          "Fri", "Sat", "Sun"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr",
                                            "May", "Jun", "Jul", "Aug",
                                            "Sep", "Oct", "Nov", "Dec"};
  const absl::CivilSecond t = absl::ToCivilSecond(time, absl::UTCTimeZone());
  return absl::StrCat(kDays[static_cast<int>(absl::GetWeekday(t))], ", ",
                      absl::Dec(t.day(), absl::kZeroPad2), " ",
                      kMonths[t.month() - 1], " ", t.year(), " ",
                      absl::Dec(t.hour(), absl::kZeroPad2), ":",
                      absl::Dec(t.minute(), absl::kZeroPad2), ":",
                      absl::Dec(t.second(), absl::kZeroPad2), " +0000");
}

// --- Body ----------------------------------------------------------------

void AppendPart(std::string& out, const std::string& boundary, const char* type,
                std::string_view body) {
  absl::StrAppend(&out, "--", boundary, "\r\n", "Content-Type: ", type,
                  "; charset=utf-8\r\n",
                  "Content-Transfer-Encoding: base64\r\n\r\n");
  const std::string encoded = absl::Base64Escape(ToAbsl(body));
  for (size_t i = 0; i < encoded.size(); i += kBase64LineLength) {
    absl::StrAppend(&out, encoded.substr(i, kBase64LineLength), "\r\n");
  }
  // The line break before a boundary belongs to the boundary: an empty body
  // needs its own.
  if (encoded.empty()) out += "\r\n";
}

struct Envelope {
  std::string date;
  std::string message_id;
  std::string boundary;  // Holds "=_", which base64 never does.
};

std::string RenderMessage(const Message& message, const Envelope& envelope) {
  std::string out = "From: ";
  if (!message.from_name.empty()) {
    absl::StrAppend(&out, DisplayName(message.from_name), " <",
                    message.from_address, ">\r\n");
  } else {
    absl::StrAppend(&out, message.from_address, "\r\n");
  }
  absl::StrAppend(&out, "To: ", message.to_address, "\r\n",
                  "Subject: ", UnstructuredValue(message.subject), "\r\n",
                  "Date: ", envelope.date, "\r\n",
                  "Message-ID: ", envelope.message_id, "\r\n",
                  "MIME-Version: 1.0\r\n");
  if (!message.delivery_id.empty()) {
    absl::StrAppend(&out, "X-Authcode-Delivery-Id: ", message.delivery_id,
                    "\r\n");
  }
  for (const auto& [name, value] : message.headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&out, "Content-Type: multipart/alternative;\r\n",
                  " boundary=\"", envelope.boundary, "\"\r\n\r\n");

  AppendPart(out, envelope.boundary, "text/plain", message.text);
  AppendPart(out, envelope.boundary, "text/html", message.html);
  absl::StrAppend(&out, "--", envelope.boundary, "--\r\n");
  return out;
}

// --- Files ---------------------------------------------------------------

// 0, or the errno of the failure.
int MakeDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0700) == 0) return 0;
  const int err = errno;
  if (err != EEXIST) return err;

  struct stat info;
  if (stat(path.c_str(), &info) != 0) return errno;
  return S_ISDIR(info.st_mode) ? 0 : ENOTDIR;
}

// Like `mkdir -p`; on failure `failed` names the folder.
int MakeDirectories(const std::string& path, std::string& failed) {
  size_t pos = 0;
  do {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (const int err = MakeDirectory(prefix); err != 0) {
      failed = prefix;
      return err;
    }
  } while (pos != std::string::npos);
  return 0;
}

int WriteAll(int fd, std::string_view content) {
  while (!content.empty()) {
    const ssize_t written = write(fd, content.data(), content.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    content.remove_prefix(static_cast<size_t>(written));
  }
  return 0;
}

// Creates `path` (which must not exist: EEXIST if it does), writes and
// fsyncs it. On any other failure the file is removed again.
int WriteNewFile(const std::string& path, std::string_view content) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno;

  int err = WriteAll(fd, content);
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err != 0) unlink(path.c_str());
  return err;
}

// rename() that never replaces an existing file, where the file system can
// promise that; elsewhere a plain rename().
int RenameNoReplace(const std::string& from, const std::string& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(),
                RENAME_NOREPLACE) == 0) {
    return 0;
  }
  if (errno != EINVAL && errno != ENOSYS) return errno;
  return std::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

int SyncDirectory(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = fsync(fd) == 0 ? 0 : errno;
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

// Creates the Maildir folders and checks that a file can be made in tmp/.
// Returns the root as an absolute path, so a later chdir() cannot move it.
absl::StatusOr<std::string> PrepareMaildir(const std::string& path) {
  std::string failed;
  int err = MakeDirectories(path, failed);
  for (const char* sub : {"/tmp", "/new", "/cur"}) {
    if (err != 0) break;
    failed = path + sub;
    err = MakeDirectory(failed);
  }
  if (err != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot create the folder \"", failed, "\": ", ErrnoText(err)));
  }

  const std::string probe =
      absl::StrCat(path, "/tmp/.authcode-probe.", getpid(), ".",
                   absl::ToUnixNanos(absl::Now()));
  err = WriteNewFile(probe, "");
  if (err == 0) unlink(probe.c_str());
  if (err == 0 && access((path + "/new").c_str(), W_OK | X_OK) != 0) {
    err = errno;
  }
  if (err != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot write into the Maildir \"", path, "\": ", ErrnoText(err)));
  }

  char* absolute = realpath(path.c_str(), nullptr);
  if (absolute == nullptr) return path;
  std::string root(absolute);
  std::free(absolute);
  return root;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateMaildirProvider(
    const ProviderSettings& settings) {
  for (const auto& [key, value] : settings.values()) {
    if (key != "path") {
      return absl::InvalidArgumentError(absl::StrCat(
          settings.section(), ".", key, ": unknown setting; valid: path"));
    }
  }
  absl::StatusOr<std::string> path = settings.GetRequiredString("path");
  if (!path.ok()) return path.status();

  absl::StatusOr<std::string> root = PrepareMaildir(*path);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(settings.section(), ".path: ", root.status().message()));
  }

  log::Warn("provider.maildir_enabled",
            {{"path", *root},
             {"note",
              "every mail is written to a file, one-time codes included; "
              "for development and tests only, never in production"}});
  return std::make_unique<MaildirProvider>(*std::move(root), LocalHostName());
}

}  // namespace

void RegisterMaildirProvider(ProviderRegistry& registry) {
  registry.Register(kName, CreateMaildirProvider);
}

MaildirProvider::MaildirProvider(std::string root, std::string hostname)
    : root_(std::move(root)), hostname_(std::move(hostname)) {
  std::random_device device;
  random_.seed((static_cast<std::uint64_t>(device()) << 32) | device());
}

SendResult MaildirProvider::Send(const Message& message) {
  if (const std::string problem = FindHeaderProblem(message);
      !problem.empty()) {
    return SendResult::Permanent(
        absl::StrCat("maildir: ", problem, "; the mail was not written"));
  }

  const std::string id_part =
      message.delivery_id.empty()
          ? RandomHex(16)
          : SanitizeForFileName(message.delivery_id, kMaxNamePart);
  Envelope envelope;
  envelope.date = FormatDate(absl::Now());
  envelope.message_id =
      absl::StrCat("<", absl::StrReplaceAll(id_part, {{".", "-"}}), ".",
                   RandomHex(16), "@authcode.invalid>");
  envelope.boundary = absl::StrCat("=_authcode_", RandomHex(32));

  return Deliver(id_part, RenderMessage(message, envelope));
}

std::string MaildirProvider::RandomHex(int digits) {
  std::string out;
  absl::MutexLock lock(&mu_);
  while (static_cast<int>(out.size()) < digits) {
    absl::StrAppend(&out, absl::Hex(random_(), absl::kZeroPad16));
  }
  out.resize(static_cast<size_t>(digits));
  return out;
}

std::string MaildirProvider::NextUniqueName(const std::string& id_part) {
  return absl::StrCat(absl::ToUnixSeconds(absl::Now()), ".", id_part, "_",
                      counter_.fetch_add(1), ".", hostname_);
}

SendResult MaildirProvider::Deliver(const std::string& id_part,
                                    const std::string& content) {
  const auto failed = [](const char* step, const std::string& path, int err) {
    return SendResult::Retryable(absl::StrCat("maildir: ", step, " \"", path,
                                              "\" failed: ", ErrnoText(err)));
  };
  const std::string new_dir = root_ + "/new";

  // A name already taken, by another process or by this one before a
  // restart, is skipped rather than overwritten.
  for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
    const std::string unique = NextUniqueName(id_part);
    const std::string tmp_path = absl::StrCat(root_, "/tmp/", unique);
    const std::string new_path = absl::StrCat(new_dir, "/", unique);

    int err = WriteNewFile(tmp_path, content);
    if (err == EEXIST) continue;
    if (err != 0) return failed("writing", tmp_path, err);

    err = RenameNoReplace(tmp_path, new_path);
    if (err != 0) unlink(tmp_path.c_str());
    if (err == EEXIST) continue;
    if (err != 0) return failed("moving the mail to", new_path, err);

    // Without this the rename itself may be lost in a crash.
    err = SyncDirectory(new_dir);
    if (err != 0) return failed("syncing", new_dir, err);
    return SendResult::Sent(absl::StrCat("maildir:", unique));
  }
  return SendResult::Retryable(absl::StrCat("maildir: no free file name in \"",
                                            new_dir, "\" after ",
                                            kMaxNameAttempts, " tries"));
}

}  // namespace authcode::providers
