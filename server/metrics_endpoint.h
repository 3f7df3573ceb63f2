// The Prometheus scrape endpoint: a small HTTP server (libmicrohttpd, on a
// thread of its own) on a port of its own, apart from the gRPC port, that
// answers GET /metrics with a metrics::Registry's text. Any other path is
// 404, any other method 405.
//
// It is plain HTTP without authentication: the text holds counts and
// provider instance names, never a recipient, a code or a secret. Put it
// on loopback or a network only the scraper reaches.
//
// Thread safety: the endpoint renders on its own thread; destroying it
// stops that thread, waiting for a scrape under way.
#ifndef AUTHCODE_SERVER_METRICS_ENDPOINT_H_
#define AUTHCODE_SERVER_METRICS_ENDPOINT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/metrics.h"

struct MHD_Daemon;

namespace authcode {

class MetricsEndpoint {
 public:
  // Listens on `listen` (host:port, as metrics.listen; port 0 picks a free
  // one). `registry` must outlive the endpoint. Fails naming metrics.listen
  // when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen, metrics::Registry* registry);
  ~MetricsEndpoint();

  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // The port actually bound.
  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;

  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_METRICS_ENDPOINT_H_
