// What the server counts and measures, in one registry that the metrics
// endpoint (metrics_endpoint.h) renders: RPCs by method and status, verify
// outcomes, rate-limit refusals, deliveries and provider sends, delivery
// latency, and, read at scrape time, the outbox and the connection pools.
// README's "Metrics" section lists every name.
//
// The RPC path resolves its series once per (method, status) and then only
// touches atomics: no lock, no allocation.
//
// Thread safety: every method may be called from any thread.
#ifndef AUTHCODE_SERVER_SERVER_METRICS_H_
#define AUTHCODE_SERVER_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <string>

#include "absl/time/time.h"
#include "authcode/v1/authcode.pb.h"
#include "grpcpp/support/status.h"
#include "server/metrics.h"
#include "server/store.h"

namespace authcode {

enum class RpcMethod { kIssueCode, kVerifyCode, kGetDelivery };

// How one provider of a chain dealt with one mail.
enum class ProviderSend {
  kSent,
  kRetryable,
  kPermanent,
  kSkippedBreaker,  // Its circuit breaker was open.
  kSkippedQuota,    // Its quota was spent (or could not be read).
};

// "verified", "wrong_code", ...: an outcome's name in log lines and in
// the verify-outcome metric.
const char* VerifyOutcomeName(v1::VerifyOutcome outcome);

class ServerMetrics {
 public:
  ServerMetrics();

  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  metrics::Registry& registry() { return registry_; }

  // An answered RPC, with the time from its arrival to its answer.
  void RecordRpc(RpcMethod method, grpc::StatusCode code,
                 absl::Duration latency);
  // A VerifyCode that answered with `outcome`.
  void CountVerifyOutcome(v1::VerifyOutcome outcome);
  // An IssueCode the store answered with `status`: counted when a limit
  // or a lock-out refused it.
  void CountIssueRefusal(IssueResult::Status status);

  // The result a worker reached for a job, with the provider instance that
  // last handled it ("" when none did).
  void CountDelivery(const std::string& provider, JobOutcome::Kind kind);
  // A job sent `queued_for` after it was queued.
  void ObserveDeliveryLatency(const std::string& provider,
                              absl::Duration queued_for);
  void CountProviderSend(const std::string& provider, ProviderSend result);

  // Reads the pools' use from `store` at every scrape, and the outbox at
  // most once a second however often it is scraped. `store` must outlive
  // the registry's last Render().
  void WatchStore(Store* store);

 private:
  static constexpr int kMethods = 3;
  static constexpr int kCodes = 17;  // grpc::StatusCode 0..16.
  // The series of one (method, status); null until first used.
  struct RpcCell {
    std::atomic<metrics::Counter*> count{nullptr};
    std::atomic<metrics::Histogram*> latency{nullptr};
  };

  void Collect(Store* store);

  metrics::Registry registry_;
  metrics::Family<metrics::Counter>& rpcs_;
  metrics::Family<metrics::Histogram>& rpc_latency_;
  std::array<std::array<RpcCell, kCodes>, kMethods> rpc_cells_;
  metrics::Family<metrics::Counter>& verify_outcomes_;
  // By v1::VerifyOutcome, 1..5; made at construction.
  std::array<metrics::Counter*, 6> outcome_counts_{};
  metrics::Family<metrics::Counter>& rate_limited_;
  // Recipient, IP, tenant ceiling, lock-out; made at construction.
  std::array<metrics::Counter*, 4> refusal_counts_{};
  metrics::Family<metrics::Counter>& deliveries_;
  metrics::Family<metrics::Histogram>& delivery_latency_;
  metrics::Family<metrics::Counter>& provider_sends_;
  metrics::Family<metrics::Gauge>& outbox_jobs_;
  metrics::Family<metrics::Gauge>& outbox_oldest_;
  metrics::Family<metrics::Counter>& outbox_read_failures_;
  metrics::Family<metrics::Gauge>& pool_connections_;
  metrics::Family<metrics::Gauge>& pool_size_;
  metrics::Family<metrics::Gauge>& pool_waiting_;
  // When the outbox was last read; only Collect() touches it, and the
  // registry runs one collection at a time.
  absl::Time outbox_read_at_ = absl::InfinitePast();
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_SERVER_METRICS_H_
