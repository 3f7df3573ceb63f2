// What the provider throughput benchmarks (smtp_throughput,
// http_throughput) share: the message they send and the loop that sends
// it from several threads.
#ifndef AUTHCODE_BENCH_SEND_THROUGHPUT_H_
#define AUTHCODE_BENCH_SEND_THROUGHPUT_H_

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "providers/provider.h"

namespace authcode::bench {

// Message n of a run: a login code to a recipient of its own.
inline providers::Message BenchMessage(int n) {
  providers::Message m;
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

}  // namespace authcode::bench

#endif  // AUTHCODE_BENCH_SEND_THROUGHPUT_H_
