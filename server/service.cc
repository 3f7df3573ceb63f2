#include "server/service.h"

#include <utility>

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "nlohmann/json.hpp"
#include "server/address.h"
#include "server/grpc_status.h"
#include "server/log.h"
#include "server/status_macros.h"
#include "server/validation.h"
#include "server/wire_check.h"

namespace authcode {
namespace {

// Calls that may wait for an executor thread, per thread, before new ones
// are turned away with UNAVAILABLE.
constexpr size_t kQueuedCallsPerThread = 64;

constexpr char kRequestIdHeader[] = "x-request-id";

// A caller's request id is logged as given when it is 1 to 128 characters
// that need no quoting in a log line or a header.
bool IsRequestIdToken(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("-_.:/+=").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Parses a raw request into `out`, naming any string field that is not
// valid UTF-8 first (protobuf would refuse the whole message).
absl::Status Decode(const grpc::ByteBuffer& bytes,
                    google::protobuf::Message* out) {
  grpc::Slice slice;
  if (!bytes.DumpToSingleSlice(&slice).ok()) {
    return absl::InternalError("cannot read the request");
  }
  const absl::string_view wire(reinterpret_cast<const char*>(slice.begin()),
                               slice.size());
  ASSIGN_OR_RETURN(const std::vector<FieldViolation> violations,
                   FindInvalidUtf8(*out->GetDescriptor(), wire));
  if (!violations.empty()) return InvalidRequestError(violations);
  if (!out->ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request is not a valid ", out->GetDescriptor()->full_name()));
  }
  return absl::OkStatus();
}

absl::Status Encode(const google::protobuf::Message& message,
                    grpc::ByteBuffer* out) {
  bool own_buffer = false;
  const grpc::Status s = grpc::GenericSerialize<grpc::ProtoBufferWriter,
                                                google::protobuf::Message>(
      message, out, &own_buffer);
  if (!s.ok()) return absl::InternalError("cannot serialize the response");
  return absl::OkStatus();
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000);
  out->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
}

std::string Millis(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleMilliseconds(d));
}

// Where the windows that refused an issue are configured, for the
// caller's message: [limits], or the tenant's own table.
std::string LimitKey(const Config& config, const Caller& caller,
                     absl::string_view key) {
  if (config.tenants.empty()) return absl::StrCat("limits.", key);
  return absl::StrCat("tenants.", caller.tenant, ".", key, " or limits.", key);
}

std::string StatusName(const absl::Status& status) {
  return status.ok() ? "ok" : absl::StatusCodeToString(status.code());
}

}  // namespace

std::string EncodePayload(const DeliveryPayload& payload) {
  nlohmann::json json = {{"to", payload.recipient},
                         {"code", payload.code},
                         {"locale", payload.locale},
                         {"values", payload.values}};
  return json.dump();
}

absl::StatusOr<DeliveryPayload> DecodePayload(std::string_view text) {
  const nlohmann::json json =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("to") || !json["to"].is_string() ||
      !json.contains("code") || !json["code"].is_string() ||
      !json.contains("locale") || !json["locale"].is_string() ||
      !json.contains("values") || !json["values"].is_object()) {
    return absl::DataLossError("delivery payload is malformed");
  }
  DeliveryPayload payload;
  payload.recipient = json["to"].get<std::string>();
  payload.code = json["code"].get<std::string>();
  payload.locale = json["locale"].get<std::string>();
  for (const auto& [key, value] : json["values"].items()) {
    if (!value.is_string()) {
      return absl::DataLossError("delivery payload is malformed");
    }
    payload.values[key] = value.get<std::string>();
  }
  return payload;
}

std::string RequestFingerprint(const v1::IssueCodeRequest& request) {
  // Length-prefixed fields, so no two requests share a message.
  std::string message;
  const auto add = [&message](std::string_view field) {
    absl::StrAppend(&message, field.size(), ":");
    message.append(field);
  };
  // Called for valid requests only; a refused address has no key.
  add(ParseRecipient(request.recipient()).value_or(request.recipient()));
  add(request.purpose());
  add(request.locale());
  add(request.client_ip());
  const std::map<std::string, std::string> values(
      request.template_values().begin(), request.template_values().end());
  for (const auto& [key, value] : values) {
    add(key);
    add(value);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(message.data(), message.size(), digest, &size, EVP_sha256(),
             nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

AuthCodeServiceImpl::AuthCodeServiceImpl(const Config* config,
                                         const Callers* callers, Store* store,
                                         const CodeHasher* hasher,
                                         const SecretBox* outbox,
                                         ServerMetrics* metrics,
                                         RandomSource random)
    : config_(config),
      callers_(callers),
      store_(store),
      hasher_(hasher),
      outbox_(outbox),
      metrics_(metrics),
      random_(std::move(random)),
      executor_(std::make_unique<RpcExecutor>(
          config->database.pool_size,
          kQueuedCallsPerThread * config->database.pool_size)) {}

template <typename Response>
grpc::ServerUnaryReactor* AuthCodeServiceImpl::Dispatch(
    RpcMethod method, grpc::CallbackServerContext* context,
    const grpc::ByteBuffer* request, grpc::ByteBuffer* response,
    absl::StatusOr<Response> (AuthCodeServiceImpl::*handle)(
        const grpc::ServerContextBase&, const grpc::ByteBuffer&,
        const std::string&)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Every answer goes through here, so every call is counted once.
  const absl::Time arrived = absl::Now();
  const auto finish = [this, reactor, method,
                       arrived](const grpc::Status& status) {
    metrics_->RecordRpc(method, status.error_code(), absl::Now() - arrived);
    reactor->Finish(status);
  };
  std::string request_id = RequestId(*context);
  context->AddInitialMetadata(kRequestIdHeader, request_id);
  const bool queued =
      executor_->Submit([=, request_id = std::move(request_id)] {
        // A call whose caller gave up while it waited is not worth a query.
        if (context->IsCancelled()) {
          finish(grpc::Status(grpc::StatusCode::CANCELLED,
                              "the call was cancelled"));
          return;
        }
        if (std::chrono::system_clock::now() > context->deadline()) {
          finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                              "the deadline passed while the call was queued"));
          return;
        }
        absl::StatusOr<Response> result =
            (this->*handle)(*context, *request, request_id);
        absl::Status status = result.status();
        if (status.ok()) status = Encode(*result, response);
        finish(ToGrpcStatus(status));
      });
  if (!queued) {
    log::Warn("rpc.overloaded",
              {{"note",
                "more calls are waiting than the executor queues; "
                "answering UNAVAILABLE"}});
    finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the server is overloaded; retry later"));
  }
  return reactor;
}

std::string AuthCodeServiceImpl::RequestId(
    const grpc::ServerContextBase& context) const {
  const auto given = context.client_metadata().find(kRequestIdHeader);
  if (given != context.client_metadata().end() &&
      IsRequestIdToken(
          absl::string_view(given->second.data(), given->second.size()))) {
    return std::string(given->second.data(), given->second.size());
  }
  uint8_t bytes[12];
  if (!random_(bytes, sizeof(bytes))) return "unknown";
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

grpc::ServerUnaryReactor* AuthCodeServiceImpl::IssueCode(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Dispatch(RpcMethod::kIssueCode, context, request, response,
                  &AuthCodeServiceImpl::HandleIssue);
}

grpc::ServerUnaryReactor* AuthCodeServiceImpl::VerifyCode(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Dispatch(RpcMethod::kVerifyCode, context, request, response,
                  &AuthCodeServiceImpl::HandleVerify);
}

grpc::ServerUnaryReactor* AuthCodeServiceImpl::GetDelivery(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Dispatch(RpcMethod::kGetDelivery, context, request, response,
                  &AuthCodeServiceImpl::HandleDelivery);
}

absl::StatusOr<v1::IssueCodeResponse> AuthCodeServiceImpl::HandleIssue(
    const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
    const std::string& request_id) {
  const absl::Time start = absl::Now();
  v1::IssueCodeRequest request;
  const absl::StatusOr<Caller> caller = callers_->Identify(context);
  absl::Status decoded = caller.status();
  if (decoded.ok()) decoded = Decode(bytes, &request);
  absl::StatusOr<v1::IssueCodeResponse> result =
      decoded.ok() ? Issue(*caller, request) : decoded;
  log::Info("rpc.issue_code",
            {{"request_id", request_id},
             {"tenant", caller.ok() ? caller->tenant : ""},
             {"purpose", request.purpose()},
             {"recipient", log::MaskEmail(request.recipient())},
             {"code_id", result.ok() ? result->code_id() : ""},
             {"status", StatusName(result.status())},
             {"latency_ms", Millis(absl::Now() - start)}});
  return result;
}

absl::StatusOr<v1::VerifyCodeResponse> AuthCodeServiceImpl::HandleVerify(
    const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
    const std::string& request_id) {
  const absl::Time start = absl::Now();
  v1::VerifyCodeRequest request;
  const absl::StatusOr<Caller> caller = callers_->Identify(context);
  absl::Status decoded = caller.status();
  if (decoded.ok()) decoded = Decode(bytes, &request);
  absl::StatusOr<v1::VerifyCodeResponse> result =
      decoded.ok() ? Verify(*caller, request) : decoded;
  log::Info(
      "rpc.verify_code",
      {{"request_id", request_id},
       {"tenant", caller.ok() ? caller->tenant : ""},
       {"purpose", request.purpose()},
       {"recipient", log::MaskEmail(request.recipient())},
       {"status", StatusName(result.status())},
       {"outcome", result.ok() ? VerifyOutcomeName(result->outcome()) : ""},
       {"latency_ms", Millis(absl::Now() - start)}});
  return result;
}

absl::StatusOr<v1::IssueCodeResponse> AuthCodeServiceImpl::Issue(
    const Caller& caller, const v1::IssueCodeRequest& request) {
  const std::vector<FieldViolation> violations = ValidateIssueRequest(request);
  if (!violations.empty()) return InvalidRequestError(violations);
  RETURN_IF_ERROR(caller.CheckPurpose(request.purpose()));

  const std::string& tenant = caller.tenant;
  ASSIGN_OR_RETURN(const Recipient parsed,
                   ParseRecipientAddress(request.recipient()));
  const std::string& recipient = parsed.key;
  ASSIGN_OR_RETURN(const std::string code,
                   GenerateCode(config_->codes.length, random_));
  ASSIGN_OR_RETURN(const std::string code_id, NewCodeId(random_));

  DeliveryPayload payload{parsed.mailbox, code, request.locale(), {}};
  payload.values.insert(request.template_values().begin(),
                        request.template_values().end());
  ASSIGN_OR_RETURN(Sealed sealed,
                   outbox_->Seal(EncodePayload(payload), code_id));

  IssueParams params;
  params.tenant = tenant;
  params.purpose = request.purpose();
  params.recipient = recipient;
  params.code_id = code_id;
  params.hash =
      hasher_->HashCurrent({tenant, request.purpose(), recipient}, code);
  params.ttl = config_->codes.ttl;
  params.max_attempts = config_->codes.max_attempts;
  params.windows = caller.policy->issue;
  params.payload = std::move(sealed.data);
  params.payload_key_id = sealed.key_id;
  params.job_max_attempts = config_->delivery.max_attempts;
  if (!request.idempotency_key().empty()) {
    params.idempotency_key = request.idempotency_key();
    params.fingerprint = RequestFingerprint(request);
  }
  params.client_ip =
      CountedClientIp(request.client_ip(), config_->limits.ipv6_prefix);
  params.ip_windows = caller.policy->ip_issue;
  params.ceiling = caller.policy->ceiling;
  ASSIGN_OR_RETURN(const IssueResult issued, store_->Issue(params));
  metrics_->CountIssueRefusal(issued.status);

  switch (issued.status) {
    case IssueResult::Status::kRateLimited:
      return ResourceExhaustedError(
          absl::StrCat("too many codes issued for this recipient and "
                       "purpose (",
                       LimitKey(*config_, caller, "issue"), "); retry in ",
                       absl::FormatDuration(absl::Ceil(
                           issued.retry_at - issued.now, absl::Seconds(1)))),
          issued.retry_at - issued.now);
    case IssueResult::Status::kIpLimited:
      return ResourceExhaustedError(
          absl::StrCat("too many codes issued for this client_ip (",
                       LimitKey(*config_, caller, "ip_issue"), "); retry in ",
                       absl::FormatDuration(absl::Ceil(
                           issued.retry_at - issued.now, absl::Seconds(1)))),
          issued.retry_at - issued.now);
    case IssueResult::Status::kTenantLimited:
      return ResourceExhaustedError(
          absl::StrCat("this tenant's ceiling of codes is reached (",
                       LimitKey(*config_, caller, "ceiling"), "); retry in ",
                       absl::FormatDuration(absl::Ceil(
                           issued.retry_at - issued.now, absl::Seconds(1)))),
          issued.retry_at - issued.now);
    case IssueResult::Status::kLocked:
      return ResourceExhaustedError(
          "this recipient is locked for this purpose after too many failed "
          "guesses (limits.max_failures)",
          issued.retry_at - issued.now);
    case IssueResult::Status::kKeyMismatch:
      return InvalidRequestError(
          {{"idempotency_key",
            "was already used for a different request; use a new key for "
            "a new request"}});
    case IssueResult::Status::kIssued:
    case IssueResult::Status::kReplayed:
      break;
  }

  v1::IssueCodeResponse response;
  response.set_code_id(issued.code_id);
  SetTimestamp(issued.expires_at, response.mutable_expires_at());
  SetTimestamp(issued.resend_after, response.mutable_resend_after());
  return response;
}

absl::StatusOr<v1::GetDeliveryResponse> AuthCodeServiceImpl::HandleDelivery(
    const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
    const std::string& request_id) {
  const absl::Time start = absl::Now();
  v1::GetDeliveryRequest request;
  const absl::StatusOr<Caller> caller = callers_->Identify(context);
  absl::Status decoded = caller.status();
  if (decoded.ok()) decoded = Decode(bytes, &request);
  absl::StatusOr<v1::GetDeliveryResponse> result =
      decoded.ok() ? Delivery(*caller, request) : decoded;
  // Callers poll this: its answers are debug lines, its refusals info.
  const bool answered =
      result.ok() || result.status().code() == absl::StatusCode::kNotFound;
  log::Event(answered ? spdlog::level::debug : spdlog::level::info,
             "rpc.get_delivery",
             {{"request_id", request_id},
              {"tenant", caller.ok() ? caller->tenant : ""},
              {"code_id", IsCodeId(request.code_id()) ? request.code_id() : ""},
              {"status", StatusName(result.status())},
              {"latency_ms", Millis(absl::Now() - start)}});
  return result;
}

absl::StatusOr<v1::GetDeliveryResponse> AuthCodeServiceImpl::Delivery(
    const Caller& caller, const v1::GetDeliveryRequest& request) {
  if (!IsCodeId(request.code_id())) {
    return InvalidRequestError(
        {{"code_id", "must be a code_id as IssueCode returns it (a UUID)"}});
  }
  ASSIGN_OR_RETURN(const DeliveryStatus status,
                   store_->GetDelivery(caller.tenant, request.code_id()));
  static const std::map<std::string, v1::DeliveryState> kStates = {
      {"queued", v1::DELIVERY_STATE_QUEUED},
      {"sending", v1::DELIVERY_STATE_SENDING},
      {"sent", v1::DELIVERY_STATE_SENT},
      {"failed", v1::DELIVERY_STATE_FAILED},
      {"superseded", v1::DELIVERY_STATE_SUPERSEDED},
  };
  v1::GetDeliveryResponse response;
  response.set_code_id(request.code_id());
  auto state = kStates.find(status.state);
  response.set_state(state == kStates.end() ? v1::DELIVERY_STATE_UNSPECIFIED
                                            : state->second);
  response.set_attempts(status.attempts);
  response.set_provider(status.provider);
  response.set_provider_message_id(status.provider_message_id);
  response.set_last_error(status.last_error);
  SetTimestamp(status.created_at, response.mutable_created_at());
  SetTimestamp(status.updated_at, response.mutable_updated_at());
  if (status.next_attempt_at != absl::InfinitePast()) {
    SetTimestamp(status.next_attempt_at, response.mutable_next_attempt_at());
  }
  return response;
}

absl::StatusOr<v1::VerifyCodeResponse> AuthCodeServiceImpl::Verify(
    const Caller& caller, const v1::VerifyCodeRequest& request) {
  const std::vector<FieldViolation> violations = ValidateVerifyRequest(request);
  if (!violations.empty()) return InvalidRequestError(violations);
  RETURN_IF_ERROR(caller.CheckPurpose(request.purpose()));

  const std::string& tenant = caller.tenant;
  ASSIGN_OR_RETURN(const std::string recipient,
                   ParseRecipient(request.recipient()));
  VerifyParams params;
  params.tenant = tenant;
  params.purpose = request.purpose();
  params.recipient = recipient;
  params.candidates =
      hasher_->HashAll({tenant, request.purpose(), recipient}, request.code());
  params.max_failures = config_->limits.max_failures;
  params.lockout = config_->limits.lockout;
  params.forget_failures_after = config_->limits.forget_failures_after;
  ASSIGN_OR_RETURN(const VerifyResult verified, store_->Verify(params));

  v1::VerifyCodeResponse response;
  response.set_attempts_left(verified.attempts_left);
  switch (verified.outcome) {
    case VerifyResult::Outcome::kVerified:
      response.set_outcome(v1::VERIFY_OUTCOME_VERIFIED);
      break;
    case VerifyResult::Outcome::kWrong:
      response.set_outcome(v1::VERIFY_OUTCOME_WRONG_CODE);
      break;
    case VerifyResult::Outcome::kExpired:
      response.set_outcome(v1::VERIFY_OUTCOME_EXPIRED);
      break;
    case VerifyResult::Outcome::kNoCode:
      response.set_outcome(v1::VERIFY_OUTCOME_NO_ACTIVE_CODE);
      break;
    case VerifyResult::Outcome::kExhausted:
      response.set_outcome(v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS);
      break;
    case VerifyResult::Outcome::kLocked:
      response.set_outcome(v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS);
      SetTimestamp(verified.locked_until, response.mutable_locked_until());
      break;
    case VerifyResult::Outcome::kUnknownKey:
      // The code can never verify: the key it was hashed with is gone.
      log::Warn("code.key_retired",
                {{"key_id", verified.key_id}, {"purpose", request.purpose()}});
      response.set_outcome(v1::VERIFY_OUTCOME_EXPIRED);
      break;
  }
  metrics_->CountVerifyOutcome(response.outcome());
  return response;
}

}  // namespace authcode
