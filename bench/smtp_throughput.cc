// Messages per second through the smtp provider to a local SMTP server
// (the Python aiosmtpd peer the tests use, STARTTLS and AUTH PLAIN), with
// its connection pool and without: a provider built afresh per message,
// so every message pays for TCP, STARTTLS, the TLS handshake and AUTH.
//
//   smtp_throughput [MESSAGES] [THREADS]   (defaults 300 and 2)
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "bench/send_throughput.h"
#include "providers/registry.h"
#include "providers/smtp/smtp_provider.h"
#include "tests/providers/smtp/smtp_peer.h"

namespace authcode {
namespace {

using bench::BenchMessage;
using bench::Run;
using providers::Provider;
using providers::ProviderRegistry;
using providers::ProviderSettings;

constexpr char kUser[] = "mailer";
constexpr char kPassword[] = "bench-Pa55word";

std::unique_ptr<Provider> MakeProvider(const testing::SmtpPeer& peer,
                                       const std::string& certs,
                                       int pool_size) {
  ProviderRegistry registry;
  providers::RegisterSmtpProvider(registry);
  auto provider = registry.Create(
      "smtp",
      ProviderSettings("providers.bench",
                       {{"host", "127.0.0.1"},
                        {"port", std::to_string(peer.port())},
                        {"server_name", "localhost"},
                        {"ca_file", certs + "/ca.pem"},
                        {"username", kUser},
                        {"password_env", "AUTHCODE_BENCH_SMTP_PASSWORD"},
                        {"pool_size", std::to_string(pool_size)},
                        {"timeout", "10s"}}));
  if (!provider.ok()) {
    std::fprintf(stderr, "smtp provider: %s\n",
                 std::string(provider.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(provider);
}

int Main(int argc, char** argv) {
  const int messages = argc > 1 ? std::atoi(argv[1]) : 300;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  setenv("AUTHCODE_BENCH_SMTP_PASSWORD", kPassword, 1);
  const std::string certs = testing::MakeTempDir("authcode-smtp-bench");
  if (!testing::MakeTestCerts(certs)) return 1;

  double pooled, fresh;
  int pooled_connections, fresh_connections;
  {
    testing::SmtpPeer peer({"--security", "starttls", "--cert",
                            certs + "/server.pem", "--key",
                            certs + "/server.key", "--auth",
                            std::string(kUser) + ":" + kPassword});
    auto provider = MakeProvider(peer, certs, threads);
    pooled = Run(messages, threads,
                 [&](int n) { return provider->Send(BenchMessage(n)).ok(); });
    pooled_connections = peer.Connections();
  }
  {
    testing::SmtpPeer peer({"--security", "starttls", "--cert",
                            certs + "/server.pem", "--key",
                            certs + "/server.key", "--auth",
                            std::string(kUser) + ":" + kPassword});
    fresh = Run(messages, threads, [&](int n) {
      return MakeProvider(peer, certs, 1)->Send(BenchMessage(n)).ok();
    });
    fresh_connections = peer.Connections();
  }
  std::filesystem::remove_all(certs);

  std::printf(
      "smtp_throughput: %d messages from %d threads, STARTTLS + "
      "AUTH PLAIN to the local aiosmtpd peer\n",
      messages, threads);
  std::printf(
      "pooled (pool_size %d):    %7.1f messages/s over %d "
      "connections\n",
      threads, pooled, pooled_connections);
  std::printf(
      "unpooled (one per mail): %7.1f messages/s over %d "
      "connections\n",
      fresh, fresh_connections);
  return 0;
}

}  // namespace
}  // namespace authcode

int main(int argc, char** argv) { return authcode::Main(argc, argv); }
