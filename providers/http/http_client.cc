#include "providers/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/log.h"

namespace authcode::providers::http {
namespace {

// Bodies past this are not something a mail API answers with; stopping
// there bounds the memory a broken or hostile endpoint can make us use.
constexpr size_t kMaxResponseBytes = 1 << 20;

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

// One part of a parsed URL, or "" when it has none.
std::string UrlPart(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) {
    return "";
  }
  std::string copy = value;
  curl_free(value);
  return copy;
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "[::1]" || host == "::1" ||
         absl::StartsWith(host, "127.");
}

absl::Status CheckEndpoint(const ProviderSettings& settings,
                           const std::string& endpoint) {
  std::unique_ptr<CURLU, UrlDeleter> url(curl_url());
  if (curl_url_set(url.get(), CURLUPART_URL, endpoint.c_str(), 0) !=
      CURLUE_OK) {
    return settings.Error("endpoint", "is not a URL");
  }
  const std::string scheme = UrlPart(url.get(), CURLUPART_SCHEME);
  const std::string host = UrlPart(url.get(), CURLUPART_HOST);
  const std::string path = UrlPart(url.get(), CURLUPART_PATH);
  if (scheme != "https" && scheme != "http") {
    return settings.Error("endpoint", "must start with https://");
  }
  if (scheme == "http" && !IsLoopbackHost(host)) {
    return settings.Error(
        "endpoint",
        "plain http is allowed only to a loopback address; use https://");
  }
  if (!UrlPart(url.get(), CURLUPART_USER).empty() ||
      !UrlPart(url.get(), CURLUPART_QUERY).empty() ||
      !UrlPart(url.get(), CURLUPART_FRAGMENT).empty() ||
      (!path.empty() && path != "/")) {
    return settings.Error("endpoint",
                          "must be a scheme, a host and an optional port only");
  }
  return absl::OkStatus();
}

// The URL without its query, for error messages: some APIs take keys in
// the query string.
std::string UrlForErrors(const std::string& url) {
  return url.substr(0, url.find('?'));
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  const size_t n = size * count;
  if (response->body.size() + n > kMaxResponseBytes) return 0;
  response->body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  // A new status line starts a new response (after a 100 Continue or a
  // proxy's CONNECT answer): only the last one's headers count.
  if (absl::StartsWith(absl::string_view(line.data(), line.size()), "HTTP/")) {
    response->headers.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name(line.substr(0, colon));
  absl::AsciiStrToLower(&name);
  std::string value(line.substr(colon + 1));
  absl::StripAsciiWhitespace(&value);
  response->headers.emplace_back(std::move(name), std::move(value));
  return n;
}

// `subject` names the exchange, e.g. "POST https://host/v3/mail/send".
absl::Status TransferError(const std::string& subject, CURLcode code,
                           const char* detail, const HttpSettings& settings) {
  const std::string what = absl::StrCat(
      subject, ": ", *detail != '\0' ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(absl::StrCat(
          what, " (timeout ", absl::FormatDuration(settings.timeout),
          ", connect_timeout ", absl::FormatDuration(settings.connect_timeout),
          ")"));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return absl::FailedPreconditionError(absl::StrCat(
          what,
          " (the certificate did not verify: set ca_file, or fix the "
          "endpoint's name)"));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return absl::InvalidArgumentError(what);
    case CURLE_WRITE_ERROR:
      return absl::UnavailableError(
          absl::StrCat(what, " (the response was larger than ",
                       kMaxResponseBytes, " bytes)"));
    default:
      return absl::UnavailableError(what);
  }
}

long Milliseconds(absl::Duration d) {
  return static_cast<long>(absl::ToInt64Milliseconds(d));
}

// What every exchange sets the same way: protocols, timeouts, certificate
// checks, proxy. `error` receives libcurl's message for a failure.
void SetConnectionOptions(CURL* curl, const HttpSettings& settings,
                          char* error) {
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   Milliseconds(settings.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Milliseconds(settings.timeout));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER,
                   settings.verify_peer ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST,
                   settings.verify_peer ? 2L : 0L);
  if (!settings.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, settings.ca_file.c_str());
  }
  if (!settings.proxy.empty()) {
    curl_easy_setopt(curl, CURLOPT_PROXY, settings.proxy.c_str());
  }
}

}  // namespace

struct HttpClient::Handle {
  Handle() : curl(curl_easy_init()) {}
  ~Handle() { curl_easy_cleanup(curl); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  CURL* curl;
};

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

const std::set<std::string>& HttpSettings::Keys() {
  static const auto* keys = new std::set<std::string>{
      "endpoint",    "connect_timeout", "timeout",   "ca_file",
      "verify_peer", "proxy",           "pool_size", "idle_timeout"};
  return *keys;
}

absl::StatusOr<HttpSettings> HttpSettings::Parse(
    const ProviderSettings& settings, const std::string& default_endpoint) {
  HttpSettings http;
  http.base_url = settings.GetString("endpoint", default_endpoint);
  if (absl::Status s = CheckEndpoint(settings, http.base_url); !s.ok()) {
    return s;
  }
  while (absl::EndsWith(http.base_url, "/")) http.base_url.pop_back();

  absl::StatusOr<absl::Duration> connect_timeout =
      settings.GetDuration("connect_timeout", http.connect_timeout);
  if (!connect_timeout.ok()) return connect_timeout.status();
  absl::StatusOr<absl::Duration> timeout =
      settings.GetDuration("timeout", http.timeout);
  if (!timeout.ok()) return timeout.status();
  absl::StatusOr<absl::Duration> idle =
      settings.GetDuration("idle_timeout", http.idle_timeout);
  if (!idle.ok()) return idle.status();
  absl::StatusOr<long long> pool_size =
      settings.GetInt("pool_size", http.pool_size, 1, 256);
  if (!pool_size.ok()) return pool_size.status();
  absl::StatusOr<bool> verify = settings.GetBool("verify_peer", true);
  if (!verify.ok()) return verify.status();
  http.connect_timeout = *connect_timeout;
  http.timeout = *timeout;
  http.idle_timeout = *idle;
  http.pool_size = static_cast<int>(*pool_size);
  http.verify_peer = *verify;
  http.proxy = settings.GetString("proxy", "");

  http.ca_file = settings.GetString("ca_file", "");
  if (!http.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadWholeFile(http.ca_file);
    if (!ca.ok()) return settings.Error("ca_file", ca.status().message());
  }
  if (!http.verify_peer) {
    log::Warn("provider.http_tls_unverified",
              {{"section", settings.section()},
               {"endpoint", http.base_url},
               {"note",
                "verify_peer = false: ANYONE ON THE PATH CAN IMPERSONATE "
                "THE PROVIDER and read its credentials and every one-time "
                "code; never in production"}});
  }
  return http;
}

HttpClient::HttpClient(HttpSettings settings) : settings_(std::move(settings)) {
  InitCurlOnce();
}

HttpClient::~HttpClient() = default;

std::unique_ptr<HttpClient::Handle> HttpClient::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  return std::make_unique<Handle>();
}

void HttpClient::Release(std::unique_ptr<Handle> handle) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < settings_.pool_size) {
    idle_.push_back(std::move(handle));
  }
}

long HttpClient::ConnectionsOpened() const {
  absl::MutexLock lock(&mu_);
  return connections_opened_;
}

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  struct SlistDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
  };
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const auto& [name, value] : request.headers) {
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HTTP header \"", absl::CHexEscape(name), "\": holds a line break"));
    }
    // "Name;" is how libcurl is told to send a header with no value.
    const std::string line = value.empty() ? absl::StrCat(name, ";")
                                           : absl::StrCat(name, ": ", value);
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  }
  // No "Expect: 100-continue" round trip before the body.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));

  std::unique_ptr<Handle> handle = Acquire();
  CURL* curl = handle->curl;
  curl_easy_reset(curl);
  HttpResponse response;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  SetConnectionOptions(curl, settings_, error);
  curl_easy_setopt(
      curl, CURLOPT_MAXAGE_CONN,
      static_cast<long>(absl::ToInt64Seconds(settings_.idle_timeout)));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "authcode");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);

  const CURLcode code = curl_easy_perform(curl);
  long connects = 0;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  // The buffer and the lists die with this call; the handle must not
  // point at them once it is back in the pool.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  {
    absl::MutexLock lock(&mu_);
    connections_opened_ += connects;
  }
  Release(std::move(handle));

  if (code != CURLE_OK) {
    return TransferError(
        absl::StrCat(request.method, " ", UrlForErrors(request.url)), code,
        error, settings_);
  }
  return response;
}

absl::Status HttpClient::CheckReachable() {
  char error[CURL_ERROR_SIZE] = {0};  // Outlives the handle.
  // A handle of its own: a connect-only handle must not join the pool.
  Handle handle;
  curl_easy_setopt(handle.curl, CURLOPT_URL, settings_.base_url.c_str());
  SetConnectionOptions(handle.curl, settings_, error);
  curl_easy_setopt(handle.curl, CURLOPT_CONNECT_ONLY, 1L);
  const CURLcode code = curl_easy_perform(handle.curl);
  if (code != CURLE_OK) {
    return TransferError(absl::StrCat("connecting to ", settings_.base_url),
                         code, error, settings_);
  }
  return absl::OkStatus();
}

}  // namespace authcode::providers::http
