// The HTTP layer every HTTP mail provider sends through, on libcurl.
//
// An HttpClient keeps a pool of curl easy handles; each handle keeps its
// connection open between requests, so a provider called from several
// worker threads holds about one connection per thread and pays the TCP
// and TLS handshakes once. Certificates are verified unless the settings
// say otherwise, only http and https are spoken, redirects are not
// followed, and the proxy comes from the environment as libcurl reads it
// (https_proxy, http_proxy, all_proxy, no_proxy; libcurl ignores an
// upper-case HTTP_PROXY on purpose) unless `proxy` is set.
//
// HttpSettings::Parse reads the settings every HTTP provider shares from
// its config section; see the README for their meaning.
//
// Thread safety: Send() may be called from any number of threads at once.
#ifndef AUTHCODE_PROVIDERS_HTTP_HTTP_CLIENT_H_
#define AUTHCODE_PROVIDERS_HTTP_HTTP_CLIENT_H_

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/registry.h"

namespace authcode::providers::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  Headers headers;  // Sent as given; none may hold CR or LF.
  std::string body;
};

struct HttpResponse {
  long status = 0;
  Headers headers;  // Names in lower case, in the order received.
  std::string body;

  // The first header named `name` (lower case), if any.
  std::optional<std::string> Header(std::string_view name) const;
};

struct HttpSettings {
  // The endpoint's scheme, host and optional port, without a path, e.g.
  // "https://email.eu-west-1.amazonaws.com".
  std::string base_url;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(20);  // The whole exchange.
  std::string ca_file;  // Empty: the system's trust store.
  bool verify_peer = true;
  std::string proxy;  // Empty: from the environment.
  int pool_size = 8;  // Idle handles (and connections) kept.
  absl::Duration idle_timeout = absl::Seconds(55);

  // The keys Parse() reads, for a provider's CheckKeys().
  static const std::set<std::string>& Keys();

  // Reads `endpoint` (default `default_endpoint`), connect_timeout,
  // timeout, ca_file, verify_peer, proxy, pool_size and idle_timeout.
  // Plain http is accepted only to a loopback host, so a mistyped
  // endpoint cannot send credentials and codes in the clear.
  static absl::StatusOr<HttpSettings> Parse(
      const ProviderSettings& settings, const std::string& default_endpoint);
};

class HttpClient {
 public:
  explicit HttpClient(HttpSettings settings);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const HttpSettings& settings() const { return settings_; }

  // One exchange. A response of any status is a value; a failure to get
  // one is Unavailable (refused, reset, dropped, TLS failure),
  // DeadlineExceeded (past `timeout`), FailedPrecondition (a certificate
  // that does not verify) or InvalidArgument (a bad request). Messages
  // hold no header values, so no credential reaches them.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

  // Connects to the endpoint the way Send() would (proxy, TLS with the
  // certificate checked as the settings say) and hangs up without sending
  // a request. Errors as for Send().
  absl::Status CheckReachable();

  // How many connections the client has opened so far.
  long ConnectionsOpened() const;

 private:
  struct Handle;

  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);

  const HttpSettings settings_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_ ABSL_GUARDED_BY(mu_);
  long connections_opened_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace authcode::providers::http

#endif  // AUTHCODE_PROVIDERS_HTTP_HTTP_CLIENT_H_
