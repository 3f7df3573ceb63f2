#include "bench/load/caller.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace authcode::bench {
namespace {

// Far above any latency the service should show: a call this slow counts
// as DEADLINE_EXCEEDED rather than holding its slot.
constexpr auto kCallDeadline = std::chrono::seconds(30);

void MergeCalls(CallStats& into, CallStats from) {
  into.micros.insert(into.micros.end(), from.micros.begin(), from.micros.end());
  for (const auto& [code, n] : from.failed) into.failed[code] += n;
}

std::string WrongCode(const std::string& code) {
  std::string wrong = code;
  wrong.back() = static_cast<char>('0' + (wrong.back() - '0' + 1) % 10);
  return wrong;
}

}  // namespace

void Stats::Merge(Stats other) {
  MergeCalls(issue, std::move(other.issue));
  MergeCalls(verify, std::move(other.verify));
  for (int g = 0; g < kGuessKinds; ++g) {
    for (int o = 0; o < kOutcomes; ++o) outcomes[g][o] += other.outcomes[g][o];
  }
}

struct Caller::Call {
  bool is_issue = false;
  Guess guess = kBlindGuess;
  std::optional<CodePair> pair;  // The pool's pair a verify call guesses on.
  Clock::time_point started;
  std::unique_ptr<grpc::ClientContext> context;
  grpc::Status status;
  // Each reader is declared after `context`, so it is destroyed first:
  // it lives in the arena of the call that the context owns.
  v1::IssueCodeRequest issue_request;
  v1::IssueCodeResponse issue_response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::IssueCodeResponse>>
      issue_reader;
  v1::VerifyCodeRequest verify_request;
  v1::VerifyCodeResponse verify_response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::VerifyCodeResponse>>
      verify_reader;
};

Caller::Caller(std::shared_ptr<grpc::Channel> channel, const Workload& workload,
               const PhaseLimits& limits, PhaseShared& shared, int slots,
               uint64_t seed)
    : stub_(v1::AuthCodeService::NewStub(std::move(channel))),
      workload_(workload),
      limits_(limits),
      shared_(shared),
      slots_(slots),
      rng_(seed) {}

Stats Caller::Run() {
  std::vector<Call> calls(static_cast<size_t>(slots_));
  int in_flight = 0;
  for (Call& call : calls) {
    call.issue_request.set_purpose(workload_.purpose);
    (*call.issue_request.mutable_template_values())["app_name"] = "Bench";
    call.verify_request.set_purpose(workload_.purpose);
    if (Start(call)) ++in_flight;
  }

  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && cq_.Next(&tag, &ok)) {
    Call& call = *static_cast<Call*>(tag);
    Complete(call);
    --in_flight;
    if (Start(call)) ++in_flight;
  }
  cq_.Shutdown();
  while (cq_.Next(&tag, &ok)) {
  }
  return std::move(stats_);
}

bool Caller::Start(Call& call) {
  if (Clock::now() >= limits_.stop_at) return false;
  if (limits_.max_requests > 0 &&
      shared_.started.fetch_add(1) >= limits_.max_requests) {
    return false;
  }

  call.is_issue =
      workload_.mode == Mode::kIssue ||
      (workload_.mode == Mode::kMixed &&
       std::uniform_real_distribution<double>()(rng_) < workload_.issue_share);
  // The readers live in the previous call's arena, which goes with its
  // context: they must go first.
  call.issue_reader.reset();
  call.verify_reader.reset();
  call.context = std::make_unique<grpc::ClientContext>();
  call.context->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  call.started = Clock::now();
  if (call.is_issue) {
    StartIssue(call);
  } else {
    StartVerify(call);
  }
  return true;
}

void Caller::StartIssue(Call& call) {
  const uint32_t n = static_cast<uint32_t>(rng_() % workload_.recipients);
  call.issue_request.set_recipient(absl::StrCat("u", n, "@", workload_.domain));
  call.issue_reader = stub_->PrepareAsyncIssueCode(call.context.get(),
                                                   call.issue_request, &cq_);
  call.issue_reader->StartCall();
  call.issue_reader->Finish(&call.issue_response, &call.status, &call);
}

void Caller::StartVerify(Call& call) {
  call.pair = shared_.pool->Take(rng_);
  uint32_t n = 0;
  std::string code;
  if (call.pair.has_value()) {
    n = call.pair->recipient;
    const bool right =
        std::uniform_real_distribution<double>()(rng_) < workload_.right_share;
    call.guess = right ? kRightCode : kWrongCode;
    code = right ? call.pair->code : WrongCode(call.pair->code);
  } else {
    n = static_cast<uint32_t>(rng_() % workload_.recipients);
    call.guess = kBlindGuess;
    code = absl::StrCat(1000000 + rng_() % 1000000).substr(1);
  }
  call.verify_request.set_recipient(
      absl::StrCat("u", n, "@", workload_.domain));
  call.verify_request.set_code(code);
  call.verify_reader = stub_->PrepareAsyncVerifyCode(call.context.get(),
                                                     call.verify_request, &cq_);
  call.verify_reader->StartCall();
  call.verify_reader->Finish(&call.verify_response, &call.status, &call);
}

void Caller::Complete(Call& call) {
  const Clock::time_point now = Clock::now();
  const bool measured = now >= limits_.measure_from;
  const auto micros = static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now - call.started)
          .count());

  if (call.is_issue) {
    if (call.status.ok()) {
      shared_.issued_ok->fetch_add(1);
      if (measured) stats_.issue.micros.push_back(micros);
    } else {
      ++stats_.issue.failed[call.status.error_code()];
    }
  } else {
    CompleteVerify(call, measured, micros);
  }

  ++shared_.completed;
  if (shared_.on_completed) shared_.on_completed();
}

void Caller::CompleteVerify(Call& call, bool measured, uint32_t micros) {
  std::optional<CodePair> pair = std::move(call.pair);
  call.pair.reset();
  if (!call.status.ok()) {
    // What became of the code is unknown: it leaves the pool.
    ++stats_.verify.failed[call.status.error_code()];
    return;
  }

  const int outcome = call.verify_response.outcome();
  if (measured) {
    stats_.verify.micros.push_back(micros);
    if (outcome >= 0 && outcome < kOutcomes) {
      ++stats_.outcomes[call.guess][outcome];
    }
  }
  if (pair.has_value() && call.guess == kWrongCode &&
      outcome == v1::VERIFY_OUTCOME_WRONG_CODE &&
      call.verify_response.attempts_left() > 0) {
    shared_.pool->Return(*std::move(pair));
  }
}

}  // namespace authcode::bench
