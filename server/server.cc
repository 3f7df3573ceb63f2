#include "server/server.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/log.h"
#include "server/status_macros.h"

namespace authcode {
namespace {

// "2026-12-05T18:50:14Z", whatever the machine's time zone.
std::string FormatUtc(absl::Time time) {
  return absl::FormatTime(absl::RFC3339_sec, time, absl::UTCTimeZone());
}

// Keeps `object` alive until the process ends, reachable from a global so
// that a leak checker does not report it: a thread that could not be
// stopped in time may still be using it.
template <typename T>
void KeepUntilExit(std::unique_ptr<T> object) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* kept = new std::vector<std::shared_ptr<void>>();
  absl::MutexLock lock(&mu);
  kept->push_back(std::shared_ptr<void>(std::move(object)));
}

}  // namespace

Server::Server(Config config) : config_(std::move(config)) {}

Server::~Server() {
  if (!Shutdown()) {
    // A send is still running on a worker thread that uses these: leave
    // them be; the process is about to end.
    KeepUntilExit(std::move(worker_));
    KeepUntilExit(std::move(providers_));
    KeepUntilExit(std::move(composer_));
    KeepUntilExit(std::move(outbox_));
    KeepUntilExit(std::move(store_));
    KeepUntilExit(std::move(metrics_));
  }
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(Config config,
                                                      Options options) {
  auto server = std::unique_ptr<Server>(new Server(std::move(config)));
  const Config& cfg = server->config_;

  // Certificates first: a bad one should not wait for the database.
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::InsecureServerCredentials();
  if (TlsEnabled(cfg.server)) {
    ASSIGN_OR_RETURN(server->tls_, TlsCredentials::Create(cfg.server));
    credentials = server->tls_->credentials();
  }

  server->metrics_ = std::make_unique<ServerMetrics>();
  ASSIGN_OR_RETURN(server->store_,
                   Store::Connect(cfg.database.url, cfg.database.pool_size,
                                  cfg.delivery.workers + 1));
  server->metrics_->WatchStore(server->store_.get());
  RETURN_IF_ERROR(server->store_->Migrate());
  server->callers_ = std::make_unique<Callers>(cfg);
  server->hasher_ = std::make_unique<CodeHasher>(cfg.hashing_keys);
  server->outbox_ = std::make_unique<SecretBox>(cfg.outbox_keys);
  ASSIGN_OR_RETURN(server->composer_, Composer::Create(cfg.mail));
  ASSIGN_OR_RETURN(server->providers_,
                   ProviderSet::Create(cfg, std::move(options.providers)));
  for (const std::string& identity :
       server->providers_->MisalignedIdentities(cfg.mail.from_address)) {
    log::Warn("mail.misaligned",
              {{"from", cfg.mail.from_address},
               {"provider_identity", identity},
               {"note",
                "mail whose From domain does not align with the "
                "DKIM or login domain fails DMARC and lands in spam"}});
  }
  server->worker_ = std::make_unique<DeliveryWorker>(
      &cfg, server->store_.get(), server->outbox_.get(),
      server->composer_.get(), server->providers_.get(), server->metrics_.get(),
      options.random);
  server->service_ = std::make_unique<AuthCodeServiceImpl>(
      &cfg, server->callers_.get(), server->store_.get(), server->hasher_.get(),
      server->outbox_.get(), server->metrics_.get(), options.random);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(cfg.server.listen, credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(cfg.server.max_request_bytes);
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("server.listen: cannot listen on ", cfg.server.listen,
                     " (address in use, or not an address of this machine)"));
  }
  auto* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(true);

  if (options.start_worker) {
    DeliveryWorker* worker = server->worker_.get();
    worker->Start();
    // Jobs queued here or on any replica wake a worker at once.
    server->listener_ =
        server->store_->ListenForJobs([worker] { worker->Wake(); });
  }
  server->cleaner_ = std::thread([s = server.get()] { s->CleanupLoop(); });
  server->health_ = std::thread([s = server.get()] { s->HealthLoop(); });
  server->LogTransport();
  if (!cfg.metrics.listen.empty()) {
    ASSIGN_OR_RETURN(server->metrics_endpoint_,
                     MetricsEndpoint::Start(cfg.metrics.listen,
                                            &server->metrics_->registry()));
    log::Info("metrics.started",
              {{"listen", cfg.metrics.listen},
               {"port", absl::StrCat(server->metrics_endpoint_->port())},
               {"path", "/metrics"}});
  }
  log::Info("server.started",
            {{"listen", cfg.server.listen},
             {"port", absl::StrCat(server->port_)},
             {"transport", TransportName(cfg.server)},
             {"callers", cfg.tenants.empty()
                             ? "unauthenticated (default_tenant)"
                             : absl::StrCat(cfg.tenants.size(), " tenants")},
             {"chain", absl::StrJoin(cfg.delivery.chain, ",")}});
  return server;
}

void Server::LogTransport() const {
  const Config::Server& s = config_.server;
  if (tls_ != nullptr) {
    const char* client_auth = s.tls_client_ca_file.empty()      ? "none"
                              : s.tls_client_auth == "optional" ? "optional"
                                                                : "require";
    log::Info("tls.loaded", {{"transport", TransportName(s)},
                             {"client_auth", client_auth},
                             {"cert_not_after", FormatUtc(tls_->not_after())}});
  } else if (!IsLoopbackListen(s.listen)) {
    log::Warn("server.plaintext",
              {{"listen", s.listen},
               {"note",
                "server.allow_plaintext is on: calls, codes included, "
                "cross the network unencrypted and unauthenticated; only "
                "safe behind a TLS-terminating proxy or on a network you "
                "trust"}});
  }
}

absl::Status Server::ReloadTls() {
  if (tls_ == nullptr) {
    log::Info("tls.reload_skipped", {{"note", "TLS is off"}});
    return absl::OkStatus();
  }
  const absl::Status reloaded = tls_->Reload();
  if (!reloaded.ok()) {
    log::Error("tls.reload_failed",
               {{"error", std::string(reloaded.message())},
                {"note", "the TLS files loaded before stay in use"}});
    return reloaded;
  }
  log::Info("tls.reloaded", {{"transport", TransportName(config_.server)},
                             {"cert_not_after", FormatUtc(tls_->not_after())}});
  return absl::OkStatus();
}

bool Server::Shutdown() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      cv_.wait(lock, [&] { return stopped_; });
      return !abandoned_;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  const absl::Time deadline = absl::Now() + config_.server.shutdown_grace;
  if (grpc_server_ != nullptr) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
    grpc_server_->Shutdown(absl::ToChronoTime(deadline));
  }
  metrics_endpoint_.reset();
  listener_.reset();
  bool clean = true;
  if (worker_ != nullptr && !worker_->Stop(deadline)) {
    clean = false;
    log::Warn("delivery.stop_timeout",
              {{"note",
                "a send outlived server.shutdown_grace; its job "
                "will be sent again when its lease runs out"}});
  }
  if (cleaner_.joinable()) cleaner_.join();
  if (health_.joinable()) health_.join();
  log::Info("server.stopped", {});
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    abandoned_ = !clean;
  }
  cv_.notify_all();
  return clean;
}

void Server::HealthLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(
      lock, absl::ToChronoMilliseconds(config_.server.health_interval),
      [&] { return stopping_; })) {
    lock.unlock();
    const absl::Status ping = store_->Ping();
    lock.lock();
    // A stop owns the status from here on: it stays NOT_SERVING.
    if (stopping_ || ping.ok() == database_ok_) continue;
    database_ok_ = ping.ok();
    auto* health = grpc_server_->GetHealthCheckService();
    health->SetServingStatus(kServiceName, database_ok_);
    health->SetServingStatus(database_ok_);
    if (database_ok_) {
      log::Info("health.serving", {{"note", "the database answers again"}});
    } else {
      log::Warn("health.not_serving",
                {{"reason", std::string(ping.message())},
                 {"note",
                  "the database does not answer; RPCs fail with "
                  "UNAVAILABLE until it does"}});
    }
  }
}

void Server::CleanupLoop() {
  const Config::Cleanup& c = config_.cleanup;
  const absl::Duration longest = LongestIssueWindow(config_);
  const absl::Duration longest_ip = LongestIpWindow(config_);
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, absl::ToChronoMilliseconds(c.interval),
                       [&] { return stopping_; })) {
    lock.unlock();
    const auto stopping = [this] {
      std::lock_guard<std::mutex> guard(mu_);
      return stopping_;
    };
    CleanupCounts total;
    // A backlog of millions of rows takes many batches: shutdown does not
    // wait for all of them.
    while (!stopping()) {
      absl::StatusOr<CleanupCounts> counts =
          store_->Cleanup(c.keep_expired, longest, longest_ip,
                          config_.limits.forget_failures_after, c.batch_size);
      if (!counts.ok()) break;  // The store logged it; next round retries.
      total.codes += counts->codes;
      total.limits += counts->limits;
      total.jobs += counts->jobs;
      total.keys += counts->keys;
      if (std::max({counts->codes, counts->limits, counts->jobs,
                    counts->keys}) < c.batch_size) {
        break;
      }
    }
    if (total.codes + total.limits + total.jobs + total.keys > 0) {
      log::Info("cleanup.done",
                {{"codes", absl::StrCat(total.codes)},
                 {"limits", absl::StrCat(total.limits)},
                 {"jobs", absl::StrCat(total.jobs)},
                 {"idempotency_keys", absl::StrCat(total.keys)}});
    }
    lock.lock();
  }
}

}  // namespace authcode
