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

#include "absl/status/statusor.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "server/codes.h"
#include "server/config.h"
#include "server/secretbox.h"
#include "server/store.h"

namespace authcode {

class AuthCodeServiceImpl final : public v1::AuthCodeService::Service {
 public:
  // Every pointer must outlive the service.
  AuthCodeServiceImpl(const Config* config, Store* store,
                      const CodeHasher* hasher, const SecretBox* outbox,
                      RandomSource random);

  grpc::Status IssueCode(grpc::ServerContext* context,
                         const v1::IssueCodeRequest* request,
                         v1::IssueCodeResponse* response) override;
  grpc::Status VerifyCode(grpc::ServerContext* context,
                          const v1::VerifyCodeRequest* request,
                          v1::VerifyCodeResponse* response) override;
  grpc::Status GetDelivery(grpc::ServerContext* context,
                           const v1::GetDeliveryRequest* request,
                           v1::GetDeliveryResponse* response) override;

 private:
  absl::StatusOr<v1::IssueCodeResponse> Issue(
      const v1::IssueCodeRequest& request);
  absl::StatusOr<v1::VerifyCodeResponse> Verify(
      const v1::VerifyCodeRequest& request);
  absl::StatusOr<v1::GetDeliveryResponse> Delivery(
      const v1::GetDeliveryRequest& request);

  const Config* config_;
  Store* store_;
  const CodeHasher* hasher_;
  const SecretBox* outbox_;
  const RandomSource random_;
};

// The SHA-256 of everything an IssueCode request asks for, to tell a
// retry (same fingerprint) from a different request under the same
// idempotency key. The recipient counts normalized.
std::string RequestFingerprint(const v1::IssueCodeRequest& request);

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
