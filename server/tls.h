// Transport security for the gRPC listener: the certificate, key and
// optional client CA named by server.tls_* (config.h), read from their
// files, checked, and handed to gRPC in a way that lets them be replaced
// while the server runs.
//
// Reload() (main calls it on SIGHUP) reads the files again. Good material
// is used for every handshake from then on; connections already open keep
// the session they have. Bad material (a file that cannot be read, no PEM
// in it, a key that does not belong to the certificate, an expired
// certificate) is refused, and the material in use stays.
//
// Why not grpc::experimental::TlsServerCredentials: in gRPC 1.51 its
// certificate providers are either fixed at creation or poll files on a
// timer, and the file watcher drops the identity it has when a read fails.
// gRPC's SSL server credentials instead ask a fetcher on every new
// handshake whether the certificates changed, and keep the old ones when
// the new ones do not load; that is what a reload on a signal needs. The
// C++ API does not expose the fetcher, so credentials() wraps the C
// credentials in a grpc::ServerCredentials of its own.
//
// Thread safety: every member may be called from any thread. A
// TlsCredentials must outlive the grpc::Server that listens with its
// credentials(), and serves one listening port.
#ifndef AUTHCODE_SERVER_TLS_H_
#define AUTHCODE_SERVER_TLS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/grpc_security.h"
#include "grpcpp/security/server_credentials.h"
#include "server/config.h"

namespace authcode {

// What one reading of the server.tls_* files produced, checked.
struct TlsMaterial {
  std::string cert_chain;   // PEM, leaf first.
  std::string private_key;  // PEM. Never logged or quoted in errors.
  std::string client_ca;    // PEM; empty without mutual TLS.
  absl::Time not_after;     // When the leaf certificate expires.
};

// Reads and checks the files named in `server`, which must have TLS on.
// Errors name the config key and the file, never their contents.
absl::StatusOr<TlsMaterial> ReadTlsMaterial(const Config::Server& server);

// "plaintext", "tls" or "mtls": what the listener speaks, for logs.
const char* TransportName(const Config::Server& server);

class TlsCredentials {
 public:
  // Reads the files; fails as ReadTlsMaterial() does.
  static absl::StatusOr<std::unique_ptr<TlsCredentials>> Create(
      const Config::Server& server);
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  // For grpc::ServerBuilder::AddListeningPort(); the same object each time.
  std::shared_ptr<grpc::ServerCredentials> credentials() const {
    return credentials_;
  }

  // Reads the files again. On success new handshakes use the new material;
  // on failure the old material stays in use and the error says why.
  absl::Status Reload();

  // The expiry of the certificate in use.
  absl::Time not_after() const;

 private:
  explicit TlsCredentials(Config::Server server, TlsMaterial material);

  // gRPC's fetcher: hands over the material once per reload.
  static grpc_ssl_certificate_config_reload_status Fetch(
      void* self, grpc_ssl_server_certificate_config** config);

  const Config::Server server_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;

  mutable absl::Mutex mu_;
  TlsMaterial material_ ABSL_GUARDED_BY(mu_);
  // Bumped by each good reload; gRPC has the material of `fetched_`.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t fetched_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_TLS_H_
