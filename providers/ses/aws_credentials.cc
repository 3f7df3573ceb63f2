#include "providers/ses/aws_credentials.h"

#include <sys/stat.h>

#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace authcode::providers {
namespace {

bool HasLineBreak(const std::string& value) {
  return value.find_first_of("\r\n") != std::string::npos;
}

absl::StatusOr<sigv4::Credentials> FromEnvironment() {
  const char* id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  const char* token = std::getenv("AWS_SESSION_TOKEN");
  if (id == nullptr || secret == nullptr || *id == '\0' || *secret == '\0') {
    return absl::NotFoundError("not in the environment");
  }
  return sigv4::Credentials{id, secret, token == nullptr ? "" : token};
}

}  // namespace

const std::set<std::string>& AwsCredentialKeys() {
  static const auto* keys = new std::set<std::string>{"access_key_id",
                                                      "access_key_id_file",
                                                      "access_key_id_env",
                                                      "secret_access_key",
                                                      "secret_access_key_file",
                                                      "secret_access_key_env",
                                                      "session_token",
                                                      "session_token_file",
                                                      "session_token_env",
                                                      "credentials_file",
                                                      "profile"};
  return *keys;
}

absl::StatusOr<sigv4::Credentials> ParseAwsCredentialsFile(
    std::string_view text, std::string_view profile) {
  sigv4::Credentials credentials;
  bool in_profile = false;
  bool found = false;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      const absl::string_view name =
          absl::StripAsciiWhitespace(line.substr(1, line.size() - 2));
      in_profile = name == absl::string_view(profile.data(), profile.size());
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    const size_t equals = line.find('=');
    if (equals == absl::string_view::npos) continue;
    const absl::string_view key =
        absl::StripAsciiWhitespace(line.substr(0, equals));
    const std::string value(
        absl::StripAsciiWhitespace(line.substr(equals + 1)));
    if (key == "aws_access_key_id") credentials.access_key_id = value;
    if (key == "aws_secret_access_key") credentials.secret_access_key = value;
    if (key == "aws_session_token") credentials.session_token = value;
  }

  const std::string where =
      absl::StrCat("profile [", std::string(profile), "]");
  if (!found) {
    return absl::InvalidArgumentError(absl::StrCat(where, " not found"));
  }
  if (credentials.access_key_id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " has no aws_access_key_id"));
  }
  if (credentials.secret_access_key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " has no aws_secret_access_key"));
  }
  return credentials;
}

absl::StatusOr<std::shared_ptr<AwsCredentialSource>>
AwsCredentialSource::FromSettings(const ProviderSettings& settings) {
  absl::StatusOr<std::string> id = settings.GetSecret("access_key_id");
  if (!id.ok()) return id.status();
  absl::StatusOr<std::string> secret = settings.GetSecret("secret_access_key");
  if (!secret.ok()) return secret.status();
  absl::StatusOr<std::string> token = settings.GetSecret("session_token");
  if (!token.ok()) return token.status();
  const std::string file = settings.GetString("credentials_file", "");

  if (!id->empty() || !secret->empty()) {
    if (id->empty() || secret->empty()) {
      return settings.Error(id->empty() ? "access_key_id" : "secret_access_key",
                            "set both access_key_id and secret_access_key "
                            "(as values, *_file or *_env)");
    }
    if (!file.empty()) {
      return settings.Error("credentials_file",
                            "set either access keys or credentials_file");
    }
    return std::make_shared<AwsCredentialSource>(
        sigv4::Credentials{*id, *secret, *token});
  }
  if (!token->empty()) {
    return settings.Error("session_token",
                          "needs access_key_id and secret_access_key");
  }

  if (!file.empty()) {
    std::shared_ptr<AwsCredentialSource> source(new AwsCredentialSource(
        file, settings.GetString("profile", "default")));
    absl::MutexLock lock(&source->mu_);
    if (absl::Status s = source->Reload(); !s.ok()) {
      return settings.Error("credentials_file", s.message());
    }
    return source;
  }
  if (settings.values().count("profile") > 0) {
    return settings.Error("profile", "needs credentials_file");
  }

  absl::StatusOr<sigv4::Credentials> env = FromEnvironment();
  if (!env.ok()) {
    return settings.Error(
        "access_key_id",
        "no AWS credentials: set access_key_id and secret_access_key (or "
        "their *_file / *_env forms), or credentials_file, or "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
  }
  if (HasLineBreak(env->access_key_id) ||
      HasLineBreak(env->secret_access_key) ||
      HasLineBreak(env->session_token)) {
    return settings.Error("access_key_id",
                          "an AWS_* environment variable holds a line break");
  }
  return std::make_shared<AwsCredentialSource>(*std::move(env));
}

AwsCredentialSource::AwsCredentialSource(sigv4::Credentials credentials)
    : current_(std::move(credentials)) {}

AwsCredentialSource::AwsCredentialSource(std::string path, std::string profile)
    : path_(std::move(path)), profile_(std::move(profile)) {}

absl::StatusOr<sigv4::Credentials> AwsCredentialSource::Get() {
  absl::MutexLock lock(&mu_);
  if (!path_.empty()) {
    if (absl::Status s = Reload(); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("credentials_file: ", s.message()));
    }
  }
  return current_;
}

std::string AwsCredentialSource::AccessKeyId() {
  absl::MutexLock lock(&mu_);
  return current_.access_key_id;
}

// Reads the file when its inode, size or modification time moved since
// the last read: one stat per send, a parse only after a change.
absl::Status AwsCredentialSource::Reload() {
  struct stat info;
  if (stat(path_.c_str(), &info) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot stat \"", path_, "\""));
  }
  const FileStamp stamp{
      info.st_ino, info.st_size,
      static_cast<long long>(info.st_mtim.tv_sec) * 1000000000LL +
          info.st_mtim.tv_nsec};
  if (stamp == stamp_ && !current_.access_key_id.empty()) {
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> text = ReadWholeFile(path_);
  if (!text.ok()) return text.status();
  absl::StatusOr<sigv4::Credentials> parsed =
      ParseAwsCredentialsFile(*text, profile_);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path_, "\": ", parsed.status().message()));
  }
  current_ = *std::move(parsed);
  stamp_ = stamp;
  return absl::OkStatus();
}

}  // namespace authcode::providers
