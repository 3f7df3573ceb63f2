// The one place where the core's absl::Status becomes a gRPC status.
//
// The core attaches google.rpc error details as absl::Status payloads keyed
// by their type URL; ToGrpcStatus() packs them into the gRPC status
// details, where every gRPC client library finds them. Internal and unknown
// errors reach the caller as a bare "internal error": their text may hold
// SQL or library detail and belongs in the log only.
#ifndef AUTHCODE_SERVER_GRPC_STATUS_H_
#define AUTHCODE_SERVER_GRPC_STATUS_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "server/validation.h"

namespace authcode {

// INVALID_ARGUMENT carrying google.rpc.BadRequest with `violations`.
absl::Status InvalidRequestError(const std::vector<FieldViolation>& violations);

// RESOURCE_EXHAUSTED carrying google.rpc.RetryInfo with `retry_delay`.
absl::Status ResourceExhaustedError(std::string_view message,
                                    absl::Duration retry_delay);

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_GRPC_STATUS_H_
