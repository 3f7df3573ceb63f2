// Sends per second through the HTTP providers (ses, with SigV4 signing,
// and sendgrid) to a local HTTP server (the Python peer the tests use), over
// HTTPS with the providers' connection pools, and over HTTPS with a
// provider built afresh per message, so that each send pays for TCP and
// the TLS handshake.
//
//   http_throughput [MESSAGES] [THREADS]   (defaults 400 and 4)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "providers/registry.h"
#include "spdlog/spdlog.h"
#include "tests/providers/http/http_peer.h"
#include "tests/support/peer_process.h"

namespace authcode {
namespace {

using providers::Message;
using providers::Provider;
using providers::ProviderRegistry;
using providers::ProviderSettings;

std::unique_ptr<Provider> MakeProvider(const std::string& type,
                                       const testing::HttpPeer& peer,
                                       const std::string& ca_file,
                                       int pool_size) {
  ProviderRegistry registry;
  providers::RegisterBuiltinProviders(registry);
  std::map<std::string, std::string> settings = {
      {"endpoint", peer.Url("")},
      {"ca_file", ca_file},
      {"pool_size", std::to_string(pool_size)}};
  if (type == "ses") {
    settings.insert({{"region", "eu-west-1"},
                     {"access_key_id", "AKIDEXAMPLE"},
                     {"secret_access_key", "bench-secret"},
                     {"session_token", std::string(600, 't')}});
  } else {
    settings.insert({{"api_key", "SG.bench-key"}});
  }
  auto provider = registry.Create(
      type, ProviderSettings("providers." + type, std::move(settings)));
  if (!provider.ok()) {
    std::fprintf(stderr, "%s provider: %s\n", type.c_str(),
                 std::string(provider.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(provider);
}

Message BenchMessage(int n) {
  Message m;
  m.from_address = "codes@example.com";
  m.from_name = "Acme";
  m.to_address = "user" + std::to_string(n) + "@example.net";
  m.subject = "Your sign-in code";
  m.text = "Your code is 123456. It is valid for 10 minutes.\n";
  m.html = "<p>Your code is <b>123456</b>. It is valid for 10 minutes.</p>\n";
  m.delivery_id = "bench-" + std::to_string(n);
  return m;
}

// Sends `messages` from `threads` threads; `send` sends message n. Returns
// messages per second, or exits on a failed send.
template <typename Send>
double Run(int messages, int threads, Send send) {
  std::atomic<int> next{0}, failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int n = next++; n < messages; n = next++) {
        if (!send(n)) ++failed;
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (failed > 0) {
    std::fprintf(stderr, "%d sends failed\n", failed.load());
    std::exit(1);
  }
  return messages / seconds;
}

struct Figures {
  double per_second;
  int connections;
};

Figures Measure(const std::string& type, const std::string& certs, int messages,
                int threads, bool pooled) {
  const std::string answer =
      type == "ses" ? testing::Respond(200, {}, R"({"MessageId":"bench"})")
                    : testing::Respond(202, {{"X-Message-Id", "bench"}});
  testing::HttpPeer peer({"--tls", "--cert", certs + "/server.pem", "--key",
                          certs + "/server.key", "--respond", answer});
  const std::string ca = certs + "/ca.pem";
  double rate = 0;
  if (pooled) {
    std::unique_ptr<Provider> provider = MakeProvider(type, peer, ca, threads);
    rate = Run(messages, threads,
               [&](int n) { return provider->Send(BenchMessage(n)).ok(); });
  } else {
    rate = Run(messages, threads, [&](int n) {
      return MakeProvider(type, peer, ca, 1)->Send(BenchMessage(n)).ok();
    });
  }
  return {rate, peer.Connections()};
}

int Main(int argc, char** argv) {
  const int messages = argc > 1 ? std::atoi(argv[1]) : 400;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 4;
  spdlog::set_level(spdlog::level::warn);  // No "ready" line per provider.
  const std::string certs = testing::MakeTempDir("authcode-http-bench");
  if (!testing::MakeTestCerts(certs)) return 1;

  std::printf(
      "http_throughput: %d messages from %d threads over HTTPS to the local "
      "Python peer\n",
      messages, threads);
  for (const std::string type : {"ses", "sendgrid"}) {
    const Figures pooled = Measure(type, certs, messages, threads, true);
    const Figures fresh = Measure(type, certs, messages, threads, false);
    std::printf("%-8s pooled:   %7.1f sends/s over %d connections\n",
                type.c_str(), pooled.per_second, pooled.connections);
    std::printf("%-8s unpooled: %7.1f sends/s over %d connections\n",
                type.c_str(), fresh.per_second, fresh.connections);
  }
  std::filesystem::remove_all(certs);
  return 0;
}

}  // namespace
}  // namespace authcode

int main(int argc, char** argv) { return authcode::Main(argc, argv); }
