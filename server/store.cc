#include "server/store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/embedded.h"
#include "server/log.h"

namespace authcode {
namespace {

// Raised by authcode_issue() (migrations/0004_callers.sql).
constexpr char kIdempotencyKeyReused[] = "AC001";

// Any constant works; it only has to be the same for every replica.
constexpr int64_t kMigrationLockId = 0x6175746863646531;  // "authcde1"

// Times cross the wire as microseconds since the epoch.
std::string Micros(absl::string_view column) {
  return absl::StrCat("(extract(epoch FROM ", column, ") * 1000000)::bigint");
}

absl::Time FromMicros(const pqxx::field& f) {
  return f.is_null() ? absl::InfinitePast()
                     : absl::FromUnixMicros(f.as<int64_t>());
}

std::string Interval(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Microseconds(d), " microseconds");
}

// A PostgreSQL array literal of quoted elements. Elements never hold '"' or
// '\' except the escaped bytea prefix below.
std::string ArrayLiteral(const std::vector<std::string>& items) {
  if (items.empty()) return "{}";
  return absl::StrCat("{\"", absl::StrJoin(items, "\",\""), "\"}");
}

// Rate windows as the two parallel arrays the SQL functions take.
struct WindowArrays {
  explicit WindowArrays(const std::vector<RateWindow>& rates) {
    std::vector<std::string> w, l;
    for (const RateWindow& rate : rates) {
      w.push_back(Interval(rate.window));
      l.push_back(absl::StrCat(rate.limit));
    }
    windows = ArrayLiteral(w);
    limits = ArrayLiteral(l);
  }
  std::string windows;
  std::string limits;
};

std::string ByteaArrayLiteral(const std::vector<CodeHash>& hashes) {
  std::vector<std::string> items;
  for (const CodeHash& h : hashes) {
    // "\\x…" inside an array literal reads as the bytea text "\x…".
    items.push_back(absl::StrCat("\\\\x", absl::BytesToHexString(h.digest)));
  }
  return ArrayLiteral(items);
}

pqxx::binarystring Binary(const std::string& bytes) {
  return pqxx::binarystring(bytes.data(), bytes.size());
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

int MigrationVersion(const EmbeddedFile& file) {
  return std::atoi(std::string(file.path).c_str());
}

// Version -> SHA-256 of every migration applied to the database.
std::map<int, std::string> ReadApplied(pqxx::transaction_base& tx) {
  std::map<int, std::string> applied;
  for (const auto& row :
       tx.exec("SELECT version, sha256 FROM authcode_migrations")) {
    applied[row[0].as<int>()] = row[1].as<std::string>();
  }
  return applied;
}

SchemaStatus CompareSchema(const std::map<int, std::string>& applied) {
  SchemaStatus schema;
  std::set<int> known;
  for (const EmbeddedFile& file : EmbeddedMigrations()) {
    const int version = MigrationVersion(file);
    known.insert(version);
    auto it = applied.find(version);
    if (it == applied.end()) {
      schema.pending.emplace_back(file.path);
    } else if (it->second != Sha256Hex(file.contents)) {
      schema.changed.emplace_back(file.path);
    }
  }
  for (const auto& [version, sha] : applied) {
    if (known.count(version) == 0) schema.unknown.push_back(version);
  }
  return schema;
}

}  // namespace

absl::Status SchemaStatus::Refusal() const {
  if (!changed.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("migration ", absl::StrJoin(changed, ", "),
                     " differs from the one applied to this database; applied "
                     "migrations must never change"));
  }
  if (!unknown.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the schema is newer than this binary: migration ",
        absl::StrJoin(unknown, ", "),
        " was applied by a later authcode, and this one knows migrations "
        "up to ",
        EmbeddedMigrations().empty()
            ? 0
            : MigrationVersion(EmbeddedMigrations().back()),
        "; run that later version (or restore a backup taken before it)"));
  }
  return absl::OkStatus();
}

namespace {

// SQLSTATE classes where trying again later may work.
bool IsTransient(const std::string& sqlstate) {
  static constexpr std::string_view kTransient[] = {
      "08",     // connection exception
      "53",     // insufficient resources
      "57P",    // operator intervention (shutdown, crash recovery)
      "57014",  // statement timeout
      "40001",  // serialization failure
      "40P01",  // deadlock
  };
  for (std::string_view prefix : kTransient) {
    if (sqlstate.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::string FirstLine(const char* what) {
  std::string_view text(what);
  return std::string(text.substr(0, text.find('\n')));
}

const std::vector<std::pair<std::string, std::string>>& Statements() {
  static const auto* statements =
      new std::vector<std::pair<std::string, std::string>>{
          {"issue",
           absl::StrCat("SELECT o_status, o_code_id::text, ",
                        Micros("o_expires_at"), ", ", Micros("o_resend_after"),
                        ", ", Micros("o_retry_at"), ", ",
                        Micros("clock_timestamp()"),
                        " FROM authcode_issue($1, $2, $3, $4::uuid, $5, $6, "
                        "$7::interval, $8, $9::interval[], $10::integer[], "
                        "$11, $12, $13, NULLIF($14, ''), $15, NULLIF($16, ''), "
                        "$17::interval[], $18::integer[], $19::interval[], "
                        "$20::integer[])")},
          {"verify", absl::StrCat("SELECT o_outcome, o_attempts_left, ",
                                  Micros("o_locked_until"),
                                  ", o_key_id FROM authcode_verify($1, $2, $3, "
                                  "$4::text[], $5::bytea[], $6, $7::interval, "
                                  "$8::interval)")},
          {"claim",
           absl::StrCat("SELECT id, code_id::text, tenant, purpose, payload, "
                        "payload_key_id, attempts, max_attempts, ",
                        Micros("expires_at"), ", expired, ",
                        Micros("queued_for"),
                        " FROM authcode_claim_jobs($1, $2::interval)")},
          {"finish",
           "SELECT authcode_finish_job($1, $2, $3, NULLIF($4, ''), "
           "NULLIF($5, ''), NULLIF($6, ''), $7::interval)"},
          {"cleanup",
           "SELECT o_codes, o_limits, o_jobs, o_keys FROM authcode_cleanup("
           "$1::interval, $2::interval, $3::interval, $4::interval, $5)"},
          {"take_quota",
           "SELECT coalesce(authcode_take_quota($1, $2::interval, $3), "
           "false)"},
          {"get_delivery",
           absl::StrCat("SELECT state, attempts, provider, "
                        "provider_message_id, last_error, ",
                        Micros("created_at"), ", ", Micros("updated_at"), ", ",
                        Micros("next_attempt_at"),
                        " FROM authcode_get_delivery($1, $2::uuid)")},
          {"ping", "SELECT 1"},
          // One subquery per partial index (0001_init.sql), so that a
          // scrape reads indexes of unfinished jobs only.
          {"outbox",
           absl::StrCat(
               "SELECT (SELECT count(*) FROM delivery_jobs "
               "WHERE state = 'queued'), "
               "(SELECT count(*) FROM delivery_jobs WHERE state = 'sending'), "
               "(SELECT ",
               Micros("clock_timestamp() - min(created_at)"),
               " FROM delivery_jobs WHERE state = 'queued')")},
      };
  return *statements;
}

}  // namespace

// A fixed number of connections, each used by one thread at a time. A
// connection that broke is dropped and a new one made on the next borrow.
class Store::Pool {
 public:
  Pool(std::string url, int size) : url_(std::move(url)), size_(size) {}

  const std::string& url() const { return url_; }

  Store::PoolUse Use() {
    std::lock_guard<std::mutex> lock(mu_);
    const int idle = static_cast<int>(idle_.size());
    return {size_, open_ - idle, idle, waiting_};
  }

  // Runs `fn` on a borrowed connection and turns any libpqxx exception into
  // a status. `what` names the operation in logs.
  absl::Status Run(std::string_view what,
                   const std::function<void(pqxx::connection&)>& fn) {
    std::unique_ptr<pqxx::connection> conn;
    try {
      conn = Borrow();
      fn(*conn);
      Return(std::move(conn));
      return absl::OkStatus();
    } catch (const pqxx::broken_connection& e) {
      // The server restarted or the network broke: the idle connections
      // are most likely dead too.
      Discard(/*flush_idle=*/true);
      log::Warn("db.unavailable",
                {{"op", std::string(what)}, {"error", FirstLine(e.what())}});
      return absl::UnavailableError("the database is unreachable");
    } catch (const pqxx::sql_error& e) {
      // The connection may be mid-transaction or broken; start afresh.
      Discard();
      const std::string state = e.sqlstate();
      if (state == kIdempotencyKeyReused) {
        return absl::FailedPreconditionError("idempotency key reused");
      }
      log::Error("db.error", {{"op", std::string(what)},
                              {"sqlstate", state},
                              {"error", FirstLine(e.what())}});
      if (IsTransient(state)) {
        return absl::UnavailableError("the database is unavailable");
      }
      return absl::InternalError("database error");
    } catch (const std::exception& e) {
      Discard();
      log::Error("db.error",
                 {{"op", std::string(what)}, {"error", FirstLine(e.what())}});
      return absl::InternalError("database error");
    }
  }

 private:
  std::unique_ptr<pqxx::connection> Borrow() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++waiting_;
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
      --waiting_;
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
      }
      ++open_;
    }
    // A throw from here on is caught by Run(), which calls Discard().
    auto conn = std::make_unique<pqxx::connection>(url_);
    conn->set_variable("statement_timeout", "'30s'");
    for (const auto& [name, sql] : Statements()) conn->prepare(name, sql);
    return conn;
  }

  void Return(std::unique_ptr<pqxx::connection> conn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }

  // Forgets a borrowed connection (the caller's unique_ptr closes it),
  // and with `flush_idle` every idle one too.
  void Discard(bool flush_idle = false) {
    std::vector<std::unique_ptr<pqxx::connection>> flushed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
      if (flush_idle) {
        open_ -= static_cast<int>(idle_.size());
        flushed.swap(idle_);
      }
    }
    cv_.notify_all();
  }

  const std::string url_;
  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;     // Idle plus borrowed.
  int waiting_ = 0;  // Threads in Borrow() waiting for a connection.
};

// Tells delivery workers that Issue() queued a job. This process's
// listeners are called at once. Other processes hear of it through a NOTIFY
// on a connection of its own, one at most every kAnnounceSpacing however
// many jobs were queued meanwhile. The NOTIFY stays out of the issuing
// transaction on purpose: PostgreSQL 15 holds a database-wide lock from a
// notifying transaction's pre-commit until its commit is flushed, so
// notifying issues could not share a WAL flush, and issue throughput
// halved (bench/README.md). A lost announcement costs at most one
// delivery.poll_interval: the job itself is in the table.
class JobSignal {
 public:
  explicit JobSignal(std::string url) : url_(std::move(url)) {}

  ~JobSignal() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // After the transaction that queued a job committed.
  void Queued() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::function<void()>* on_job : listeners_) (*on_job)();
    pending_ = true;
    if (!thread_.joinable()) thread_ = std::thread([this] { Announce(); });
    cv_.notify_all();
  }

  void AddListener(const std::function<void()>* on_job) {
    std::lock_guard<std::mutex> lock(mu_);
    listeners_.push_back(on_job);
  }

  void RemoveListener(const std::function<void()>* on_job) {
    std::lock_guard<std::mutex> lock(mu_);
    listeners_.erase(std::find(listeners_.begin(), listeners_.end(), on_job));
  }

  // The server process behind the announcing connection (0 while there is
  // none): this process's listeners heard of its jobs already.
  int announcer_pid() const { return announcer_pid_; }

  static constexpr char kChannel[] = "authcode_delivery";

 private:
  static constexpr auto kAnnounceSpacing = std::chrono::milliseconds(20);
  static constexpr auto kPauseAfterFailure = std::chrono::seconds(1);

  void Announce() {
    std::unique_ptr<pqxx::connection> conn;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return pending_ || stopping_; });
      if (stopping_) return;
      pending_ = false;
      lock.unlock();
      std::chrono::milliseconds pause = kAnnounceSpacing;
      try {
        if (conn == nullptr) {
          conn = std::make_unique<pqxx::connection>(url_);
          announcer_pid_ = conn->backendpid();
        }
        pqxx::nontransaction tx(*conn);
        tx.exec0(absl::StrCat("NOTIFY ", kChannel));
      } catch (const std::exception& e) {
        conn.reset();
        announcer_pid_ = 0;
        log::Warn("db.notify_failed", {{"error", FirstLine(e.what())}});
        pause = kPauseAfterFailure;
      }
      lock.lock();
      cv_.wait_for(lock, pause, [&] { return stopping_; });
    }
  }

  const std::string url_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<const std::function<void()>*> listeners_;  // Guarded by mu_.
  bool pending_ = false;                                 // Guarded by mu_.
  bool stopping_ = false;                                // Guarded by mu_.
  std::thread thread_;                                   // Started under mu_.
  std::atomic<int> announcer_pid_{0};
};

absl::StatusOr<std::unique_ptr<Store>> Store::Connect(
    const std::string& url, int pool_size, int background_pool_size) {
  // libpq waits forever for an unreachable host unless told otherwise.
  setenv("PGCONNECT_TIMEOUT", "5", /*overwrite=*/0);
  auto store = std::unique_ptr<Store>(
      new Store(std::make_unique<Pool>(url, pool_size),
                std::make_unique<Pool>(url, background_pool_size)));
  absl::Status status = store->Ping();
  if (!status.ok()) return status;
  return store;
}

Store::Store(std::unique_ptr<Pool> pool, std::unique_ptr<Pool> background)
    : pool_(std::move(pool)),
      background_(std::move(background)),
      signal_(std::make_unique<JobSignal>(pool_->url())) {}
Store::~Store() = default;

absl::Status Store::Ping() {
  return pool_->Run("ping", [](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_prepared("ping");
  });
}

absl::Status Store::Migrate(std::vector<std::string>* applied_now) {
  absl::Status failure;
  absl::Status status = pool_->Run("migrate", [&](pqxx::connection& c) {
    // The lock is the session's: an error drops the connection (Run) and
    // with it the lock.
    std::map<int, std::string> applied;
    {
      pqxx::nontransaction session(c);
      session.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockId);
      session.exec(
          "CREATE TABLE IF NOT EXISTS authcode_migrations ("
          "version integer PRIMARY KEY, name text NOT NULL, "
          "sha256 text NOT NULL, applied_at timestamptz NOT NULL "
          "DEFAULT now())");
      applied = ReadApplied(session);
    }

    failure = CompareSchema(applied).Refusal();
    for (const EmbeddedFile& file : EmbeddedMigrations()) {
      if (!failure.ok()) break;
      const int version = MigrationVersion(file);
      if (applied.count(version) > 0) continue;
      const std::string name(file.path);
      pqxx::work tx(c);
      tx.exec(std::string(file.contents));
      tx.exec_params(
          "INSERT INTO authcode_migrations (version, name, sha256) "
          "VALUES ($1, $2, $3)",
          version, name, Sha256Hex(file.contents));
      tx.commit();
      log::Info("db.migrated", {{"migration", name}});
      if (applied_now != nullptr) applied_now->push_back(name);
    }
    pqxx::nontransaction unlock(c);
    unlock.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockId);
  });
  return status.ok() ? failure : status;
}

absl::StatusOr<SchemaStatus> Store::CheckSchema() {
  SchemaStatus schema;
  absl::Status status = pool_->Run("check_schema", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const bool exists =
        tx.exec1("SELECT to_regclass('authcode_migrations') IS NOT NULL")[0]
            .as<bool>();
    schema =
        CompareSchema(exists ? ReadApplied(tx) : std::map<int, std::string>());
  });
  if (!status.ok()) return status;
  return schema;
}

absl::StatusOr<IssueResult> Store::Issue(const IssueParams& p) {
  const WindowArrays windows(p.windows);
  const WindowArrays ip_windows(p.ip_windows);
  const WindowArrays ceiling(p.ceiling);
  IssueResult result;
  absl::Status status = pool_->Run("issue", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const pqxx::row row = tx.exec_prepared1(
        "issue", p.tenant, p.purpose, p.recipient, p.code_id, p.hash.key_id,
        Binary(p.hash.digest), Interval(p.ttl), p.max_attempts, windows.windows,
        windows.limits, Binary(p.payload), p.payload_key_id, p.job_max_attempts,
        p.idempotency_key, Binary(p.fingerprint), p.client_ip,
        ip_windows.windows, ip_windows.limits, ceiling.windows, ceiling.limits);
    static const std::map<std::string, IssueResult::Status> kStatuses = {
        {"issued", IssueResult::Status::kIssued},
        {"rate_limited", IssueResult::Status::kRateLimited},
        {"ip_limited", IssueResult::Status::kIpLimited},
        {"tenant_limited", IssueResult::Status::kTenantLimited},
        {"locked", IssueResult::Status::kLocked},
        {"replayed", IssueResult::Status::kReplayed},
        {"key_mismatch", IssueResult::Status::kKeyMismatch},
    };
    result.status = kStatuses.at(row[0].as<std::string>());
    result.code_id = row[1].is_null() ? "" : row[1].as<std::string>();
    result.expires_at = FromMicros(row[2]);
    result.resend_after = FromMicros(row[3]);
    result.retry_at = FromMicros(row[4]);
    result.now = FromMicros(row[5]);
  });
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    // The key was taken meanwhile by a request for another recipient.
    result.status = IssueResult::Status::kKeyMismatch;
    return result;
  }
  if (!status.ok()) return status;
  if (result.status == IssueResult::Status::kIssued) signal_->Queued();
  return result;
}

absl::StatusOr<VerifyResult> Store::Verify(const VerifyParams& p) {
  std::vector<std::string> key_ids;
  for (const CodeHash& h : p.candidates) key_ids.push_back(h.key_id);
  VerifyResult result;
  absl::Status status = pool_->Run("verify", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const pqxx::row row = tx.exec_prepared1(
        "verify", p.tenant, p.purpose, p.recipient, ArrayLiteral(key_ids),
        ByteaArrayLiteral(p.candidates), p.max_failures, Interval(p.lockout),
        Interval(p.forget_failures_after));
    static const std::map<std::string, VerifyResult::Outcome> kOutcomes = {
        {"verified", VerifyResult::Outcome::kVerified},
        {"wrong", VerifyResult::Outcome::kWrong},
        {"expired", VerifyResult::Outcome::kExpired},
        {"no_code", VerifyResult::Outcome::kNoCode},
        {"exhausted", VerifyResult::Outcome::kExhausted},
        {"locked", VerifyResult::Outcome::kLocked},
        {"unknown_key", VerifyResult::Outcome::kUnknownKey},
    };
    result.outcome = kOutcomes.at(row[0].as<std::string>());
    result.attempts_left = row[1].as<int>();
    result.locked_until = FromMicros(row[2]);
    result.key_id = row[3].is_null() ? "" : row[3].as<std::string>();
  });
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<std::vector<ClaimedJob>> Store::ClaimJobs(int limit,
                                                         absl::Duration lease) {
  std::vector<ClaimedJob> jobs;
  absl::Status status = background_->Run("claim", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_prepared("claim", limit, Interval(lease))) {
      ClaimedJob job;
      job.id = row[0].as<int64_t>();
      job.code_id = row[1].as<std::string>();
      job.tenant = row[2].as<std::string>();
      job.purpose = row[3].as<std::string>();
      job.payload = pqxx::binarystring(row[4]).str();
      job.payload_key_id = row[5].as<std::string>();
      job.attempt = row[6].as<int>();
      job.max_attempts = row[7].as<int>();
      job.expires_at = FromMicros(row[8]);
      job.expired = row[9].as<bool>();
      job.queued_for = absl::Microseconds(row[10].as<int64_t>());
      job.claimed_at = absl::Now();
      jobs.push_back(std::move(job));
    }
  });
  if (!status.ok()) return status;
  return jobs;
}

absl::StatusOr<bool> Store::FinishJob(const ClaimedJob& job,
                                      const JobOutcome& outcome) {
  static constexpr const char* kKinds[] = {"sent", "retry", "failed",
                                           "release"};
  const char* kind = kKinds[static_cast<int>(outcome.kind)];
  bool finished = false;
  absl::Status status = background_->Run("finish", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    finished = tx.exec_prepared1("finish", job.id, job.attempt, kind,
                                 outcome.provider, outcome.message_id,
                                 outcome.error, Interval(outcome.retry_in))[0]
                   .as<bool>();
  });
  if (!status.ok()) return status;
  return finished;
}

absl::StatusOr<OutboxStats> Store::ReadOutbox() {
  OutboxStats stats;
  absl::Status status = background_->Run("outbox", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const pqxx::row row = tx.exec_prepared1("outbox");
    stats.queued = row[0].as<int64_t>();
    stats.sending = row[1].as<int64_t>();
    if (!row[2].is_null()) {
      stats.oldest_queued_age = absl::Microseconds(row[2].as<int64_t>());
    }
  });
  if (!status.ok()) return status;
  return stats;
}

Store::PoolUse Store::RpcPoolUse() { return pool_->Use(); }
Store::PoolUse Store::BackgroundPoolUse() { return background_->Use(); }

absl::StatusOr<CleanupCounts> Store::Cleanup(
    absl::Duration keep_expired, absl::Duration longest_window,
    absl::Duration longest_ip_window, absl::Duration forget_failures_after,
    int batch_size) {
  CleanupCounts counts;
  absl::Status status = background_->Run("cleanup", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const pqxx::row row =
        tx.exec_prepared1("cleanup", Interval(keep_expired),
                          Interval(longest_window), Interval(longest_ip_window),
                          Interval(forget_failures_after), batch_size);
    counts.codes = row[0].as<int>();
    counts.limits = row[1].as<int>();
    counts.jobs = row[2].as<int>();
    counts.keys = row[3].as<int>();
  });
  if (!status.ok()) return status;
  return counts;
}

absl::StatusOr<bool> Store::TakeQuota(const std::string& provider,
                                      absl::Duration window, long long limit) {
  bool taken = false;
  absl::Status status =
      background_->Run("take_quota", [&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        taken = tx.exec_prepared1("take_quota", provider, Interval(window),
                                  limit)[0]
                    .as<bool>();
      });
  if (!status.ok()) return status;
  return taken;
}

absl::StatusOr<DeliveryStatus> Store::GetDelivery(const std::string& tenant,
                                                  const std::string& code_id) {
  std::optional<DeliveryStatus> found;
  absl::Status status = pool_->Run("get_delivery", [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const pqxx::result r = tx.exec_prepared("get_delivery", tenant, code_id);
    if (r.empty()) return;
    const pqxx::row row = r[0];
    const auto text = [](const pqxx::field& f) {
      return f.is_null() ? std::string() : f.as<std::string>();
    };
    found = DeliveryStatus{text(row[0]),       row[1].as<int>(),
                           text(row[2]),       text(row[3]),
                           text(row[4]),       FromMicros(row[5]),
                           FromMicros(row[6]), FromMicros(row[7])};
  });
  if (!status.ok()) return status;
  if (!found.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no delivery for code_id ", code_id));
  }
  return *found;
}

namespace {

// Hears of this process's jobs from the JobSignal, and of other
// processes' jobs through LISTEN on a connection of its own. A broken
// connection is re-opened after a pause, and `on_job` called then too,
// since notifications sent while it was away are lost.
class PgJobListener : public JobListener {
 public:
  PgJobListener(std::string url, JobSignal* signal,
                std::function<void()> on_job)
      : url_(std::move(url)), signal_(signal), on_job_(std::move(on_job)) {
    signal_->AddListener(&on_job_);
    thread_ = std::thread([this] { Run(); });
  }

  ~PgJobListener() override {
    stop_ = true;
    thread_.join();
    signal_->RemoveListener(&on_job_);
  }

 private:
  class Receiver : public pqxx::notification_receiver {
   public:
    Receiver(pqxx::connection_base& c, const PgJobListener& listener)
        : pqxx::notification_receiver(c, JobSignal::kChannel),
          listener_(listener) {}
    void operator()(const std::string&, int backend_pid) override {
      if (backend_pid != listener_.signal_->announcer_pid()) {
        listener_.on_job_();
      }
    }

   private:
    const PgJobListener& listener_;
  };

  void Run() {
    while (!stop_) {
      try {
        pqxx::connection conn(url_);
        Receiver receiver(conn, *this);
        on_job_();
        while (!stop_) {
          // Short waits, so the destructor need not wait long.
          conn.await_notification(0, 200000);
        }
      } catch (const std::exception& e) {
        log::Warn("db.listen_failed", {{"error", FirstLine(e.what())}});
        for (int i = 0; i < 10 && !stop_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
  }

  const std::string url_;
  JobSignal* const signal_;
  const std::function<void()> on_job_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<JobListener> Store::ListenForJobs(
    std::function<void()> on_job) {
  return std::make_unique<PgJobListener>(pool_->url(), signal_.get(),
                                         std::move(on_job));
}

}  // namespace authcode
