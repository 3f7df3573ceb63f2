// authcode.v1.AuthCodeService: request checks, code generation and hashing
// around one store call per RPC.
//
// Each RPC's logic returns an absl::Status; ToGrpcStatus() turns it into
// the wire status at the edge.
//
// Thread safety: gRPC calls the handlers from many threads at once; the
// service holds only immutable state and thread-safe collaborators.
#ifndef AUTHCODE_SERVER_SERVICE_H_
#define AUTHCODE_SERVER_SERVICE_H_

#include <functional>

#include "absl/status/statusor.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "server/codes.h"
#include "server/config.h"
#include "server/secretbox.h"
#include "server/store.h"

namespace authcode {

class AuthCodeServiceImpl final : public v1::AuthCodeService::Service {
 public:
  // `on_queued` runs after a delivery job commits (to wake a worker).
  // Every pointer must outlive the service.
  AuthCodeServiceImpl(const Config* config, Store* store,
                      const CodeHasher* hasher, const SecretBox* outbox,
                      RandomSource random, std::function<void()> on_queued);

  grpc::Status IssueCode(grpc::ServerContext* context,
                         const v1::IssueCodeRequest* request,
                         v1::IssueCodeResponse* response) override;
  grpc::Status VerifyCode(grpc::ServerContext* context,
                          const v1::VerifyCodeRequest* request,
                          v1::VerifyCodeResponse* response) override;

 private:
  absl::StatusOr<v1::IssueCodeResponse> Issue(
      const v1::IssueCodeRequest& request);
  absl::StatusOr<v1::VerifyCodeResponse> Verify(
      const v1::VerifyCodeRequest& request);

  const Config* config_;
  Store* store_;
  const CodeHasher* hasher_;
  const SecretBox* outbox_;
  const RandomSource random_;
  const std::function<void()> on_queued_;
};

// The sealed delivery payload: what the worker needs to compose the mail.
struct DeliveryPayload {
  std::string recipient;  // As the caller wrote it.
  std::string code;
  std::string locale;
  std::map<std::string, std::string> values;
};
std::string EncodePayload(const DeliveryPayload& payload);
absl::StatusOr<DeliveryPayload> DecodePayload(std::string_view text);

}  // namespace authcode

#endif  // AUTHCODE_SERVER_SERVICE_H_
