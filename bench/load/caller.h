// One client thread of the load tool: a CompletionQueue with a fixed number
// of IssueCode/VerifyCode calls in flight on one channel, each started
// again as soon as it completes, until the phase ends.
//
// Issue calls go to "u<N>@<domain>" with N uniform in [0, recipients).
// Verify calls take a (recipient, code) pair from the CodePool and send the
// right code with probability right_share, else the same code with its
// last digit changed; with the pool empty they guess a random code for a
// random recipient ("blind"). A pair goes back to the pool only after a
// wrong guess that left attempts.
//
// Thread safety: a Caller is used by one thread; what it shares with the
// other callers of a phase (PhaseShared, the pool) is thread-safe.
#ifndef AUTHCODE_BENCH_LOAD_CALLER_H_
#define AUTHCODE_BENCH_LOAD_CALLER_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "authcode/v1/authcode.grpc.pb.h"
#include "bench/load/code_pool.h"
#include "grpcpp/grpcpp.h"

namespace authcode::bench {

using Clock = std::chrono::steady_clock;

enum class Mode { kIssue, kVerify, kMixed };

// How a verify call chose its code.
enum Guess { kRightCode = 0, kWrongCode = 1, kBlindGuess = 2, kGuessKinds = 3 };
// v1::VerifyOutcome values are 0 to 5.
constexpr int kOutcomes = 6;

struct Workload {
  Mode mode = Mode::kIssue;
  double issue_share = 0.35;  // Of calls in kMixed.
  double right_share = 0.5;   // Of verify calls with a known code.
  uint32_t recipients = 1000000;
  std::string domain = "bench.example";
  std::string purpose = "login";
};

struct PhaseLimits {
  // Calls completing before this are not recorded (warm-up); failures are
  // counted whenever they happen.
  Clock::time_point measure_from;
  // No call starts at or after this.
  Clock::time_point stop_at;
  // No call starts once this many have started in the phase (0: no limit).
  uint64_t max_requests = 0;
};

// What the callers of one phase share.
struct PhaseShared {
  CodePool* pool = nullptr;
  // IssueCode calls answered OK, in every phase of the run.
  std::atomic<uint64_t>* issued_ok = nullptr;
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> completed{0};
  // Called after each completion; may be empty.
  std::function<void()> on_completed;
};

struct CallStats {
  std::vector<uint32_t> micros;  // Latency of each measured OK call.
  std::map<grpc::StatusCode, uint64_t> failed;
};

struct Stats {
  CallStats issue;
  CallStats verify;
  // Measured verify calls by Guess and v1::VerifyOutcome.
  std::array<std::array<uint64_t, kOutcomes>, kGuessKinds> outcomes{};

  void Merge(Stats other);
};

class Caller {
 public:
  Caller(std::shared_ptr<grpc::Channel> channel, const Workload& workload,
         const PhaseLimits& limits, PhaseShared& shared, int slots,
         uint64_t seed);

  // Runs the calls until the phase ends and the last one completed.
  Stats Run();

 private:
  struct Call;

  bool Start(Call& call);
  void StartIssue(Call& call);
  void StartVerify(Call& call);
  void Complete(Call& call);
  void CompleteVerify(Call& call, bool measured, uint32_t micros);

  const std::unique_ptr<v1::AuthCodeService::Stub> stub_;
  const Workload& workload_;
  const PhaseLimits& limits_;
  PhaseShared& shared_;
  const int slots_;
  std::mt19937_64 rng_;
  grpc::CompletionQueue cq_;
  Stats stats_;
};

}  // namespace authcode::bench

#endif  // AUTHCODE_BENCH_LOAD_CALLER_H_
