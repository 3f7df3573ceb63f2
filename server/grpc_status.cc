#include "server/grpc_status.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace authcode {
namespace {

constexpr char kTypePrefix[] = "type.googleapis.com/";

template <typename Message>
std::string TypeUrl() {
  return absl::StrCat(kTypePrefix, Message::descriptor()->full_name());
}

}  // namespace

absl::Status InvalidRequestError(
    const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest details;
  std::vector<std::string> summary;
  for (const FieldViolation& v : violations) {
    auto* out = details.add_field_violations();
    out->set_field(v.field);
    out->set_description(v.description);
    summary.push_back(absl::StrCat(v.field, ": ", v.description));
  }
  absl::Status status = absl::InvalidArgumentError(
      absl::StrCat("invalid request: ", absl::StrJoin(summary, "; ")));
  status.SetPayload(TypeUrl<google::rpc::BadRequest>(),
                    absl::Cord(details.SerializeAsString()));
  return status;
}

absl::Status ResourceExhaustedError(std::string_view message,
                                    absl::Duration retry_delay) {
  retry_delay = std::max(retry_delay, absl::ZeroDuration());
  google::rpc::RetryInfo details;
  const int64_t nanos = absl::ToInt64Nanoseconds(retry_delay);
  details.mutable_retry_delay()->set_seconds(nanos / 1000000000);
  details.mutable_retry_delay()->set_nanos(
      static_cast<int32_t>(nanos % 1000000000));
  absl::Status status = absl::ResourceExhaustedError(std::string(message));
  status.SetPayload(TypeUrl<google::rpc::RetryInfo>(),
                    absl::Cord(details.SerializeAsString()));
  return status;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;

  std::string message(status.message());
  if (status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnknown ||
      status.code() == absl::StatusCode::kDataLoss) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }

  google::rpc::Status rich;
  rich.set_code(static_cast<int>(status.code()));
  rich.set_message(message);
  status.ForEachPayload(
      [&](absl::string_view type_url, const absl::Cord& payload) {
        auto* any = rich.add_details();
        any->set_type_url(std::string(type_url));
        any->set_value(std::string(payload));
      });
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      rich.details_size() > 0 ? rich.SerializeAsString() : "");
}

}  // namespace authcode
