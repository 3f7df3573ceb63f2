#include "server/delivery_worker.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/log.h"
#include "server/service.h"

namespace authcode {
namespace {

// Jobs claimed per round trip.
constexpr int kBatchSize = 8;

}  // namespace

DeliveryWorker::DeliveryWorker(const Config* config, Store* store,
                               const SecretBox* outbox,
                               const Composer* composer,
                               const ProviderSet* providers,
                               ServerMetrics* metrics, RandomSource random)
    : config_(config),
      store_(store),
      outbox_(outbox),
      composer_(composer),
      providers_(providers),
      metrics_(metrics),
      random_(std::move(random)) {}

DeliveryWorker::~DeliveryWorker() { Stop(); }

void DeliveryWorker::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < config_->delivery.workers; ++i) {
    ++running_;
    threads_.emplace_back([this] {
      Loop();
      std::lock_guard<std::mutex> done(mu_);
      --running_;
      cv_.notify_all();
    });
  }
}

void DeliveryWorker::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A woken worker claims every due job up to a batch, so wake-ups
    // beyond one per worker would only buy empty claims later.
    if (wakes_ >= config_->delivery.workers) return;
    ++wakes_;
  }
  cv_.notify_one();
}

bool DeliveryWorker::Stop(absl::Time deadline) {
  stopping_ = true;
  cv_.notify_all();
  {
    std::unique_lock<std::mutex> lock(mu_);
    const bool done =
        deadline == absl::InfiniteFuture()
            ? (cv_.wait(lock, [&] { return running_ == 0; }), true)
            : cv_.wait_until(lock, absl::ToChronoTime(deadline),
                             [&] { return running_ == 0; });
    if (!done) return false;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  return true;
}

void DeliveryWorker::Loop() {
  while (!stopping_) {
    absl::StatusOr<int> handled = RunOnce();
    if (handled.ok() && *handled > 0) continue;
    if (!handled.ok()) {
      log::Warn("delivery.claim_failed",
                {{"error", std::string(handled.status().message())}});
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock,
                 absl::ToChronoMilliseconds(config_->delivery.poll_interval),
                 [&] { return wakes_ > 0 || stopping_; });
    if (wakes_ > 0) --wakes_;
  }
}

absl::StatusOr<int> DeliveryWorker::RunOnce() {
  absl::StatusOr<std::vector<ClaimedJob>> jobs =
      store_->ClaimJobs(kBatchSize, config_->delivery.lease);
  if (!jobs.ok()) return jobs.status();
  for (const ClaimedJob& job : *jobs) {
    if (stopping_) {
      Record(job, {JobOutcome::Kind::kRelease, "", "", "", {}});
    } else {
      Process(job);
    }
  }
  return static_cast<int>(jobs->size());
}

void DeliveryWorker::Process(const ClaimedJob& job) {
  if (job.expired) {
    Record(job, {JobOutcome::Kind::kFailed,
                 "",
                 "",
                 "the code expired before it could be delivered",
                 {}});
    return;
  }
  Record(job, Deliver(job));
}

JobOutcome DeliveryWorker::Deliver(const ClaimedJob& job) {
  JobOutcome failed{JobOutcome::Kind::kFailed, "", "", "", {}};

  absl::StatusOr<std::string> plain =
      outbox_->Open(job.payload_key_id, job.payload, job.code_id);
  if (!plain.ok()) {
    failed.error =
        absl::StrCat("cannot open the payload: ", plain.status().message());
    return failed;
  }
  absl::StatusOr<DeliveryPayload> payload = DecodePayload(*plain);
  if (!payload.ok()) {
    failed.error = std::string(payload.status().message());
    return failed;
  }
  MailRequest request{job.purpose,   payload->locale,    payload->recipient,
                      payload->code, config_->codes.ttl, payload->values};
  absl::StatusOr<providers::Message> message = composer_->Compose(request);
  if (!message.ok()) {
    failed.error =
        absl::StrCat("cannot compose the mail: ", message.status().message());
    return failed;
  }
  message->delivery_id = job.code_id;

  // Down the chain until one provider takes it.
  std::vector<std::string> errors;
  std::string last_tried;
  std::optional<absl::Duration> retry_after;
  absl::Time reopens = absl::InfiniteFuture();
  for (ProviderEntry* entry : providers_->ChainFor(job.purpose)) {
    if (!entry->breaker->Allow()) {
      metrics_->CountProviderSend(entry->name, ProviderSend::kSkippedBreaker);
      errors.push_back(absl::StrCat(entry->name, ": skipped, failing lately"));
      reopens = std::min(reopens, entry->breaker->open_until());
      continue;
    }
    if (entry->config.quota > 0) {
      absl::StatusOr<bool> taken = store_->TakeQuota(
          entry->name, entry->config.quota_window, entry->config.quota);
      if (!taken.ok() || !*taken) {
        entry->breaker->Release();
        metrics_->CountProviderSend(entry->name, ProviderSend::kSkippedQuota);
        errors.push_back(
            absl::StrCat(entry->name, taken.ok() ? ": skipped, quota spent"
                                                 : ": skipped, quota unknown"));
        continue;
      }
    }
    last_tried = entry->name;
    const providers::SendResult sent = entry->provider->Send(*message);
    switch (sent.kind()) {
      case providers::SendResult::Kind::kSent:
        entry->breaker->RecordSuccess();
        metrics_->CountProviderSend(entry->name, ProviderSend::kSent);
        return {
            JobOutcome::Kind::kSent, entry->name, sent.message_id(), "", {}};
      case providers::SendResult::Kind::kPermanent:
        // The provider answered; the message itself is refused.
        entry->breaker->RecordSuccess();
        metrics_->CountProviderSend(entry->name, ProviderSend::kPermanent);
        failed.provider = entry->name;
        failed.error = absl::StrCat(entry->name, ": ", sent.error());
        return failed;
      case providers::SendResult::Kind::kRetryable:
        entry->breaker->RecordFailure();
        metrics_->CountProviderSend(entry->name, ProviderSend::kRetryable);
        errors.push_back(absl::StrCat(entry->name, ": ", sent.error()));
        if (sent.retry_after().has_value()) {
          retry_after = std::max(retry_after.value_or(absl::ZeroDuration()),
                                 *sent.retry_after());
        }
        break;
    }
  }

  const std::string error = absl::StrJoin(errors, "; ");
  failed.provider = last_tried;
  if (job.attempt >= job.max_attempts) {
    failed.error =
        absl::StrCat("gave up after ", job.attempt, " attempts: ", error);
    return failed;
  }
  absl::Duration delay = Backoff(job.attempt, retry_after);
  if (last_tried.empty() && reopens != absl::InfiniteFuture()) {
    // Nothing was tried: come back when the first breaker lets a trial by.
    delay = std::max(delay, reopens - absl::Now());
  }
  if (absl::Now() + delay >= job.expires_at) {
    failed.error = absl::StrCat(
        "the code expires before the next try could be made: ", error);
    return failed;
  }
  return {JobOutcome::Kind::kRetry, last_tried, "", error, delay};
}

void DeliveryWorker::Record(const ClaimedJob& job, const JobOutcome& outcome) {
  // Counted whether or not the report is stored: a mail that was sent
  // stays sent.
  metrics_->CountDelivery(outcome.provider, outcome.kind);
  absl::StatusOr<bool> recorded = store_->FinishJob(job, outcome);
  const std::string job_id = absl::StrCat(job.id);
  if (!recorded.ok()) {
    // The lease runs out and another claim retries the job.
    log::Error("delivery.record_failed",
               {{"job_id", job_id},
                {"error", std::string(recorded.status().message())}});
    return;
  }
  if (*recorded && outcome.kind == JobOutcome::Kind::kSent) {
    metrics_->ObserveDeliveryLatency(
        outcome.provider, job.queued_for + (absl::Now() - job.claimed_at));
  }
  static constexpr const char* kEvents[] = {"delivery.sent", "delivery.retry",
                                            "delivery.failed",
                                            "delivery.released"};
  log::Event(outcome.kind == JobOutcome::Kind::kFailed ? spdlog::level::warn
                                                       : spdlog::level::info,
             kEvents[static_cast<int>(outcome.kind)],
             {{"job_id", job_id},
              {"code_id", job.code_id},
              {"tenant", job.tenant},
              {"purpose", job.purpose},
              {"provider", outcome.provider},
              {"attempt", absl::StrCat(job.attempt)},
              {"message_id", outcome.message_id},
              {"retry_in_ms",
               absl::StrCat(absl::ToInt64Milliseconds(outcome.retry_in))},
              {"error", outcome.error},
              {"stale", *recorded ? "false" : "true"}});
}

absl::Duration DeliveryWorker::Backoff(
    int attempt, std::optional<absl::Duration> retry_after) const {
  const Config::Delivery& d = config_->delivery;
  const double growth = std::ldexp(1.0, std::min(attempt - 1, 30));
  const absl::Duration ceiling =
      std::min(d.backoff_base * growth, d.backoff_max);
  uint64_t r = 0;
  random_(reinterpret_cast<uint8_t*>(&r), sizeof(r));
  const double fraction = static_cast<double>(r >> 11) / (1ull << 53);
  absl::Duration delay = ceiling * fraction;
  if (retry_after.has_value()) delay = std::max(delay, *retry_after);
  return delay;
}

}  // namespace authcode
