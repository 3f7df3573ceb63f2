#include "server/delivery_worker.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
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
                               providers::Provider* provider,
                               RandomSource random)
    : config_(config),
      store_(store),
      outbox_(outbox),
      composer_(composer),
      provider_(provider),
      random_(std::move(random)) {}

DeliveryWorker::~DeliveryWorker() { Stop(); }

void DeliveryWorker::Start() {
  for (int i = 0; i < config_->delivery.workers; ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

void DeliveryWorker::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++wakes_;
  }
  cv_.notify_one();
}

void DeliveryWorker::Stop() {
  stopping_ = true;
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
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
  const std::string provider(provider_->name());
  JobOutcome failed{JobOutcome::Kind::kFailed, provider, "", "", {}};

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

  const providers::SendResult sent = provider_->Send(*message);
  switch (sent.kind()) {
    case providers::SendResult::Kind::kSent:
      return {JobOutcome::Kind::kSent, provider, sent.message_id(), "", {}};
    case providers::SendResult::Kind::kPermanent:
      failed.error = sent.error();
      return failed;
    case providers::SendResult::Kind::kRetryable:
      break;
  }
  if (job.attempt >= job.max_attempts) {
    failed.error = absl::StrCat("gave up after ", job.attempt,
                                " attempts: ", sent.error());
    return failed;
  }
  return {JobOutcome::Kind::kRetry, provider, "", sent.error(),
          Backoff(job.attempt, sent.retry_after())};
}

void DeliveryWorker::Record(const ClaimedJob& job, const JobOutcome& outcome) {
  absl::StatusOr<bool> recorded = store_->FinishJob(job, outcome);
  const std::string job_id = absl::StrCat(job.id);
  if (!recorded.ok()) {
    // The lease runs out and another claim retries the job.
    log::Error("delivery.record_failed",
               {{"job_id", job_id},
                {"error", std::string(recorded.status().message())}});
    return;
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
