// End-to-end load on a running authcode server: IssueCode and VerifyCode
// at a fixed number of calls in flight, with the mail the server sends
// caught by a sink in this process so that verify calls know the codes.
//
//   authcode_load --target 127.0.0.1:PORT --mode issue|verify|mixed
//       [--concurrency 64] [--threads 2] [--seconds 20] [--warmup 2]
//       [--requests N [--time-limit S]] [--recipients 1000000]
//       [--right-share 0.5]
//       [--issue-share 0.35] [--sink-port P] [--pool-file F]
//       [--min-pool N] [--server-pid PID] [--rss-at 100000,1000000]
//       [--json FILE] [--smoke]
//
// The server must send its mail through a "postmark" provider whose
// endpoint is http://127.0.0.1:P, P being --sink-port (see mail_sink.h);
// scripts/load.sh writes such a config. --pool-file carries the codes
// learned by one run to the next (a verify run after an issue run), and
// --min-pool makes a verify or mixed run first issue codes, unmeasured,
// until it knows that many (--prefill-only: and nothing else, so that
// scripts/load.sh can checkpoint the database between the two). With
// --server-pid it reads the server's
// VmRSS and VmHWM from /proc.
//
// The run prints throughput and p50/p90/p99 latency of the calls that
// completed in the measured window, every failed call by status, the
// outcomes of verify calls, whether delivery kept up, and the server's
// memory. It exits 1 when no call succeeded, any call failed, or the sink
// got a mail without a code; 2 on bad flags or an unreachable server.
// Results and how to run the whole set: bench/README.md, scripts/load.sh.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/load/caller.h"
#include "bench/load/code_pool.h"
#include "bench/load/mail_sink.h"
#include "bench/load/report.h"
#include "grpcpp/grpcpp.h"

namespace authcode::bench {
namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(15);
// A prefill that has not reached --min-pool by then gives up.
constexpr auto kPrefillLimit = std::chrono::minutes(10);
// Delivery has stalled when no mail arrived for this long.
constexpr auto kDrainIdle = std::chrono::seconds(2);
constexpr auto kProgressEvery = std::chrono::seconds(5);
constexpr auto kTick = std::chrono::milliseconds(20);

struct Flags {
  std::string target;
  std::string mode = "issue";
  int concurrency = 64;
  int threads = 2;
  int seconds = 20;
  int warmup = 2;
  uint64_t requests = 0;
  int time_limit = 0;
  uint32_t recipients = 1000000;
  double right_share = 0.5;
  double issue_share = 0.35;
  int sink_port = -1;
  std::string pool_file;
  uint64_t min_pool = 0;
  int server_pid = 0;
  std::vector<uint64_t> rss_at;
  int drain_timeout = 60;
  std::string json;
  bool smoke = false;
  bool prefill_only = false;
};

void AddFlags(CLI::App& app, Flags& f) {
  app.add_option("--target", f.target, "Server address, host:port")->required();
  app.add_option("--mode", f.mode, "issue, verify or mixed")
      ->check(CLI::IsMember({"issue", "verify", "mixed"}));
  app.add_option("--concurrency", f.concurrency, "Calls in flight")
      ->check(CLI::Range(1, 4096));
  app.add_option("--threads", f.threads,
                 "Client threads, each with its own connection")
      ->check(CLI::Range(1, 16));
  app.add_option("--seconds", f.seconds, "Measured seconds")
      ->check(CLI::Range(1, 3600));
  app.add_option("--warmup", f.warmup, "Unmeasured seconds first")
      ->check(CLI::Range(0, 600));
  app.add_option("--requests", f.requests,
                 "Stop after this many calls instead of --seconds");
  app.add_option("--time-limit", f.time_limit,
                 "With --requests: stop after this many seconds at the "
                 "latest (0: no limit)")
      ->check(CLI::Range(0, 86400));
  app.add_option("--recipients", f.recipients, "Recipients to draw from")
      ->check(CLI::Range(1u, 100000000u));
  app.add_option("--right-share", f.right_share,
                 "Share of verify calls that send the right code")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--issue-share", f.issue_share,
                 "Share of issue calls in --mode mixed")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--sink-port", f.sink_port,
                 "Port of the mail sink on 127.0.0.1 (the server's "
                 "postmark endpoint); needed to issue")
      ->check(CLI::Range(0, 65535));
  app.add_option("--pool-file", f.pool_file,
                 "Known codes: read at start, written at the end");
  app.add_option("--min-pool", f.min_pool,
                 "Issue codes first (unmeasured) until this many are known");
  app.add_option("--server-pid", f.server_pid, "Server pid, for its memory");
  app.add_option("--rss-at", f.rss_at,
                 "Read the server's VmRSS once this run made this many "
                 "calls (prefill included), e.g. 100000,1000000")
      ->delimiter(',');
  app.add_option("--drain-timeout", f.drain_timeout,
                 "Seconds to wait for the last mails after the load")
      ->check(CLI::Range(0, 3600));
  app.add_option("--json", f.json, "Also write the results to this file");
  app.add_flag("--prefill-only", f.prefill_only,
               "Only issue codes up to --min-pool, measuring nothing");
  app.add_flag("--smoke", f.smoke,
               "A few seconds without warm-up: --seconds 3 --warmup 0");
}

Workload MakeWorkload(const Flags& flags) {
  Workload w;
  w.mode = flags.mode == "issue"    ? Mode::kIssue
           : flags.mode == "verify" ? Mode::kVerify
                                    : Mode::kMixed;
  w.issue_share = flags.issue_share;
  w.right_share = flags.right_share;
  w.recipients = flags.recipients;
  return w;
}

// N of "u<N>@<domain>", as the callers address their mail.
std::optional<uint32_t> RecipientNumber(const std::string& to,
                                        const std::string& domain) {
  const std::string suffix = absl::StrCat("@", domain);
  if (!absl::StartsWith(to, "u") || !absl::EndsWith(to, suffix)) {
    return std::nullopt;
  }
  uint32_t n = 0;
  if (!absl::SimpleAtoi(
          absl::string_view(to).substr(1, to.size() - 1 - suffix.size()), &n)) {
    return std::nullopt;
  }
  return n;
}

// One channel, and so one TCP connection, per client thread.
std::vector<std::shared_ptr<grpc::Channel>> Connect(const Flags& flags) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < flags.threads; ++i) {
    grpc::ChannelArguments args;
    // Without this, channels with equal arguments share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(
        flags.target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   kConnectTimeout)) {
      return {};
    }
    channels.push_back(std::move(channel));
  }
  return channels;
}

// Runs one Caller per channel, the calls in flight split among them, and
// `tick` on this thread every kTick until they are done.
Stats RunCallers(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                 const Workload& workload, const PhaseLimits& limits,
                 PhaseShared& shared, int concurrency,
                 const std::function<void()>& tick) {
  const int n = static_cast<int>(channels.size());
  std::vector<Stats> results(channels.size());
  std::atomic<int> running{n};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    const int slots = concurrency / n + (i < concurrency % n ? 1 : 0);
    threads.emplace_back([&, i, slots] {
      if (slots > 0) {
        Caller caller(channels[i], workload, limits, shared, slots,
                      std::random_device()() + i);
        results[i] = caller.Run();
      }
      --running;
    });
  }
  while (running > 0) {
    std::this_thread::sleep_for(kTick);
    if (tick) tick();
  }
  for (std::thread& t : threads) t.join();

  Stats all;
  for (Stats& s : results) all.Merge(std::move(s));
  return all;
}

// Waits until the sink got a mail for every code issued in this run, mail
// stops coming for kDrainIdle, or `timeout` passes.
Drain WaitForMail(const MailSink* sink, const std::atomic<uint64_t>& issued,
                  std::chrono::seconds timeout) {
  Drain drain;
  if (sink == nullptr || issued == 0) return drain;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_progress = start;
  uint64_t last = sink->accepted();
  while (sink->accepted() < issued) {
    const Clock::time_point now = Clock::now();
    if (now - start >= timeout || now - last_progress >= kDrainIdle) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (sink->accepted() != last) {
      last = sink->accepted();
      last_progress = Clock::now();
    }
  }
  drain.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  drain.undelivered = issued > sink->accepted() ? issued - sink->accepted() : 0;
  return drain;
}

// Counts the calls of the whole run, prefill included, and reads the
// server's VmRSS when the count reaches one of --rss-at.
class RssProbe {
 public:
  RssProbe(int pid, std::vector<uint64_t> at) : pid_(pid), at_(std::move(at)) {}

  // Called from the callers' threads on every completion.
  void OnCall() {
    const uint64_t calls = ++calls_;
    if (pid_ <= 0 || std::find(at_.begin(), at_.end(), calls) == at_.end()) {
      return;
    }
    const long rss = ReadProcMemory(pid_).rss_kb;
    std::lock_guard<std::mutex> lock(mu_);
    samples_.emplace_back(calls, rss);
  }

  std::vector<std::pair<uint64_t, long>> samples() const {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }

 private:
  const int pid_;
  const std::vector<uint64_t> at_;
  std::atomic<uint64_t> calls_{0};
  mutable std::mutex mu_;
  std::vector<std::pair<uint64_t, long>> samples_;  // Guarded by mu_.
};

struct Prefilled {
  Stats stats;
  uint64_t requests = 0;
  double seconds = 0;
};

// Issues codes, unmeasured, until the pool holds `flags.min_pool`.
Prefilled Prefill(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                  const Flags& flags, CodePool& pool,
                  std::atomic<uint64_t>& issued_ok, const MailSink* sink,
                  RssProbe& probe) {
  if (pool.size() >= flags.min_pool) return {};
  Workload workload = MakeWorkload(flags);
  workload.mode = Mode::kIssue;
  const Clock::time_point start = Clock::now();
  const PhaseLimits limits{start, start + kPrefillLimit,
                           flags.min_pool - pool.size()};
  PhaseShared shared;
  shared.pool = &pool;
  shared.issued_ok = &issued_ok;
  shared.on_completed = [&probe] { probe.OnCall(); };
  Prefilled prefilled;
  prefilled.stats =
      RunCallers(channels, workload, limits, shared, flags.concurrency, {});
  prefilled.requests = shared.completed;
  prefilled.seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  const Drain drain =
      WaitForMail(sink, issued_ok, std::chrono::seconds(flags.drain_timeout));
  std::cerr << "load: prefill issued " << issued_ok << " codes in "
            << std::chrono::duration<double>(Clock::now() - start).count()
            << " s (" << drain.undelivered << " undelivered); " << pool.size()
            << " codes known\n";
  return prefilled;
}

// Watches a measured phase from the main thread: what the sink and the
// server's memory show when the window opens and closes, and progress.
class Monitor {
 public:
  Monitor(const MailSink* sink, const std::atomic<uint64_t>& issued_ok, int pid,
          const PhaseLimits& limits, const PhaseShared& shared)
      : sink_(sink),
        issued_ok_(issued_ok),
        pid_(pid),
        limits_(limits),
        shared_(shared),
        last_progress_(Clock::now()) {}

  void Tick() {
    const Clock::time_point now = Clock::now();
    if (!opened_ && now >= limits_.measure_from) Open();
    if (opened_ && !closed_ && now >= limits_.stop_at) Close(now);
    if (opened_ && !closed_ && now - last_sample_ >= std::chrono::seconds(1)) {
      Sample(now);
    }
    if (now - last_progress_ >= kProgressEvery) Progress(now);
  }

  // After the callers finished: closes a window bounded by --requests.
  void Finish(Clock::time_point end) {
    if (!opened_) Open();
    if (!closed_) Close(end);
  }

  // The window's delivery figures and memory; the rest is filled later.
  PhaseResult TakeResult() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(result_);
  }

 private:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    opened_ = true;
    open_at_ = limits_.measure_from;
    mail_at_open_ = Mail();
    const ProcMemory memory = ReadProcMemory(pid_);
    result_.memory.rss_start_kb = memory.rss_kb;
    result_.memory.rss_min_kb = result_.memory.rss_max_kb = memory.rss_kb;
    last_sample_ = open_at_;
  }

  void Close(Clock::time_point end) {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    // Calls completing past stop_at are not recorded (Caller).
    result_.seconds =
        std::chrono::duration<double>(std::min(end, limits_.stop_at) - open_at_)
            .count();
    const uint64_t mail = Mail();
    result_.delivery.delivered_in_window = mail - mail_at_open_;
    result_.delivery.behind_at_end = issued_ok_ > mail ? issued_ok_ - mail : 0;
    const ProcMemory memory = ReadProcMemory(pid_);
    result_.memory.rss_end_kb = memory.rss_kb;
    result_.memory.hwm_kb = memory.hwm_kb;
    Extremes(memory.rss_kb);
  }

  void Sample(Clock::time_point now) {
    last_sample_ = now;
    const long rss = ReadProcMemory(pid_).rss_kb;
    std::lock_guard<std::mutex> lock(mu_);
    Extremes(rss);
  }

  // Needs mu_.
  void Extremes(long rss) {
    if (rss <= 0) return;
    result_.memory.rss_min_kb = std::min(result_.memory.rss_min_kb, rss);
    result_.memory.rss_max_kb = std::max(result_.memory.rss_max_kb, rss);
  }

  void Progress(Clock::time_point now) {
    const uint64_t completed = shared_.completed;
    const double seconds =
        std::chrono::duration<double>(now - last_progress_).count();
    std::cerr << "load: " << completed << " calls ("
              << static_cast<long>((completed - completed_at_progress_) /
                                   seconds)
              << "/s), " << issued_ok_ << " issued, " << Mail()
              << " mails, server VmRSS " << ReadProcMemory(pid_).rss_kb
              << " kB\n";
    completed_at_progress_ = completed;
    last_progress_ = now;
  }

  uint64_t Mail() const { return sink_ == nullptr ? 0 : sink_->accepted(); }

  const MailSink* const sink_;
  const std::atomic<uint64_t>& issued_ok_;
  const int pid_;
  const PhaseLimits& limits_;
  const PhaseShared& shared_;
  bool opened_ = false;
  bool closed_ = false;
  Clock::time_point open_at_;
  Clock::time_point last_sample_;
  Clock::time_point last_progress_;
  uint64_t completed_at_progress_ = 0;
  uint64_t mail_at_open_ = 0;
  std::mutex mu_;
  PhaseResult result_;  // Guarded by mu_ where callers' threads touch it.
};

PhaseResult Measure(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                    const Flags& flags, CodePool& pool,
                    std::atomic<uint64_t>& issued_ok, const MailSink* sink,
                    RssProbe& probe) {
  const Clock::time_point start = Clock::now();
  PhaseLimits limits;
  limits.measure_from = start + std::chrono::seconds(flags.warmup);
  limits.stop_at = limits.measure_from + std::chrono::seconds(flags.seconds);
  if (flags.requests > 0) {
    limits.stop_at = flags.time_limit > 0
                         ? start + std::chrono::seconds(flags.time_limit)
                         : Clock::time_point::max();
  }
  limits.max_requests = flags.requests;

  PhaseShared shared;
  shared.pool = &pool;
  shared.issued_ok = &issued_ok;
  shared.on_completed = [&probe] { probe.OnCall(); };
  Monitor monitor(sink, issued_ok, flags.server_pid, limits, shared);

  monitor.Tick();  // Opens the window now when there is no warm-up.
  Stats stats = RunCallers(channels, MakeWorkload(flags), limits, shared,
                           flags.concurrency, [&] { monitor.Tick(); });
  monitor.Finish(Clock::now());
  PhaseResult result = monitor.TakeResult();
  result.stats = std::move(stats);
  result.requests = shared.completed;
  const Drain drain =
      WaitForMail(sink, issued_ok, std::chrono::seconds(flags.drain_timeout));
  result.delivery.drain_seconds = drain.seconds;
  result.delivery.undelivered = drain.undelivered;
  return result;
}

std::unique_ptr<MailSink> StartSink(const Flags& flags, CodePool& pool) {
  const std::string domain = Workload().domain;
  absl::StatusOr<std::unique_ptr<MailSink>> sink =
      MailSink::Start(flags.sink_port, [&pool, domain](const SinkMail& mail) {
        const std::optional<uint32_t> n = RecipientNumber(mail.to, domain);
        if (!n.has_value()) return false;
        pool.Put(*n, mail.code);
        return true;
      });
  if (!sink.ok()) {
    std::cerr << "authcode_load: " << sink.status().message() << "\n";
    return nullptr;
  }
  return *std::move(sink);
}

int Run(const Flags& flags) {
  CodePool pool;
  if (!flags.pool_file.empty()) {
    if (absl::Status s = pool.Load(flags.pool_file); !s.ok()) {
      std::cerr << "authcode_load: " << s.message() << "\n";
      return 2;
    }
  }
  std::unique_ptr<MailSink> sink;
  if (flags.sink_port >= 0 && (sink = StartSink(flags, pool)) == nullptr) {
    return 2;
  }
  const auto channels = Connect(flags);
  if (channels.empty()) {
    std::cerr << "authcode_load: no connection to " << flags.target
              << " within " << kConnectTimeout.count() << " s (--target)\n";
    return 2;
  }

  std::atomic<uint64_t> issued_ok{0};
  RssProbe probe(flags.server_pid, flags.rss_at);
  const Prefilled prefill =
      Prefill(channels, flags, pool, issued_ok, sink.get(), probe);
  PhaseResult result;
  if (!flags.prefill_only) {
    result = Measure(channels, flags, pool, issued_ok, sink.get(), probe);
  }
  result.memory.at_requests = probe.samples();
  result.prefill_requests = prefill.requests;
  result.prefill_seconds = prefill.seconds;
  result.prefill_failed = CountFailed(prefill.stats);
  result.delivery.refused = sink == nullptr ? 0 : sink->refused();
  result.pool_size = pool.size();
  sink.reset();  // No mail arrives past this point.

  RunInfo info{flags.prefill_only ? "prefill" : flags.mode, flags.concurrency,
               flags.threads, flags.server_pid};
  PrintReport(info, result, std::cout);
  if (!flags.json.empty()) {
    std::ofstream out(flags.json, std::ios::trunc);
    out << ReportJson(info, result).dump(2) << "\n";
  }
  if (!flags.pool_file.empty()) {
    if (absl::Status s = pool.Save(flags.pool_file); !s.ok()) {
      std::cerr << "authcode_load: " << s.message() << "\n";
      return 1;
    }
  }
  return Verdict(info, result, std::cerr) ? 0 : 1;
}

}  // namespace
}  // namespace authcode::bench

int main(int argc, char** argv) {
  authcode::bench::Flags flags;
  CLI::App app{"Drives IssueCode and VerifyCode at a fixed concurrency"};
  authcode::bench::AddFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  if (flags.smoke) {
    flags.seconds = 3;
    flags.warmup = 0;
  }
  if (flags.prefill_only && flags.min_pool == 0) {
    std::cerr << "authcode_load: --prefill-only needs --min-pool\n";
    return 2;
  }
  const bool issues = flags.mode != "verify" || flags.min_pool > 0;
  if (issues && flags.sink_port < 0) {
    std::cerr << "authcode_load: --mode " << flags.mode
              << (flags.min_pool > 0 ? " with --min-pool" : "")
              << " issues codes: set --sink-port to the port of the "
                 "server's postmark endpoint\n";
    return 2;
  }
  return authcode::bench::Run(flags);
}
