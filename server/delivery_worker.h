// Sends queued deliveries: claims jobs from the outbox, opens the sealed
// payload, composes the mail and hands it to the first provider of the
// purpose's chain that is healthy (circuit closed) and within its quota,
// moving down the chain on a retryable failure; then records the result
// (sent, retry later with backoff, or failed for good).
//
// Jobs are leased, not locked: if this process dies mid-send, another
// worker (here or on another replica) claims the job again when the lease
// runs out. So a mail may be sent twice only when a process dies between
// the provider accepting it and the result being recorded.
//
// Thread safety: Start(), Wake() and Stop() may be called from any thread.
#ifndef AUTHCODE_SERVER_DELIVERY_WORKER_H_
#define AUTHCODE_SERVER_DELIVERY_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "server/codes.h"
#include "server/config.h"
#include "server/mail/composer.h"
#include "server/provider_set.h"
#include "server/secretbox.h"
#include "server/server_metrics.h"
#include "server/store.h"

namespace authcode {

class DeliveryWorker {
 public:
  // Every pointer must outlive the worker.
  DeliveryWorker(const Config* config, Store* store, const SecretBox* outbox,
                 const Composer* composer, const ProviderSet* providers,
                 ServerMetrics* metrics, RandomSource random);
  ~DeliveryWorker();

  // Starts config->delivery.workers threads.
  void Start();

  // Tells an idle thread that a job was queued, so it need not wait for the
  // next poll.
  void Wake();

  // Stops claiming, finishes the sends under way, puts claimed but unsent
  // jobs back in the queue and joins the threads. False when a send was
  // still under way at `deadline`: the threads are then left running (the
  // caller should exit the process; the job's lease makes another worker
  // send it again).
  bool Stop(absl::Time deadline = absl::InfiniteFuture());

  // Claims and processes one batch on the calling thread; returns how many
  // jobs it handled. For tests and tools.
  absl::StatusOr<int> RunOnce();

  // The delay before try number `attempt` + 1: full jitter over an
  // exponential ceiling (backoff_base * 2^(attempt-1), capped at
  // backoff_max), never less than the provider's retry-after.
  absl::Duration Backoff(int attempt,
                         std::optional<absl::Duration> retry_after) const;

 private:
  void Loop();
  void Process(const ClaimedJob& job);
  JobOutcome Deliver(const ClaimedJob& job);
  void Record(const ClaimedJob& job, const JobOutcome& outcome);

  const Config* config_;
  Store* store_;
  const SecretBox* outbox_;
  const Composer* composer_;
  const ProviderSet* providers_;
  ServerMetrics* const metrics_;
  const RandomSource random_;

  std::mutex mu_;
  std::condition_variable cv_;
  int wakes_ = 0;    // Guarded by mu_.
  int running_ = 0;  // Threads not yet finished; guarded by mu_.
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_DELIVERY_WORKER_H_
