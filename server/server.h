// The authcode server: wires config, store, service, delivery worker and
// clean-up together and runs the gRPC server with health checking and
// reflection.
//
// Start() returns once the server listens; Shutdown() stops it gracefully.
// Thread safety: Shutdown() may be called from any thread, once.
#ifndef AUTHCODE_SERVER_SERVER_H_
#define AUTHCODE_SERVER_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "providers/provider.h"
#include "server/callers.h"
#include "server/codes.h"
#include "server/config.h"
#include "server/delivery_worker.h"
#include "server/mail/composer.h"
#include "server/metrics_endpoint.h"
#include "server/provider_set.h"
#include "server/secretbox.h"
#include "server/server_metrics.h"
#include "server/service.h"
#include "server/store.h"
#include "server/tls.h"

namespace authcode {

// The name the health service reports the API under.
inline constexpr char kServiceName[] = "authcode.v1.AuthCodeService";

class Server {
 public:
  struct Options {
    // Provider instances used as they are instead of being built from the
    // config, by instance name (tests).
    std::map<std::string, std::unique_ptr<providers::Provider>> providers;
    RandomSource random = SystemRandom();
    // Start the delivery threads; tests may drive RunOnce() themselves.
    bool start_worker = true;
  };

  // Connects to the database, applies migrations, builds the provider and
  // starts listening. Fails with the reason (bad config, unreachable
  // database, port in use).
  static absl::StatusOr<std::unique_ptr<Server>> Start(Config config,
                                                       Options options);
  ~Server();

  // The port actually bound (useful with a configured port of 0).
  int port() const { return port_; }
  // The metrics endpoint's port; 0 when metrics.listen is empty.
  int metrics_port() const {
    return metrics_endpoint_ == nullptr ? 0 : metrics_endpoint_->port();
  }
  ServerMetrics& metrics() { return *metrics_; }
  Store& store() { return *store_; }
  DeliveryWorker& worker() { return *worker_; }

  // Marks the service NOT_SERVING, stops taking RPCs, lets running RPCs
  // and sends finish within server.shutdown_grace, puts claimed but unsent
  // jobs back, and stops clean-up. False when a send outlived the grace:
  // its thread is still running, so the caller should end the process
  // (the job's lease makes another worker send it).
  bool Shutdown();

  // Reads the TLS certificate, key and client CA files again (SIGHUP) and
  // logs the outcome; on failure the previous ones stay in use. Nothing
  // to do without TLS.
  absl::Status ReloadTls();

 private:
  explicit Server(Config config);
  // Says at start-up which transport is on; warns about plaintext off
  // loopback.
  void LogTransport() const;
  void CleanupLoop();
  // Sets the health status from a database ping every
  // server.health_interval until the stop.
  void HealthLoop();

  const Config config_;
  // Before everything that records into it.
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Callers> callers_;
  std::unique_ptr<CodeHasher> hasher_;
  std::unique_ptr<SecretBox> outbox_;
  std::unique_ptr<Composer> composer_;
  std::unique_ptr<ProviderSet> providers_;
  std::unique_ptr<DeliveryWorker> worker_;
  std::unique_ptr<JobListener> listener_;
  std::unique_ptr<AuthCodeServiceImpl> service_;
  // Null without TLS. Declared before grpc_server_, which uses it until
  // destroyed.
  std::unique_ptr<TlsCredentials> tls_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  // Null when metrics.listen is empty. Last: it reads the store.
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;    // Guarded by mu_.
  bool stopped_ = false;     // Guarded by mu_.
  bool abandoned_ = false;   // A send outlived the grace; guarded by mu_.
  bool database_ok_ = true;  // As last reported; guarded by mu_.
  std::thread cleaner_;
  std::thread health_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_SERVER_H_
