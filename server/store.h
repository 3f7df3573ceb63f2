// PostgreSQL access: the only code that knows SQL or libpqxx.
//
// Each RPC is one call of a function defined in migrations/, over a
// pooled connection, as a prepared statement; the rules (limits, attempts,
// lock-outs) hold in the database, so they hold across replicas. libpqxx
// exceptions never leave this file: a lost or unreachable database is
// Unavailable, anything else Internal with a generic message (the details
// go to the log, never to the caller).
//
// Thread safety: all methods may be called from any thread; each borrows a
// connection from the pool for the length of the call.
#ifndef AUTHCODE_SERVER_STORE_H_
#define AUTHCODE_SERVER_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/codes.h"
#include "server/config.h"

namespace authcode {

struct IssueParams {
  std::string tenant;
  std::string purpose;
  std::string recipient;  // Normalized.
  std::string code_id;
  CodeHash hash;
  absl::Duration ttl;
  int max_attempts = 0;
  std::vector<RateWindow> windows;
  std::string payload;  // Sealed.
  std::string payload_key_id;
  int job_max_attempts = 0;
  // Empty for none; otherwise with the SHA-256 of the request's fields.
  std::string idempotency_key;
  std::string fingerprint;
  // The end user's IP as it is counted (see CountedIp()); empty for none.
  std::string client_ip;
  std::vector<RateWindow> ip_windows;  // Per (tenant, client_ip).
  std::vector<RateWindow> ceiling;     // Per tenant, fixed windows.
};

struct IssueResult {
  // kReplayed: the idempotency key was used before with the same request;
  // the fields are that first call's. kKeyMismatch: it was used with a
  // different request; nothing was written. kIpLimited and kTenantLimited:
  // the client IP's windows or the tenant's ceiling are full.
  enum class Status {
    kIssued,
    kRateLimited,
    kIpLimited,
    kTenantLimited,
    kLocked,
    kReplayed,
    kKeyMismatch,
  };
  Status status = Status::kIssued;
  std::string code_id;      // kIssued, kReplayed
  absl::Time expires_at;    // kIssued, kReplayed
  absl::Time resend_after;  // kIssued, kReplayed
  absl::Time retry_at;      // k*Limited, kLocked
  absl::Time now;           // The database's clock at the decision.
};

struct VerifyParams {
  std::string tenant;
  std::string purpose;
  std::string recipient;  // Normalized.
  std::vector<CodeHash> candidates;
  int max_failures = 0;
  absl::Duration lockout;
  absl::Duration forget_failures_after;
};

struct VerifyResult {
  enum class Outcome {
    kVerified,
    kWrong,
    kExpired,
    kNoCode,
    kExhausted,
    kLocked,
    kUnknownKey,
  };
  Outcome outcome = Outcome::kNoCode;
  int attempts_left = 0;
  absl::Time locked_until;  // kLocked
  std::string key_id;       // kUnknownKey: the key the code was hashed with.
};

// A delivery job claimed by one worker until its lease runs out.
struct ClaimedJob {
  int64_t id = 0;
  std::string code_id;
  std::string tenant;
  std::string purpose;
  std::string payload;
  std::string payload_key_id;
  int attempt = 0;  // 1 for the first try.
  int max_attempts = 0;
  absl::Time expires_at;
  bool expired = false;  // The code died before this try.
  // The job's age when it was claimed (by the database's clock), and when
  // that was (by this process's clock): its age now is the first plus
  // the time since the second.
  absl::Duration queued_for;
  absl::Time claimed_at;
};

struct JobOutcome {
  // kRelease: not tried (shutting down); back to the queue uncounted.
  enum class Kind { kSent, kRetry, kFailed, kRelease };
  Kind kind = Kind::kSent;
  std::string provider;
  std::string message_id;
  std::string error;
  absl::Duration retry_in;  // kRetry
};

struct CleanupCounts {
  int codes = 0;
  int limits = 0;
  int jobs = 0;
  int keys = 0;
};

// The outbox at one moment, for the metrics.
struct OutboxStats {
  int64_t queued = 0;   // Waiting for a first or a later try.
  int64_t sending = 0;  // Claimed by a worker.
  // The oldest queued job's age by the database's clock; zero for none.
  absl::Duration oldest_queued_age;
};

struct DeliveryStatus {
  std::string state;  // queued, sending, sent, failed, superseded
  int attempts = 0;
  std::string provider;
  std::string provider_message_id;
  std::string last_error;
  absl::Time created_at;
  absl::Time updated_at;
  absl::Time next_attempt_at;  // InfinitePast unless queued.
};

// How a database's schema compares with the migrations in this binary.
// Migrate() applies `pending` and refuses a database with `changed` or
// `unknown` migrations.
struct SchemaStatus {
  std::vector<std::string> pending;  // Not applied yet, e.g. "0005_x.sql".
  std::vector<std::string> changed;  // Applied with a different text.
  std::vector<int> unknown;          // Applied by a later binary.

  bool current() const {
    return pending.empty() && changed.empty() && unknown.empty();
  }
  // Why Migrate() leaves such a database alone (FailedPrecondition), or
  // OK when it may apply `pending`.
  absl::Status Refusal() const;
};

// Runs a callback whenever a job is queued anywhere, until destroyed.
class JobListener {
 public:
  virtual ~JobListener() = default;
};

class JobSignal;  // store.cc: how Issue() tells workers of a queued job.

class Store {
 public:
  // Opens up to `pool_size` connections for RPCs and, apart from them, up
  // to `background_pool_size` for delivery and clean-up, so that workers
  // never queue behind a burst of RPCs for a connection. Connections open
  // lazily; Connect() opens one to fail fast on a bad URL or an
  // unreachable server.
  static absl::StatusOr<std::unique_ptr<Store>> Connect(
      const std::string& url, int pool_size, int background_pool_size = 1);
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies migrations/ under an advisory lock, so several servers may
  // start at once, and appends the names of those it applied to
  // `applied_now` (none when the schema was current). Fails with
  // FailedPrecondition, changing nothing, when an applied migration's text
  // has changed or the database holds a migration this binary does not
  // know (a later version migrated it).
  absl::Status Migrate(std::vector<std::string>* applied_now = nullptr);

  // Compares the database's schema with this binary's migrations without
  // changing anything.
  absl::StatusOr<SchemaStatus> CheckSchema();

  absl::StatusOr<IssueResult> Issue(const IssueParams& params);
  absl::StatusOr<VerifyResult> Verify(const VerifyParams& params);

  absl::StatusOr<std::vector<ClaimedJob>> ClaimJobs(int limit,
                                                    absl::Duration lease);
  // False when the job was claimed again meanwhile (lease ran out), in
  // which case the report is dropped.
  absl::StatusOr<bool> FinishJob(const ClaimedJob& job,
                                 const JobOutcome& outcome);

  // Takes one send from `provider`'s quota of `limit` per `window`; false
  // when the current window's quota is spent.
  absl::StatusOr<bool> TakeQuota(const std::string& provider,
                                 absl::Duration window, long long limit);

  // NotFound when no delivery of `tenant` has that code id.
  absl::StatusOr<DeliveryStatus> GetDelivery(const std::string& tenant,
                                             const std::string& code_id);

  // Calls `on_job` whenever a job is queued: at once, on the issuing
  // thread, for a job this Store queued; on a listener thread of its own
  // (LISTEN, on a connection that is re-opened when it breaks) for a job
  // another process queued. The listener must not outlive the Store.
  std::unique_ptr<JobListener> ListenForJobs(std::function<void()> on_job);

  // One batch of clean-up; call again while any count equals batch_size.
  absl::StatusOr<CleanupCounts> Cleanup(absl::Duration keep_expired,
                                        absl::Duration longest_window,
                                        absl::Duration longest_ip_window,
                                        absl::Duration forget_failures_after,
                                        int batch_size);

  // A round trip to the database.
  absl::Status Ping();

  // Counts the unfinished delivery jobs: one query, on the background pool.
  absl::StatusOr<OutboxStats> ReadOutbox();

  // A connection pool's use at this moment; no database round trip.
  struct PoolUse {
    int size = 0;     // Connections it may open.
    int in_use = 0;   // Borrowed.
    int idle = 0;     // Open, waiting to be borrowed.
    int waiting = 0;  // Threads waiting for a connection.
  };
  PoolUse RpcPoolUse();
  PoolUse BackgroundPoolUse();

 private:
  class Pool;
  Store(std::unique_ptr<Pool> pool, std::unique_ptr<Pool> background);

  std::unique_ptr<Pool> pool_;        // RPCs.
  std::unique_ptr<Pool> background_;  // Delivery and clean-up.
  std::unique_ptr<JobSignal> signal_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_STORE_H_
