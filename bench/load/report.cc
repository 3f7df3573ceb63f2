#include "bench/load/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace authcode::bench {
namespace {

const char* const kGuessNames[kGuessKinds] = {"right", "wrong", "unknown"};

std::string StatusName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    default:
      return absl::StrCat("status ", static_cast<int>(code));
  }
}

std::string OutcomeName(int outcome) {
  const std::string name =
      v1::VerifyOutcome_Name(static_cast<v1::VerifyOutcome>(outcome));
  return std::string(absl::StripPrefix(name, "VERIFY_OUTCOME_"));
}

// Nearest-rank percentile of sorted values, in milliseconds; 0 if none.
double PercentileMs(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(p * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1] / 1000.0;
}

std::string Fixed(double value, int digits = 1) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

struct Summary {
  uint64_t ok = 0;
  double per_second = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

Summary Summarize(const CallStats& calls, double seconds) {
  std::vector<uint32_t> sorted = calls.micros;
  std::sort(sorted.begin(), sorted.end());
  Summary s;
  s.ok = sorted.size();
  s.per_second = seconds > 0 ? s.ok / seconds : 0;
  s.p50 = PercentileMs(sorted, 0.50);
  s.p90 = PercentileMs(sorted, 0.90);
  s.p99 = PercentileMs(sorted, 0.99);
  s.max = PercentileMs(sorted, 1.0);
  return s;
}

void PrintCalls(const char* name, const CallStats& calls, double seconds,
                std::ostream& out) {
  const Summary s = Summarize(calls, seconds);
  out << name << s.ok << " OK, " << Fixed(s.per_second) << "/s; latency p50 "
      << Fixed(s.p50) << " ms, p90 " << Fixed(s.p90) << " ms, p99 "
      << Fixed(s.p99) << " ms, max " << Fixed(s.max) << " ms; failed:";
  if (calls.failed.empty()) out << " none";
  for (const auto& [code, n] : calls.failed) {
    out << " " << StatusName(code) << " " << n;
  }
  out << "\n";
}

void PrintOutcomes(const Stats& stats, std::ostream& out) {
  out << "  outcomes:";
  for (int g = 0; g < kGuessKinds; ++g) {
    std::string line;
    for (int o = 0; o < kOutcomes; ++o) {
      if (stats.outcomes[g][o] == 0) continue;
      absl::StrAppend(&line, line.empty() ? "" : ", ", OutcomeName(o), " ",
                      stats.outcomes[g][o]);
    }
    if (!line.empty()) out << " " << kGuessNames[g] << " code: " << line << ";";
  }
  out << "\n";
}

void PrintMemory(const ServerMemory& m, std::ostream& out) {
  out << "server:     VmRSS " << m.rss_start_kb << " kB at start, "
      << m.rss_end_kb << " kB at end (" << m.rss_min_kb << "-" << m.rss_max_kb
      << " in the window), VmHWM " << m.hwm_kb << " kB\n";
  if (m.at_requests.empty()) return;
  out << "            VmRSS after";
  for (const auto& [requests, rss] : m.at_requests) {
    out << " " << requests << " calls: " << rss << " kB;";
  }
  if (m.at_requests.size() >= 2 && m.at_requests.front().second > 0) {
    const double change =
        100.0 * (m.at_requests.back().second - m.at_requests.front().second) /
        m.at_requests.front().second;
    out << " change " << Fixed(change) << "%";
  }
  out << "\n";
}

nlohmann::json CallsJson(const CallStats& calls, double seconds) {
  const Summary s = Summarize(calls, seconds);
  nlohmann::json failed = nlohmann::json::object();
  for (const auto& [code, n] : calls.failed) failed[StatusName(code)] = n;
  return {{"ok", s.ok},      {"per_second", s.per_second},
          {"p50_ms", s.p50}, {"p90_ms", s.p90},
          {"p99_ms", s.p99}, {"max_ms", s.max},
          {"failed", failed}};
}

}  // namespace

ProcMemory ReadProcMemory(int pid) {
  ProcMemory memory;
  if (pid <= 0) return memory;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    long* into = absl::StartsWith(line, "VmRSS:")   ? &memory.rss_kb
                 : absl::StartsWith(line, "VmHWM:") ? &memory.hwm_kb
                                                    : nullptr;
    if (into == nullptr) continue;
    absl::string_view value = absl::string_view(line).substr(6);
    absl::ConsumeSuffix(&value, "kB");
    if (!absl::SimpleAtoi(value, into)) *into = 0;
  }
  return memory;
}

uint64_t CountFailed(const Stats& stats) {
  uint64_t n = 0;
  for (const auto& [code, count] : stats.issue.failed) n += count;
  for (const auto& [code, count] : stats.verify.failed) n += count;
  return n;
}

void PrintReport(const RunInfo& info, const PhaseResult& r, std::ostream& out) {
  if (info.mode == "prefill") {
    out << "authcode_load: prefill only, " << r.prefill_requests
        << " IssueCode calls in " << Fixed(r.prefill_seconds) << " s, "
        << r.prefill_failed << " failed; " << r.delivery.refused
        << " mails refused; " << r.pool_size << " codes known\n";
    return;
  }
  out << "authcode_load: mode " << info.mode << ", " << info.concurrency
      << " calls in flight on " << info.threads << " connections; "
      << Fixed(r.seconds) << " s measured, " << r.requests << " calls in all\n";
  if (info.mode != "verify")
    PrintCalls("IssueCode:  ", r.stats.issue, r.seconds, out);
  if (info.mode != "issue") {
    PrintCalls("VerifyCode: ", r.stats.verify, r.seconds, out);
    PrintOutcomes(r.stats, out);
  }
  const Delivery& d = r.delivery;
  out << "delivery:   " << d.delivered_in_window << " mails in the window ("
      << Fixed(r.seconds > 0 ? d.delivered_in_window / r.seconds : 0) << "/s); "
      << d.behind_at_end << " behind when it closed, " << d.undelivered
      << " still missing after " << Fixed(d.drain_seconds) << " s; "
      << d.refused << " refused\n";
  if (info.server_pid > 0) PrintMemory(r.memory, out);
  if (r.prefill_failed > 0) {
    out << "prefill:    " << r.prefill_failed << " calls failed\n";
  }
  out << "pool:       " << r.pool_size << " codes known\n";
}

nlohmann::json ReportJson(const RunInfo& info, const PhaseResult& r) {
  nlohmann::json outcomes = nlohmann::json::object();
  for (int g = 0; g < kGuessKinds; ++g) {
    nlohmann::json by_outcome = nlohmann::json::object();
    for (int o = 0; o < kOutcomes; ++o) {
      if (r.stats.outcomes[g][o] > 0) {
        by_outcome[OutcomeName(o)] = r.stats.outcomes[g][o];
      }
    }
    outcomes[kGuessNames[g]] = by_outcome;
  }
  nlohmann::json verify = CallsJson(r.stats.verify, r.seconds);
  verify["outcomes"] = outcomes;

  nlohmann::json at_requests = nlohmann::json::array();
  for (const auto& [requests, rss] : r.memory.at_requests) {
    at_requests.push_back({{"requests", requests}, {"rss_kb", rss}});
  }
  const Delivery& d = r.delivery;
  const ServerMemory& m = r.memory;
  return {
      {"mode", info.mode},
      {"concurrency", info.concurrency},
      {"seconds", r.seconds},
      {"requests", r.requests},
      {"issue", CallsJson(r.stats.issue, r.seconds)},
      {"verify", verify},
      {"delivery",
       {{"delivered_in_window", d.delivered_in_window},
        {"per_second", r.seconds > 0 ? d.delivered_in_window / r.seconds : 0},
        {"behind_at_end", d.behind_at_end},
        {"drain_seconds", d.drain_seconds},
        {"undelivered", d.undelivered},
        {"refused", d.refused}}},
      {"server_memory",
       {{"pid", info.server_pid},
        {"rss_start_kb", m.rss_start_kb},
        {"rss_end_kb", m.rss_end_kb},
        {"rss_min_kb", m.rss_min_kb},
        {"rss_max_kb", m.rss_max_kb},
        {"hwm_kb", m.hwm_kb},
        {"at_requests", at_requests}}},
      {"prefill_requests", r.prefill_requests},
      {"prefill_seconds", r.prefill_seconds},
      {"prefill_failed", r.prefill_failed},
      {"pool_size", r.pool_size}};
}

bool Verdict(const RunInfo& info, const PhaseResult& r, std::ostream& why) {
  bool ok = true;
  // A prefill-only run may have found enough codes known already.
  if (info.mode != "prefill" && r.stats.issue.micros.empty() &&
      r.stats.verify.micros.empty()) {
    why << "authcode_load: no call succeeded in the measured window\n";
    ok = false;
  }
  if (const uint64_t failed = CountFailed(r.stats) + r.prefill_failed) {
    why << "authcode_load: " << failed << " calls failed\n";
    ok = false;
  }
  if (r.delivery.refused > 0) {
    why << "authcode_load: the sink refused " << r.delivery.refused
        << " requests (no code found in the mail)\n";
    ok = false;
  }
  return ok;
}

}  // namespace authcode::bench
