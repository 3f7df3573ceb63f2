// What the load tool measured in one run, and how it is printed: as text
// for a reader and as JSON for scripts/load.sh, which builds the results
// table from it.
//
// Thread safety: plain data and free functions.
#ifndef AUTHCODE_BENCH_LOAD_REPORT_H_
#define AUTHCODE_BENCH_LOAD_REPORT_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "bench/load/caller.h"
#include "nlohmann/json.hpp"

namespace authcode::bench {

struct ProcMemory {
  long rss_kb = 0;  // VmRSS; 0 when unknown.
  long hwm_kb = 0;  // VmHWM, the peak of VmRSS.
};

// The memory of process `pid` from /proc/PID/status; zeros when `pid` is 0
// or cannot be read.
ProcMemory ReadProcMemory(int pid);

struct Drain {
  double seconds = 0;
  uint64_t undelivered = 0;
};

struct ServerMemory {
  long rss_start_kb = 0;  // When the measured window opened.
  long rss_end_kb = 0;    // When it closed.
  long rss_min_kb = 0;    // Of samples taken every second in the window.
  long rss_max_kb = 0;
  long hwm_kb = 0;  // When the window closed.
  // (calls completed in the run, prefill included; VmRSS) at each --rss-at
  // count reached.
  std::vector<std::pair<uint64_t, long>> at_requests;
};

struct Delivery {
  uint64_t delivered_in_window = 0;  // Mails the sink took in the window.
  // Codes issued OK in this run (warm-up and prefill too) whose mail had
  // not arrived when the window closed.
  uint64_t behind_at_end = 0;
  double drain_seconds = 0;  // Then spent waiting for those.
  uint64_t undelivered = 0;  // Still missing after that.
  uint64_t refused = 0;      // Mails the sink could not read.
};

struct PhaseResult {
  double seconds = 0;     // The measured window.
  uint64_t requests = 0;  // Calls completed, warm-up included.
  Stats stats;
  Delivery delivery;
  ServerMemory memory;
  uint64_t prefill_requests = 0;  // Calls completed by the prefill.
  double prefill_seconds = 0;
  uint64_t prefill_failed = 0;
  uint64_t pool_size = 0;  // Codes known at the end.
};

struct RunInfo {
  std::string mode;  // "issue", "verify", "mixed", or "prefill" (only).
  int concurrency = 0;
  int threads = 0;
  int server_pid = 0;
};

uint64_t CountFailed(const Stats& stats);

void PrintReport(const RunInfo& info, const PhaseResult& result,
                 std::ostream& out);
nlohmann::json ReportJson(const RunInfo& info, const PhaseResult& result);

// True when the run counts as a success: some call answered OK in the
// measured window (a prefill-only run has none), none failed, and the sink
// read every mail. Says why not on `why`.
bool Verdict(const RunInfo& info, const PhaseResult& result, std::ostream& why);

}  // namespace authcode::bench

#endif  // AUTHCODE_BENCH_LOAD_REPORT_H_
