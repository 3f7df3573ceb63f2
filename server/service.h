// authcode.v1.AuthCodeService: request checks, code generation and hashing
// around one store call per RPC.
//
// The service uses gRPC's callback API with raw (serialized) requests. A
// handler queues the call on an RpcExecutor and returns at once, so that
// gRPC's event threads never wait on the database. On an executor thread
// the call is authenticated (Callers), its bytes are checked for invalid
// UTF-8 (wire_check.h: protobuf would refuse such a request with a bare
// INTERNAL before any field could be named) and parsed, and the RPC's
// logic runs. That logic returns an absl::Status; ToGrpcStatus() turns it
// into the wire status at the edge.
//
// Thread safety: the executor runs handlers on many threads at once; the
// service holds only immutable state and thread-safe collaborators.
#ifndef AUTHCODE_SERVER_SERVICE_H_
#define AUTHCODE_SERVER_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "authcode/v1/authcode.grpc.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/callers.h"
#include "server/codes.h"
#include "server/config.h"
#include "server/rpc_executor.h"
#include "server/secretbox.h"
#include "server/server_metrics.h"
#include "server/store.h"

namespace authcode {

// Every method of the service, taken as raw bytes through the callback API.
using RawAuthCodeService = v1::AuthCodeService::WithRawCallbackMethod_IssueCode<
    v1::AuthCodeService::WithRawCallbackMethod_VerifyCode<
        v1::AuthCodeService::WithRawCallbackMethod_GetDelivery<
            v1::AuthCodeService::Service>>>;

class AuthCodeServiceImpl final : public RawAuthCodeService {
 public:
  // Every pointer must outlive the service.
  AuthCodeServiceImpl(const Config* config, const Callers* callers,
                      Store* store, const CodeHasher* hasher,
                      const SecretBox* outbox, ServerMetrics* metrics,
                      RandomSource random);

  grpc::ServerUnaryReactor* IssueCode(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* VerifyCode(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetDelivery(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;

 private:
  // Queues `handle` for the executor, which finishes the call with its
  // result (serialized into `response`). Every call of `method` is
  // answered here, so here it is counted and timed.
  template <typename Response>
  grpc::ServerUnaryReactor* Dispatch(
      RpcMethod method, grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request, grpc::ByteBuffer* response,
      absl::StatusOr<Response> (AuthCodeServiceImpl::*handle)(
          const grpc::ServerContextBase&, const grpc::ByteBuffer&,
          const std::string&));

  // The call's request id: the caller's x-request-id when it is a sensible
  // token, otherwise a new random one. Sent back as x-request-id.
  std::string RequestId(const grpc::ServerContextBase& context) const;

  // Each RPC from its raw request: caller, request checks, logic, log line
  // (with the request id).
  absl::StatusOr<v1::IssueCodeResponse> HandleIssue(
      const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
      const std::string& request_id);
  absl::StatusOr<v1::VerifyCodeResponse> HandleVerify(
      const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
      const std::string& request_id);
  absl::StatusOr<v1::GetDeliveryResponse> HandleDelivery(
      const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
      const std::string& request_id);

  absl::StatusOr<v1::IssueCodeResponse> Issue(
      const Caller& caller, const v1::IssueCodeRequest& request);
  absl::StatusOr<v1::VerifyCodeResponse> Verify(
      const Caller& caller, const v1::VerifyCodeRequest& request);
  absl::StatusOr<v1::GetDeliveryResponse> Delivery(
      const Caller& caller, const v1::GetDeliveryRequest& request);

  const Config* config_;
  const Callers* callers_;
  Store* store_;
  const CodeHasher* hasher_;
  const SecretBox* outbox_;
  ServerMetrics* const metrics_;
  const RandomSource random_;
  // Last: destroyed first, so no queued call outlives what it uses.
  std::unique_ptr<RpcExecutor> executor_;
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
