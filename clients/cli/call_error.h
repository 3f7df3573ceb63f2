// A failed call, as the CLI reports it: the gRPC status plus the details
// the authcode server attaches to it (google.rpc.RetryInfo for
// RESOURCE_EXHAUSTED, google.rpc.BadRequest for INVALID_ARGUMENT).
#ifndef AUTHCODE_CLIENTS_CLI_CALL_ERROR_H_
#define AUTHCODE_CLIENTS_CLI_CALL_ERROR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "grpcpp/support/status.h"

namespace authcode::cli {

struct FieldViolation {
  std::string field;
  std::string description;
};

struct CallError {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  // From RetryInfo, rounded up to whole seconds so that a script which
  // sleeps this long never comes back early.
  std::optional<int64_t> retry_after_seconds;
  // From BadRequest, in the server's order.
  std::vector<FieldViolation> field_violations;
};

// Reads the error details out of a non-OK status. Details that are missing,
// malformed or of other types are ignored: the code and message remain.
CallError DescribeFailure(const grpc::Status& status);

// "RESOURCE_EXHAUSTED", or the number for a code outside the canonical set.
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace authcode::cli

#endif  // AUTHCODE_CLIENTS_CLI_CALL_ERROR_H_
