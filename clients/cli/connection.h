// The channel to the server and the settings every call carries, built from
// the global flags. This is where the files those flags name are read.
#ifndef AUTHCODE_CLIENTS_CLI_CONNECTION_H_
#define AUTHCODE_CLIENTS_CLI_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cli/options.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace authcode::cli {

// What each call adds to its context.
struct CallSettings {
  std::string token;  // empty: no authorization metadata
  absl::Duration timeout;

  // Sets the deadline, counted from now, and the authorization metadata.
  void Apply(grpc::ClientContext& context) const;
};

struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  CallSettings call;
};

// Reads the CA, certificate, key and token files and creates the channel.
// Nothing is sent yet: an unreachable server shows up as the first call's
// UNAVAILABLE. An unreadable or unusable file is InvalidArgument, with a
// message that names the flag and the path.
absl::StatusOr<Connection> Connect(const ConnectionOptions& options);

}  // namespace authcode::cli

#endif  // AUTHCODE_CLIENTS_CLI_CONNECTION_H_
