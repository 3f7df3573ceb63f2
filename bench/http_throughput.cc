// Sends per second through the HTTP providers (ses, with SigV4 signing,
// and sendgrid) to a local HTTP server (the Python peer the tests use), over
// HTTPS with the providers' connection pools, and over HTTPS with a
// provider built afresh per message, so that each send pays for TCP and
// the TLS handshake.
//
//   http_throughput [MESSAGES] [THREADS]   (defaults 400 and 4)
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "bench/send_throughput.h"
#include "providers/registry.h"
#include "spdlog/spdlog.h"
#include "tests/providers/http/http_peer.h"
#include "tests/support/peer_process.h"

namespace authcode {
namespace {

using bench::BenchMessage;
using bench::Run;
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
