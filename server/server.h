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
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "providers/provider.h"
#include "server/codes.h"
#include "server/config.h"
#include "server/delivery_worker.h"
#include "server/mail/composer.h"
#include "server/secretbox.h"
#include "server/service.h"
#include "server/store.h"

namespace authcode {

// The name the health service reports the API under.
inline constexpr char kServiceName[] = "authcode.v1.AuthCodeService";

class Server {
 public:
  struct Options {
    // Used instead of the configured provider when set (tests).
    std::unique_ptr<providers::Provider> provider;
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
  Store& store() { return *store_; }
  DeliveryWorker& worker() { return *worker_; }

  // Marks the service NOT_SERVING, stops taking RPCs, lets running ones
  // finish within server.shutdown_grace, then stops delivery and clean-up.
  void Shutdown();

  // Blocks until Shutdown() has finished.
  void Wait();

 private:
  explicit Server(Config config);
  void CleanupLoop();

  const Config config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<CodeHasher> hasher_;
  std::unique_ptr<SecretBox> outbox_;
  std::unique_ptr<Composer> composer_;
  std::unique_ptr<providers::Provider> provider_;
  std::unique_ptr<DeliveryWorker> worker_;
  std::unique_ptr<AuthCodeServiceImpl> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // Guarded by mu_.
  bool stopped_ = false;   // Guarded by mu_.
  std::thread cleaner_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_SERVER_H_
