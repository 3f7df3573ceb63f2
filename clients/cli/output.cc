#include "clients/cli/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace authcode::cli {
namespace {

using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

constexpr char kProgram[] = "authcode-cli";

// Quotes a value that would otherwise not read back as one key=value field.
std::string FieldValue(const std::string& value) {
  const bool plain =
      !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return c > 0x20 && c < 0x7f && c != '"' && c != '=';
      });
  if (plain) return value;
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

// Appends ` key=value` to `line`, unless `value` is empty.
void AddField(std::string& line, absl::string_view key,
              const std::string& value) {
  if (value.empty()) return;
  absl::StrAppend(&line, " ", key, "=", FieldValue(value));
}

void AddTime(std::string& line, absl::string_view key, bool present,
             const Timestamp& time) {
  if (present) AddField(line, key, TimeUtil::ToString(time));
}

// DELIVERY_STATE_SENT -> "sent"; a number for a state this build does not
// know (a newer server).
std::string StateName(v1::DeliveryState state) {
  const std::string& name = v1::DeliveryState_Name(state);
  if (name.empty()) return std::to_string(static_cast<int>(state));
  return absl::AsciiStrToLower(absl::StripPrefix(name, "DELIVERY_STATE_"));
}

// Compact JSON. Text that is not UTF-8 (a message from a foreign server,
// say) is printed with U+FFFD in place of the bad bytes instead of
// throwing.
std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string AttemptsLeft(int32_t n) {
  return absl::StrCat(n, n == 1 ? " attempt left" : " attempts left");
}

}  // namespace

std::string IssuedLine(const v1::IssueCodeResponse& response) {
  std::string line = "issued";
  AddField(line, "code_id", response.code_id());
  AddTime(line, "expires_at", response.has_expires_at(), response.expires_at());
  AddTime(line, "resend_after", response.has_resend_after(),
          response.resend_after());
  return line;
}

std::string VerifiedLine(const v1::VerifyCodeResponse& response) {
  switch (response.outcome()) {
    case v1::VERIFY_OUTCOME_VERIFIED:
      return "verified";
    case v1::VERIFY_OUTCOME_WRONG_CODE:
      return absl::StrCat("rejected: wrong code (",
                          AttemptsLeft(response.attempts_left()), ")");
    case v1::VERIFY_OUTCOME_EXPIRED:
      return "rejected: code expired";
    case v1::VERIFY_OUTCOME_NO_ACTIVE_CODE:
      return "rejected: no active code";
    case v1::VERIFY_OUTCOME_TOO_MANY_ATTEMPTS:
      if (!response.has_locked_until()) return "rejected: too many attempts";
      return absl::StrCat("rejected: too many attempts (locked until ",
                          TimeUtil::ToString(response.locked_until()), ")");
    default:
      return absl::StrCat("rejected: unknown outcome ",
                          static_cast<int>(response.outcome()));
  }
}

std::string DeliveryLine(const v1::GetDeliveryResponse& response) {
  std::string line = "delivery";
  AddField(line, "code_id", response.code_id());
  AddField(line, "state", StateName(response.state()));
  AddField(line, "attempts", std::to_string(response.attempts()));
  AddField(line, "provider", response.provider());
  AddField(line, "provider_message_id", response.provider_message_id());
  AddField(line, "last_error", response.last_error());
  AddTime(line, "created_at", response.has_created_at(), response.created_at());
  AddTime(line, "updated_at", response.has_updated_at(), response.updated_at());
  AddTime(line, "next_attempt_at", response.has_next_attempt_at(),
          response.next_attempt_at());
  return line;
}

std::string HealthLine(const grpc::health::v1::HealthCheckResponse& response) {
  const std::string& name =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
          response.status());
  return absl::StrCat("health status=",
                      name.empty()
                          ? std::to_string(static_cast<int>(response.status()))
                          : absl::AsciiStrToLower(name));
}

std::string ResponseJson(const google::protobuf::Message& response) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(response, &json, options);
  if (status.ok()) return json;
  // Only a malformed Any can fail, and our responses hold none.
  return Dump({{"error",
                {{"code", "INTERNAL"},
                 {"message", absl::StrCat("cannot print the response as JSON: ",
                                          status.ToString())}}}});
}

std::string ErrorJson(const CallError& error) {
  nlohmann::json body = {{"code", StatusCodeName(error.code)},
                         {"message", error.message}};
  if (error.retry_after_seconds) {
    body["retry_after_seconds"] = *error.retry_after_seconds;
  }
  if (!error.field_violations.empty()) {
    nlohmann::json violations = nlohmann::json::array();
    for (const FieldViolation& v : error.field_violations) {
      violations.push_back(nlohmann::json::object(
          {{"field", v.field}, {"description", v.description}}));
    }
    body["field_violations"] = std::move(violations);
  }
  return Dump({{"error", std::move(body)}});
}

Reporter::Reporter(bool json, std::ostream& out, std::ostream& err)
    : json_(json), out_(out), err_(err) {}

void Reporter::Issued(const v1::IssueCodeResponse& response) {
  Result(response, IssuedLine(response));
}

void Reporter::Verified(const v1::VerifyCodeResponse& response) {
  Result(response, VerifiedLine(response));
}

void Reporter::Delivery(const v1::GetDeliveryResponse& response) {
  Result(response, DeliveryLine(response));
}

void Reporter::Health(const grpc::health::v1::HealthCheckResponse& response) {
  Result(response, HealthLine(response));
}

void Reporter::CallFailed(absl::string_view command, const CallError& error) {
  if (json_) out_ << ErrorJson(error) << std::endl;

  err_ << kProgram << ": " << command
       << " failed: " << StatusCodeName(error.code) << ": " << error.message;
  if (error.retry_after_seconds) {
    err_ << " (retry after " << *error.retry_after_seconds << "s)";
  }
  err_ << "\n";
  // The authcode server spells its violations out in the message; list
  // only those a message leaves out, one per line.
  for (const FieldViolation& v : error.field_violations) {
    const std::string line = absl::StrCat(v.field, ": ", v.description);
    if (!absl::StrContains(error.message, line)) err_ << "  " << line << "\n";
  }
  err_.flush();
}

void Reporter::UsageError(absl::string_view message) {
  if (json_) {
    nlohmann::json error = {{"code", "USAGE"},
                            {"message", std::string(message)}};
    out_ << Dump({{"error", std::move(error)}}) << std::endl;
  }
  err_ << kProgram << ": " << message << "\n"
       << "Run '" << kProgram << " --help' for usage." << std::endl;
}

void Reporter::Result(const google::protobuf::Message& response,
                      const std::string& line) {
  out_ << (json_ ? ResponseJson(response) : line) << std::endl;
}

}  // namespace authcode::cli
