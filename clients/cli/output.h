// How authcode-cli reports: results and failures, for people or for
// scripts (--json).
//
// For people, a result is one line on stdout of the form
// `issued code_id=... expires_at=...`, timestamps in RFC 3339 (UTC).
// With --json, stdout gets exactly one JSON object per run: the response
// with the proto's snake_case field names and every scalar field present,
// or {"error": {...}}. Failures always get a line on stderr as well, so a
// person watching a script still sees why it stopped.
#ifndef AUTHCODE_CLIENTS_CLI_OUTPUT_H_
#define AUTHCODE_CLIENTS_CLI_OUTPUT_H_

#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "authcode/v1/authcode.pb.h"
#include "clients/cli/call_error.h"
#include "grpc/health/v1/health.pb.h"

namespace authcode::cli {

class Reporter {
 public:
  // Writes to `out` and `err`, which must outlive the reporter.
  Reporter(bool json, std::ostream& out, std::ostream& err);

  void Issued(const v1::IssueCodeResponse& response);
  // Also used for rejections: they are results, not failures.
  void Verified(const v1::VerifyCodeResponse& response);
  void Delivery(const v1::GetDeliveryResponse& response);
  void Health(const grpc::health::v1::HealthCheckResponse& response);

  // `command` is the subcommand that failed, e.g. "issue".
  void CallFailed(absl::string_view command, const CallError& error);
  void UsageError(absl::string_view message);

 private:
  void Result(const google::protobuf::Message& response,
              const std::string& line);

  bool json_;
  std::ostream& out_;
  std::ostream& err_;
};

// The pieces Reporter writes, one line or object each, no newline.
std::string IssuedLine(const v1::IssueCodeResponse& response);
std::string VerifiedLine(const v1::VerifyCodeResponse& response);
std::string DeliveryLine(const v1::GetDeliveryResponse& response);
std::string HealthLine(const grpc::health::v1::HealthCheckResponse& response);
std::string ResponseJson(const google::protobuf::Message& response);
std::string ErrorJson(const CallError& error);

}  // namespace authcode::cli

#endif  // AUTHCODE_CLIENTS_CLI_OUTPUT_H_
