#include "server/metrics_endpoint.h"

#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/log.h"

namespace authcode {
namespace {

// A scrape is one small request: a client idle this long is dropped, and
// a few at once are plenty.
constexpr unsigned int kConnectionTimeoutSeconds = 10;
constexpr unsigned int kMaxConnections = 16;

// Queues `body` with `status`; `content_type` and an Allow header when
// given.
MHD_Result Answer(MHD_Connection* connection, unsigned int status,
                  const std::string& body, const char* content_type,
                  const char* allow = nullptr) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (allow != nullptr) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
  }
  const MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

MHD_Result HandleRequest(void* cls, MHD_Connection* connection, const char* url,
                         const char* method, const char* /*version*/,
                         const char* /*upload_data*/,
                         size_t* /*upload_data_size*/, void** /*req_cls*/) {
  auto* registry = static_cast<metrics::Registry*>(cls);
  // A body, if any, is never read: the answer is queued at once and
  // libmicrohttpd discards the rest.
  if (std::strcmp(url, "/metrics") != 0) {
    return Answer(connection, MHD_HTTP_NOT_FOUND, "not found; try /metrics\n",
                  "text/plain; charset=utf-8");
  }
  if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    return Answer(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                  "only GET is allowed\n", "text/plain; charset=utf-8",
                  "GET, HEAD");
  }
  return Answer(connection, MHD_HTTP_OK, registry->Render(),
                metrics::kContentType);
}

void LogHttpError(void* /*cls*/, const char* format, va_list args) {
  char text[512];
  std::vsnprintf(text, sizeof(text), format, args);
  std::string message(text);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  log::Warn("metrics.http_error", {{"error", message}});
}

// `listen` as a socket address: "host:port", the host a name, an IPv4
// address or an IPv6 address in brackets.
absl::StatusOr<addrinfo*> Resolve(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen: expected host:port, got ", listen));
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (error != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics.listen: cannot resolve ", host, ": ", gai_strerror(error)));
  }
  return found;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, metrics::Registry* registry) {
  absl::StatusOr<addrinfo*> address = Resolve(listen);
  if (!address.ok()) return address.status();

  auto endpoint = std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint());
  unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if ((*address)->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  endpoint->daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &HandleRequest, registry,
      // The logger first, so that start-up errors reach it too.
      MHD_OPTION_EXTERNAL_LOGGER, &LogHttpError, nullptr, MHD_OPTION_SOCK_ADDR,
      (*address)->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
      kConnectionTimeoutSeconds, MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
      MHD_OPTION_END);
  freeaddrinfo(*address);
  if (endpoint->daemon_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("metrics.listen: cannot listen on ", listen,
                     " (address in use, or not an address of this machine)"));
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(endpoint->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  endpoint->port_ = info == nullptr ? 0 : info->port;
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace authcode
