// Where the SES provider's AWS credentials come from, in this order:
//   1. access_key_id and secret_access_key (and session_token) in the
//      provider's settings, each as a value, a *_file or an *_env;
//   2. credentials_file (and profile, default "default"): an AWS shared
//      credentials file, read again whenever it changes on disk, so that
//      temporary credentials rotated by an outside agent are picked up;
//   3. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in
//      the environment.
// Nothing here logs or returns a secret in an error.
//
// Thread safety: Get() may be called from several threads at once.
#ifndef AUTHCODE_PROVIDERS_SES_AWS_CREDENTIALS_H_
#define AUTHCODE_PROVIDERS_SES_AWS_CREDENTIALS_H_

#include <sys/types.h>

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "providers/registry.h"
#include "providers/ses/sigv4.h"

namespace authcode::providers {

// The keys FromSettings() reads, for the provider's CheckKeys().
const std::set<std::string>& AwsCredentialKeys();

// The [profile] section of an AWS shared credentials file: its
// aws_access_key_id, aws_secret_access_key and optional aws_session_token.
// InvalidArgument naming the profile or the missing key.
absl::StatusOr<sigv4::Credentials> ParseAwsCredentialsFile(
    std::string_view text, std::string_view profile);

class AwsCredentialSource {
 public:
  // InvalidArgument naming the setting when the credentials are missing,
  // incomplete or unreadable at start-up.
  static absl::StatusOr<std::shared_ptr<AwsCredentialSource>> FromSettings(
      const ProviderSettings& settings);

  // Fixed credentials.
  explicit AwsCredentialSource(sigv4::Credentials credentials);

  // The credentials to sign with now. With a credentials file, a file
  // that changed is read first; Unavailable when it can no longer be
  // read or parsed (the old credentials are likely expired by then).
  absl::StatusOr<sigv4::Credentials> Get();

  // The access key id in use, for the start-up log line (it is an
  // identifier, not a secret).
  std::string AccessKeyId();

 private:
  struct FileStamp {
    ino_t inode = 0;
    off_t size = 0;
    long long mtime_ns = 0;
    bool operator==(const FileStamp& o) const {
      return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };

  AwsCredentialSource(std::string path, std::string profile);
  absl::Status Reload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;  // Empty: fixed credentials.
  const std::string profile_;
  absl::Mutex mu_;
  sigv4::Credentials current_ ABSL_GUARDED_BY(mu_);
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
};

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_SES_AWS_CREDENTIALS_H_
