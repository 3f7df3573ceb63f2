#include "clients/cli/commands.h"

#include "clients/cli/call_error.h"

namespace authcode::cli {
namespace {

v1::IssueCodeRequest IssueRequest(const IssueArgs& args) {
  v1::IssueCodeRequest request;
  request.set_recipient(args.recipient);
  request.set_purpose(args.purpose);
  request.set_locale(args.locale);
  request.mutable_template_values()->insert(args.template_values.begin(),
                                            args.template_values.end());
  request.set_client_ip(args.client_ip);
  request.set_idempotency_key(args.idempotency_key);
  return request;
}

v1::VerifyCodeRequest VerifyRequest(const VerifyArgs& args) {
  v1::VerifyCodeRequest request;
  request.set_recipient(args.recipient);
  request.set_purpose(args.purpose);
  request.set_code(args.code);
  return request;
}

ExitCode ReportFailure(const char* command, const grpc::Status& status,
                       Reporter& reporter) {
  const CallError error = DescribeFailure(status);
  reporter.CallFailed(command, error);
  return ExitCodeForFailure(error.code);
}

ExitCode Issue(const IssueArgs& args, const CallSettings& call,
               v1::AuthCodeService::StubInterface& stub, Reporter& reporter) {
  grpc::ClientContext context;
  call.Apply(context);
  v1::IssueCodeResponse response;
  const grpc::Status status =
      stub.IssueCode(&context, IssueRequest(args), &response);
  if (!status.ok()) return ReportFailure("issue", status, reporter);

  reporter.Issued(response);
  return kExitOk;
}

ExitCode Verify(const VerifyArgs& args, const CallSettings& call,
                v1::AuthCodeService::StubInterface& stub, Reporter& reporter) {
  grpc::ClientContext context;
  call.Apply(context);
  v1::VerifyCodeResponse response;
  const grpc::Status status =
      stub.VerifyCode(&context, VerifyRequest(args), &response);
  if (!status.ok()) return ReportFailure("verify", status, reporter);

  reporter.Verified(response);
  return response.outcome() == v1::VERIFY_OUTCOME_VERIFIED ? kExitOk
                                                           : kExitRejected;
}

ExitCode ShowDelivery(const StatusArgs& args, const CallSettings& call,
                      v1::AuthCodeService::StubInterface& stub,
                      Reporter& reporter) {
  grpc::ClientContext context;
  call.Apply(context);
  v1::GetDeliveryRequest request;
  request.set_code_id(args.code_id);
  v1::GetDeliveryResponse response;
  const grpc::Status status = stub.GetDelivery(&context, request, &response);
  if (!status.ok()) return ReportFailure("status", status, reporter);

  reporter.Delivery(response);
  return kExitOk;
}

ExitCode CheckHealth(const HealthArgs& args, const CallSettings& call,
                     grpc::health::v1::Health::StubInterface& stub,
                     Reporter& reporter) {
  grpc::ClientContext context;
  call.Apply(context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(args.service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub.Check(&context, request, &response);
  if (!status.ok()) return ReportFailure("health", status, reporter);

  reporter.Health(response);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitRejected;
}

}  // namespace

ExitCode RunCommand(const CliOptions& options, const CallSettings& call,
                    const Stubs& stubs, Reporter& reporter) {
  switch (options.command) {
    case Command::kIssue:
      return Issue(options.issue, call, stubs.api, reporter);
    case Command::kVerify:
      return Verify(options.verify, call, stubs.api, reporter);
    case Command::kStatus:
      return ShowDelivery(options.status, call, stubs.api, reporter);
    case Command::kHealth:
      return CheckHealth(options.health, call, stubs.health, reporter);
  }
  return kExitUsage;  // not reached: the switch covers every command
}

}  // namespace authcode::cli
