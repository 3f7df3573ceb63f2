#include "server/service.h"

#include <utility>

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/timestamp.pb.h"
#include "nlohmann/json.hpp"
#include "server/address.h"
#include "server/grpc_status.h"
#include "server/log.h"
#include "server/status_macros.h"
#include "server/validation.h"

namespace authcode {
namespace {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000);
  out->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
}

std::string Millis(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleMilliseconds(d));
}

const char* OutcomeName(v1::VerifyOutcome outcome) {
  switch (outcome) {
    case v1::VERIFY_OUTCOME_VERIFIED:
      return "verified";
    case v1::VERIFY_OUTCOME_WRONG_CODE:
      return "wrong_code";
    case v1::VERIFY_OUTCOME_EXPIRED:
      return "expired";
    case v1::VERIFY_OUTCOME_NO_ACTIVE_CODE:
      return "no_active_code";
    case v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS:
      return "too_many_attempts";
    default:
      return "unspecified";
  }
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

AuthCodeServiceImpl::AuthCodeServiceImpl(const Config* config, Store* store,
                                         const CodeHasher* hasher,
                                         const SecretBox* outbox,
                                         RandomSource random)
    : config_(config),
      store_(store),
      hasher_(hasher),
      outbox_(outbox),
      random_(std::move(random)) {}

grpc::Status AuthCodeServiceImpl::IssueCode(grpc::ServerContext*,
                                            const v1::IssueCodeRequest* request,
                                            v1::IssueCodeResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::IssueCodeResponse> result = Issue(*request);
  if (result.ok()) *response = *std::move(result);
  log::Info("rpc.issue_code",
            {{"tenant", config_->default_tenant},
             {"purpose", request->purpose()},
             {"recipient", log::MaskEmail(request->recipient())},
             {"code_id", result.ok() ? response->code_id() : ""},
             {"status", StatusName(result.status())},
             {"latency_ms", Millis(absl::Now() - start)}});
  return ToGrpcStatus(result.status());
}

grpc::Status AuthCodeServiceImpl::VerifyCode(
    grpc::ServerContext*, const v1::VerifyCodeRequest* request,
    v1::VerifyCodeResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::VerifyCodeResponse> result = Verify(*request);
  if (result.ok()) *response = *std::move(result);
  log::Info("rpc.verify_code",
            {{"tenant", config_->default_tenant},
             {"purpose", request->purpose()},
             {"recipient", log::MaskEmail(request->recipient())},
             {"status", StatusName(result.status())},
             {"outcome", result.ok() ? OutcomeName(response->outcome()) : ""},
             {"latency_ms", Millis(absl::Now() - start)}});
  return ToGrpcStatus(result.status());
}

absl::StatusOr<v1::IssueCodeResponse> AuthCodeServiceImpl::Issue(
    const v1::IssueCodeRequest& request) {
  const std::vector<FieldViolation> violations = ValidateIssueRequest(request);
  if (!violations.empty()) return InvalidRequestError(violations);

  const std::string tenant = config_->default_tenant;
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
  params.windows = config_->limits.issue;
  params.payload = std::move(sealed.data);
  params.payload_key_id = sealed.key_id;
  params.job_max_attempts = config_->delivery.max_attempts;
  if (!request.idempotency_key().empty()) {
    params.idempotency_key = request.idempotency_key();
    params.fingerprint = RequestFingerprint(request);
  }
  ASSIGN_OR_RETURN(const IssueResult issued, store_->Issue(params));

  switch (issued.status) {
    case IssueResult::Status::kRateLimited:
      return ResourceExhaustedError(
          absl::StrCat("too many codes issued for this recipient and "
                       "purpose (limits.issue); retry in ",
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

grpc::Status AuthCodeServiceImpl::GetDelivery(
    grpc::ServerContext*, const v1::GetDeliveryRequest* request,
    v1::GetDeliveryResponse* response) {
  absl::StatusOr<v1::GetDeliveryResponse> result = Delivery(*request);
  if (result.ok()) *response = *std::move(result);
  if (!result.ok() && result.status().code() != absl::StatusCode::kNotFound) {
    log::Info("rpc.get_delivery", {{"tenant", config_->default_tenant},
                                   {"status", StatusName(result.status())}});
  }
  return ToGrpcStatus(result.status());
}

absl::StatusOr<v1::GetDeliveryResponse> AuthCodeServiceImpl::Delivery(
    const v1::GetDeliveryRequest& request) {
  if (!IsCodeId(request.code_id())) {
    return InvalidRequestError(
        {{"code_id", "must be a code_id as IssueCode returns it (a UUID)"}});
  }
  ASSIGN_OR_RETURN(
      const DeliveryStatus status,
      store_->GetDelivery(config_->default_tenant, request.code_id()));
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
    const v1::VerifyCodeRequest& request) {
  const std::vector<FieldViolation> violations = ValidateVerifyRequest(request);
  if (!violations.empty()) return InvalidRequestError(violations);

  const std::string tenant = config_->default_tenant;
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
  return response;
}

}  // namespace authcode
