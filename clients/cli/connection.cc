#include "clients/cli/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace authcode::cli {
namespace {

// The whole of `path`, which the flag `flag` named.
absl::StatusOr<std::string> ReadFlagFile(const char* flag,
                                         const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": cannot open: ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": read failed"));
  }
  if (contents.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": file is empty"));
  }
  return contents.str();
}

// gRPC sends metadata values verbatim, so only printable ASCII is allowed.
bool IsPrintableAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

absl::StatusOr<std::string> ResolveToken(const ConnectionOptions& options) {
  std::string token = options.token;
  const char* flag = "--token";
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> contents =
        ReadFlagFile("--token-file", options.token_file);
    if (!contents.ok()) return contents.status();
    token = std::string(absl::StripTrailingAsciiWhitespace(*contents));
    flag = "--token-file";
  }
  if (!IsPrintableAscii(token)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": the token must be printable ASCII on one line"));
  }
  return token;
}

// Reads `path` into `pem`; an empty path leaves `pem` empty, which gRPC
// takes as "use the default" (the system's roots, or no client key).
absl::Status ReadPemIfGiven(const char* flag, const std::string& path,
                            std::string* pem) {
  if (path.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> contents = ReadFlagFile(flag, path);
  if (!contents.ok()) return contents.status();
  *pem = *std::move(contents);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ConnectionOptions& options) {
  if (!options.tls) return grpc::InsecureChannelCredentials();

  grpc::SslCredentialsOptions ssl;
  for (const absl::Status& status :
       {ReadPemIfGiven("--ca-file", options.ca_file, &ssl.pem_root_certs),
        ReadPemIfGiven("--cert", options.cert_file, &ssl.pem_cert_chain),
        ReadPemIfGiven("--key", options.key_file, &ssl.pem_private_key)}) {
    if (!status.ok()) return status;
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

void CallSettings::Apply(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
}

absl::StatusOr<Connection> Connect(const ConnectionOptions& options) {
  absl::StatusOr<std::string> token = ResolveToken(options);
  if (!token.ok()) return token.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();

  grpc::ChannelArguments args;
  args.SetUserAgentPrefix("authcode-cli");
  Connection connection;
  connection.channel =
      grpc::CreateCustomChannel(options.target, *credentials, args);
  connection.call = CallSettings{*std::move(token), options.timeout};
  return connection;
}

}  // namespace authcode::cli
