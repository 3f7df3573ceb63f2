#include "server/server_metrics.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"

#ifndef AUTHCODE_VERSION
#define AUTHCODE_VERSION "unknown"
#endif

namespace authcode {
namespace {

using metrics::Counter;
using metrics::Gauge;
using metrics::Histogram;

// The outbox is counted in the database: scrapes more frequent than this
// get the last count.
constexpr absl::Duration kOutboxReadInterval = absl::Seconds(1);

constexpr const char* kMethodNames[] = {"IssueCode", "VerifyCode",
                                        "GetDelivery"};

constexpr const char* kScopeNames[] = {"recipient", "ip", "tenant_ceiling",
                                       "lockout"};

// By JobOutcome::Kind.
constexpr const char* kDeliveryResults[] = {"sent", "retry", "failed",
                                            "released"};

// By ProviderSend.
constexpr const char* kSendResults[] = {"sent", "retryable", "permanent",
                                        "skipped_breaker", "skipped_quota"};

// Delivery takes longer than an RPC: a provider's round trip, and retries
// minutes apart.
std::vector<double> DeliveryBuckets() {
  return {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
          5,    10,    30,   60,  120,  300, 900};
}

std::string ProviderLabel(const std::string& provider) {
  return provider.empty() ? "none" : provider;
}

}  // namespace

const char* VerifyOutcomeName(v1::VerifyOutcome outcome) {
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

ServerMetrics::ServerMetrics()
    : rpcs_(
          registry_.AddCounter("authcode_rpc_requests_total",
                               "RPCs answered, by method and gRPC status code.",
                               {"method", "code"})),
      rpc_latency_(registry_.AddHistogram(
          "authcode_rpc_duration_seconds",
          "Time from an RPC's arrival to its answer, queueing included, by "
          "method and gRPC status code.",
          {"method", "code"}, metrics::LatencyBuckets())),
      verify_outcomes_(registry_.AddCounter("authcode_verify_outcomes_total",
                                            "VerifyCode answers, by outcome.",
                                            {"outcome"})),
      rate_limited_(registry_.AddCounter(
          "authcode_rate_limited_total",
          "IssueCode calls refused by a limit, by the limit: recipient, ip, "
          "tenant_ceiling or lockout.",
          {"scope"})),
      deliveries_(registry_.AddCounter(
          "authcode_deliveries_total",
          "Delivery tries, by the provider instance that last handled the "
          "mail and the result: sent, retry, failed or released.",
          {"provider", "result"})),
      delivery_latency_(registry_.AddHistogram(
          "authcode_delivery_latency_seconds",
          "Time from a mail's queueing (the IssueCode) to its acceptance by "
          "a provider, by provider instance.",
          {"provider"}, DeliveryBuckets())),
      provider_sends_(registry_.AddCounter(
          "authcode_provider_sends_total",
          "How each provider instance of a chain dealt with a mail: sent, "
          "retryable, permanent, skipped_breaker or skipped_quota.",
          {"provider", "result"})),
      outbox_jobs_(registry_.AddGauge(
          "authcode_outbox_jobs",
          "Delivery jobs not finished, by state: queued (waiting for a "
          "first or later try) or sending (claimed by a worker).",
          {"state"})),
      outbox_oldest_(registry_.AddGauge(
          "authcode_outbox_oldest_queued_age_seconds",
          "Age of the oldest queued delivery job (0 when none is queued).")),
      outbox_read_failures_(registry_.AddCounter(
          "authcode_outbox_read_failures_total",
          "Scrapes whose outbox count failed; the outbox gauges keep their "
          "last values then.")),
      pool_connections_(registry_.AddGauge(
          "authcode_db_pool_connections",
          "Open database connections, by pool (rpc or background) and "
          "state (in_use or idle).",
          {"pool", "state"})),
      pool_size_(registry_.AddGauge("authcode_db_pool_size",
                                    "Connections a pool may open, by pool.",
                                    {"pool"})),
      pool_waiting_(registry_.AddGauge(
          "authcode_db_pool_waiting",
          "Threads waiting for a connection, by pool.", {"pool"})) {
  for (size_t i = 1; i < outcome_counts_.size(); ++i) {
    outcome_counts_[i] = &verify_outcomes_.With(
        {VerifyOutcomeName(static_cast<v1::VerifyOutcome>(i))});
  }
  for (size_t i = 0; i < std::size(kScopeNames); ++i) {
    refusal_counts_[i] = &rate_limited_.With({kScopeNames[i]});
  }
  outbox_jobs_.With({"queued"});
  outbox_jobs_.With({"sending"});
  outbox_oldest_.With({});
  outbox_read_failures_.With({});

  registry_
      .AddGauge("authcode_build_info",
                "Always 1; the version of the running binary as a label.",
                {"version"})
      .With({AUTHCODE_VERSION})
      .Set(1);
  registry_
      .AddGauge("authcode_start_time_seconds",
                "When the process started, in seconds since the Unix epoch.")
      .With({})
      .Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

void ServerMetrics::RecordRpc(RpcMethod method, grpc::StatusCode code,
                              absl::Duration latency) {
  const int m = static_cast<int>(method);
  int c = static_cast<int>(code);
  if (c < 0 || c >= kCodes) c = grpc::StatusCode::UNKNOWN;
  RpcCell& cell = rpc_cells_[m][c];
  Histogram* histogram = cell.latency.load(std::memory_order_acquire);
  if (histogram == nullptr) {
    // First call with this pair: racing threads find the same series.
    // gRPC's status codes are Abseil's, with the same names.
    const std::string code_name =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(c));
    cell.count.store(&rpcs_.With({kMethodNames[m], code_name}),
                     std::memory_order_relaxed);
    histogram = &rpc_latency_.With({kMethodNames[m], code_name});
    cell.latency.store(histogram, std::memory_order_release);
  }
  cell.count.load(std::memory_order_relaxed)->Increment();
  histogram->Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::CountVerifyOutcome(v1::VerifyOutcome outcome) {
  const int i = static_cast<int>(outcome);
  if (i > 0 && i < static_cast<int>(outcome_counts_.size())) {
    outcome_counts_[i]->Increment();
  }
}

void ServerMetrics::CountIssueRefusal(IssueResult::Status status) {
  switch (status) {
    case IssueResult::Status::kRateLimited:
      refusal_counts_[0]->Increment();
      break;
    case IssueResult::Status::kIpLimited:
      refusal_counts_[1]->Increment();
      break;
    case IssueResult::Status::kTenantLimited:
      refusal_counts_[2]->Increment();
      break;
    case IssueResult::Status::kLocked:
      refusal_counts_[3]->Increment();
      break;
    case IssueResult::Status::kIssued:
    case IssueResult::Status::kReplayed:
    case IssueResult::Status::kKeyMismatch:
      break;
  }
}

void ServerMetrics::CountDelivery(const std::string& provider,
                                  JobOutcome::Kind kind) {
  deliveries_
      .With({ProviderLabel(provider), kDeliveryResults[static_cast<int>(kind)]})
      .Increment();
}

void ServerMetrics::ObserveDeliveryLatency(const std::string& provider,
                                           absl::Duration queued_for) {
  delivery_latency_.With({ProviderLabel(provider)})
      .Observe(
          absl::ToDoubleSeconds(std::max(queued_for, absl::ZeroDuration())));
}

void ServerMetrics::CountProviderSend(const std::string& provider,
                                      ProviderSend result) {
  provider_sends_
      .With({ProviderLabel(provider), kSendResults[static_cast<int>(result)]})
      .Increment();
}

void ServerMetrics::WatchStore(Store* store) {
  registry_.AddCollector([this, store] { Collect(store); });
}

void ServerMetrics::Collect(Store* store) {
  const std::pair<const char*, Store::PoolUse> pools[] = {
      {"rpc", store->RpcPoolUse()}, {"background", store->BackgroundPoolUse()}};
  for (const auto& [pool, use] : pools) {
    pool_connections_.With({pool, "in_use"}).Set(use.in_use);
    pool_connections_.With({pool, "idle"}).Set(use.idle);
    pool_size_.With({pool}).Set(use.size);
    pool_waiting_.With({pool}).Set(use.waiting);
  }

  const absl::Time now = absl::Now();
  if (now - outbox_read_at_ < kOutboxReadInterval) return;
  outbox_read_at_ = now;
  const absl::StatusOr<OutboxStats> outbox = store->ReadOutbox();
  if (!outbox.ok()) {
    // The store logged why.
    outbox_read_failures_.With({}).Increment();
    return;
  }
  outbox_jobs_.With({"queued"}).Set(static_cast<double>(outbox->queued));
  outbox_jobs_.With({"sending"}).Set(static_cast<double>(outbox->sending));
  outbox_oldest_.With({}).Set(absl::ToDoubleSeconds(outbox->oldest_queued_age));
}

}  // namespace authcode
