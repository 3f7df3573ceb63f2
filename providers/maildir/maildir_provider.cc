#include "providers/maildir/maildir_provider.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "providers/message/mime.h"
#include "server/log.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "maildir";
constexpr size_t kMaxNamePart = 64;
constexpr int kMaxNameAttempts = 16;

// The header this provider adds to the Message's own extra headers.
constexpr char kDeliveryIdHeader[] = "X-Authcode-Delivery-Id";

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
  if (absl::Status s = settings.CheckKeys({"path"}); !s.ok()) return s;
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
  const auto rejected = [](absl::string_view problem) {
    return SendResult::Permanent(
        absl::StrCat("maildir: ", problem, "; the mail was not written"));
  };
  for (const auto& header : message.headers) {
    if (absl::EqualsIgnoreCase(header.first, kDeliveryIdHeader)) {
      return rejected(absl::StrCat("the extra \"", kDeliveryIdHeader,
                                   "\" header would duplicate a header the "
                                   "provider writes"));
    }
  }

  const std::string id_part =
      message.delivery_id.empty()
          ? RandomHex(16)
          : SanitizeForFileName(message.delivery_id, kMaxNamePart);
  Message with_id = message;
  if (!message.delivery_id.empty()) {
    with_id.headers.insert(with_id.headers.begin(),
                           {kDeliveryIdHeader, message.delivery_id});
  }
  MimeOptions options;
  options.encoding = MimeOptions::Encoding::kBase64;
  options.date = absl::Now();
  options.message_id_domain = "authcode.invalid";
  options.message_id_local = absl::StrCat(
      absl::StrReplaceAll(id_part, {{".", "-"}}), ".", RandomHex(16));
  options.boundary = absl::StrCat("=_authcode_", RandomHex(32));

  absl::StatusOr<MimeMessage> mime = BuildMime(with_id, options);
  if (!mime.ok()) return rejected(mime.status().message());
  return Deliver(id_part, mime->data);
}

absl::Status MaildirProvider::CheckReachable() {
  for (const char* sub : {"/tmp", "/new"}) {
    const std::string dir = root_ + sub;
    if (access(dir.c_str(), W_OK | X_OK) != 0) {
      return absl::UnavailableError(absl::StrCat(
          "maildir: cannot write into \"", dir, "\": ", ErrnoText(errno)));
    }
  }
  return absl::OkStatus();
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
