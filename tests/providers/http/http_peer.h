// The Python HTTP/1.1 server the tests of the HTTP mail providers talk to
// (http_test_server.py, standard library only), run as a child process on
// 127.0.0.1 with a port of its own. It records every request it receives
// as JSON and answers from a queue the test sets up front; see the script's
// docstring for the options and the record format, and
// tests/support/peer_process.h for how the child is started and stopped.
#ifndef AUTHCODE_TESTS_PROVIDERS_HTTP_HTTP_PEER_H_
#define AUTHCODE_TESTS_PROVIDERS_HTTP_HTTP_PEER_H_

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/files.h"
#include "tests/support/peer_process.h"

namespace authcode::testing {

inline std::string HttpPeerScript() {
  return (std::filesystem::path(__FILE__).parent_path() / "http_test_server.py")
      .string();
}

// The server with `args`, such as {"--respond", Respond(202)} or
// {"--tls", "--cert", ..., "--key", ...} or {"--sigv4", "ID:SECRET:REGION:
// SERVICE"}. Every request is on file before its answer goes out, so a
// test may read Request(n) as soon as the client under test returns.
class HttpPeer : public PeerProcess {
 public:
  explicit HttpPeer(const std::vector<std::string>& args = {})
      : PeerProcess(HttpPeerScript(), args, "authcode-http-test"),
        tls_(std::find(args.begin(), args.end(), "--tls") != args.end()) {}

  // "http://127.0.0.1:PORT" + path, or "https://localhost:PORT" + path with
  // --tls (the name the test certificate is for).
  std::string Url(const std::string& path = "") const {
    return tls_ ? absl::StrCat("https://localhost:", port(), path)
                : absl::StrCat("http://127.0.0.1:", port(), path);
  }

  // Requests received so far, over all connections.
  int Requests() const { return CountFiles("req-", ".json"); }

  // The n-th request (from 1) as the server recorded it: n, connection,
  // method, target, version, path, query, headers ([[name, value], ...]),
  // body or body_base64, and sigv4 with --sigv4. Null, and a test failure,
  // when there is no such request.
  nlohmann::json Request(int n) const {
    const std::filesystem::path path = Path(absl::StrCat("req-", n, ".json"));
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << "the HTTP peer has no request " << n << " (it has "
                    << Requests() << ")";
      return nullptr;
    }
    return nlohmann::json::parse(ReadFile(path));
  }

 private:
  bool tls_;
};

// A recorded request's header values by lower-case name; values of a
// repeated name are joined with ",".
inline std::map<std::string, std::string> HeadersOf(
    const nlohmann::json& request) {
  std::map<std::string, std::string> headers;
  for (const auto& pair : request["headers"]) {
    std::string name = pair[0].get<std::string>();
    for (char& c : name) c = static_cast<char>(std::tolower(c));
    std::string& value = headers[name];
    value += (value.empty() ? "" : ",") + pair[1].get<std::string>();
  }
  return headers;
}

// The value of one --respond: an answer with `status`, `headers` (an object
// such as {{"Content-Type", "application/json"}}, or an array of
// [name, value] pairs to repeat a name) and `body`.
inline std::string Respond(int status, nlohmann::json headers = {},
                           std::string body = "") {
  nlohmann::json spec = {{"status", status}, {"body", std::move(body)}};
  if (!headers.is_null()) spec["headers"] = std::move(headers);
  return spec.dump();
}

// The same answer, sent only after `delay_ms` (for client timeouts).
inline std::string RespondAfter(int delay_ms, int status,
                                nlohmann::json headers = {},
                                std::string body = "") {
  nlohmann::json spec = nlohmann::json::parse(
      Respond(status, std::move(headers), std::move(body)));
  spec["delay_ms"] = delay_ms;
  return spec.dump();
}

// A --respond that closes the connection once the request has been read,
// without any answer.
inline std::string DropConnection() {
  return nlohmann::json{{"drop", true}}.dump();
}

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_PROVIDERS_HTTP_HTTP_PEER_H_
