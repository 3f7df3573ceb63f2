#include "clients/cli/call_error.h"

#include "google/rpc/code.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace authcode::cli {
namespace {

int64_t CeilSeconds(const google::protobuf::Duration& delay) {
  if (delay.seconds() < 0) return 0;
  return delay.seconds() + (delay.nanos() > 0 ? 1 : 0);
}

void AddDetail(const google::protobuf::Any& detail, CallError& error) {
  google::rpc::RetryInfo retry;
  google::rpc::BadRequest bad_request;
  if (detail.Is<google::rpc::RetryInfo>() && detail.UnpackTo(&retry)) {
    error.retry_after_seconds = CeilSeconds(retry.retry_delay());
  } else if (detail.Is<google::rpc::BadRequest>() &&
             detail.UnpackTo(&bad_request)) {
    for (const auto& violation : bad_request.field_violations()) {
      error.field_violations.push_back(
          {violation.field(), violation.description()});
    }
  }
}

}  // namespace

CallError DescribeFailure(const grpc::Status& status) {
  CallError error;
  error.code = status.error_code();
  error.message = status.error_message();

  google::rpc::Status rich;
  if (status.error_details().empty() ||
      !rich.ParseFromString(status.error_details())) {
    return error;
  }
  for (const google::protobuf::Any& detail : rich.details()) {
    AddDetail(detail, error);
  }
  return error;
}

std::string StatusCodeName(grpc::StatusCode code) {
  const int number = static_cast<int>(code);
  if (!google::rpc::Code_IsValid(number)) return std::to_string(number);
  return google::rpc::Code_Name(static_cast<google::rpc::Code>(number));
}

}  // namespace authcode::cli
