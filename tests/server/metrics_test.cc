#include "server/metrics.h"

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server_metrics.h"

namespace authcode::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RendersCountersWithHelpTypeAndSortedSeries) {
  Registry registry;
  Family<Counter>& calls = registry.AddCounter(
      "test_calls_total", "Calls made.", {"method", "code"});
  calls.With({"Verify", "OK"}).Increment(2);
  calls.With({"Issue", "OK"}).Increment();
  calls.With({"Issue", "INTERNAL"});
  registry.AddCounter("test_plain_total", "No labels.").With({}).Increment(7);

  EXPECT_EQ(registry.Render(),
            "# HELP test_calls_total Calls made.\n"
            "# TYPE test_calls_total counter\n"
            "test_calls_total{method=\"Issue\",code=\"INTERNAL\"} 0\n"
            "test_calls_total{method=\"Issue\",code=\"OK\"} 1\n"
            "test_calls_total{method=\"Verify\",code=\"OK\"} 2\n"
            "# HELP test_plain_total No labels.\n"
            "# TYPE test_plain_total counter\n"
            "test_plain_total 7\n");
}

TEST(MetricsTest, AFamilyWithoutSeriesStillDeclaresItself) {
  Registry registry;
  registry.AddGauge("test_idle", "Nothing yet.", {"pool"});
  EXPECT_EQ(registry.Render(),
            "# HELP test_idle Nothing yet.\n"
            "# TYPE test_idle gauge\n");
}

TEST(MetricsTest, EscapesLabelValuesAndHelpText) {
  Registry registry;
  registry
      .AddCounter("test_escaped_total", "Back\\slash and\nnewline \"kept\".",
                  {"provider"})
      .With({"a\\b\"c\nd"})
      .Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP test_escaped_total Back\\\\slash and\\nnewline "
            "\"kept\".\n"
            "# TYPE test_escaped_total counter\n"
            "test_escaped_total{provider=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsTest, RendersHistogramBucketsCumulativelyWithSumAndCount) {
  Registry registry;
  Family<Histogram>& latency = registry.AddHistogram(
      "test_seconds", "Test latencies.", {"method"}, {0.125, 1});
  Histogram& a = latency.With({"a"});
  for (const double v : {0.0625, 0.5, 0.5, 3.0}) a.Observe(v);
  latency.With({"b"}).Observe(1);  // A bound is inside its bucket.
  registry.AddHistogram("test_bare_seconds", "No labels.", {}, {0.5})
      .With({})
      .Observe(0.25);

  EXPECT_EQ(registry.Render(),
            "# HELP test_seconds Test latencies.\n"
            "# TYPE test_seconds histogram\n"
            "test_seconds_bucket{method=\"a\",le=\"0.125\"} 1\n"
            "test_seconds_bucket{method=\"a\",le=\"1\"} 3\n"
            "test_seconds_bucket{method=\"a\",le=\"+Inf\"} 4\n"
            "test_seconds_sum{method=\"a\"} 4.0625\n"
            "test_seconds_count{method=\"a\"} 4\n"
            "test_seconds_bucket{method=\"b\",le=\"0.125\"} 0\n"
            "test_seconds_bucket{method=\"b\",le=\"1\"} 1\n"
            "test_seconds_bucket{method=\"b\",le=\"+Inf\"} 1\n"
            "test_seconds_sum{method=\"b\"} 1\n"
            "test_seconds_count{method=\"b\"} 1\n"
            "# HELP test_bare_seconds No labels.\n"
            "# TYPE test_bare_seconds histogram\n"
            "test_bare_seconds_bucket{le=\"0.5\"} 1\n"
            "test_bare_seconds_bucket{le=\"+Inf\"} 1\n"
            "test_bare_seconds_sum 0.25\n"
            "test_bare_seconds_count 1\n");
}

TEST(MetricsTest, GaugesSetAndAddAndFormatSpecialValues) {
  Registry registry;
  Family<Gauge>& gauges = registry.AddGauge("test_value", "Values.", {"k"});
  gauges.With({"a"}).Set(2.5);
  gauges.With({"a"}).Add(-4);
  gauges.With({"b"}).Set(1e21);
  gauges.With({"c"}).Set(std::numeric_limits<double>::infinity());
  gauges.With({"d"}).Set(std::nan(""));
  EXPECT_EQ(registry.Render(),
            "# HELP test_value Values.\n"
            "# TYPE test_value gauge\n"
            "test_value{k=\"a\"} -1.5\n"
            "test_value{k=\"b\"} 1e+21\n"
            "test_value{k=\"c\"} +Inf\n"
            "test_value{k=\"d\"} NaN\n");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(0.001), "0.001");
  EXPECT_EQ(FormatValue(12), "12");
}

TEST(MetricsTest, CollectorsRunBeforeEachRender) {
  Registry registry;
  Gauge& scraped = registry.AddGauge("test_scrapes", "Scrapes.").With({});
  registry.AddCollector([&scraped] { scraped.Add(1); });
  EXPECT_THAT(registry.Render(), HasSubstr("\ntest_scrapes 1\n"));
  EXPECT_THAT(registry.Render(), HasSubstr("\ntest_scrapes 2\n"));
}

TEST(MetricsTest, ConcurrentUpdatesAreCountedExactly) {
  Registry registry;
  Family<Counter>& counters =
      registry.AddCounter("test_total", "Concurrent.", {"thread_group"});
  Family<Histogram>& histograms =
      registry.AddHistogram("test_seconds", "Concurrent.", {}, {0.5});
  Gauge& gauge = registry.AddGauge("test_gauge", "Concurrent.").With({});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Looked up on every call, from two label sets, while a scrape
        // may render: lookups race with each other and with rendering.
        counters.With({t % 2 == 0 ? "even" : "odd"}).Increment();
        histograms.With({}).Observe(i % 2 == 0 ? 0.25 : 1);
        gauge.Add(1);
      }
    });
  }
  std::thread scraper([&] {
    for (int i = 0; i < 50; ++i) registry.Render();
  });
  for (std::thread& t : threads) t.join();
  scraper.join();

  const int half = kThreads / 2 * kPerThread;
  const int all = kThreads * kPerThread;
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr(absl::StrCat("test_total{thread_group=\"even\"} ",
                                           half, "\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("test_total{thread_group=\"odd\"} ",
                                           half, "\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("test_seconds_bucket{le=\"0.5\"} ",
                                           all / 2, "\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("test_seconds_count ", all, "\n")));
  // Whole multiples of a quarter add up exactly in a double.
  EXPECT_THAT(text, HasSubstr(absl::StrCat(
                        "test_seconds_sum ",
                        FormatValue(all / 2 * 0.25 + all / 2 * 1.0), "\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("test_gauge ", all, "\n")));
}

TEST(MetricsDeathTest, AWrongNumberOfLabelValuesIsABug) {
  Registry registry;
  Family<Counter>& family =
      registry.AddCounter("test_total", "One label.", {"a"});
  EXPECT_DEATH(family.With({"x", "y"}), "test_total takes 1 label values");
}

TEST(MetricsDeathTest, BadOrRepeatedNamesAreBugs) {
  Registry registry;
  registry.AddCounter("test_total", "Once.");
  EXPECT_DEATH(registry.AddCounter("test_total", "Twice."), "added twice");
  EXPECT_DEATH(registry.AddCounter("9lives", "Bad name."), "bad metric name");
  EXPECT_DEATH(registry.AddCounter("test_x", "Bad label.", {"a-b"}),
               "bad label name");
  EXPECT_DEATH(registry.AddHistogram("test_h", "Reserved.", {"le"}, {1}),
               "bad label name");
}

}  // namespace
}  // namespace authcode::metrics

namespace authcode {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ServerMetricsTest, CountsRpcsFromManyThreadsByMethodAndCode) {
  ServerMetrics metrics;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.RecordRpc(RpcMethod::kIssueCode,
                          i % 5 == 0 ? grpc::StatusCode::RESOURCE_EXHAUSTED
                                     : grpc::StatusCode::OK,
                          absl::Milliseconds(3));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  metrics.RecordRpc(RpcMethod::kGetDelivery, grpc::StatusCode::NOT_FOUND,
                    absl::Seconds(20));

  const std::string text = metrics.registry().Render();
  const int all = kThreads * kPerThread;
  EXPECT_THAT(text, HasSubstr(absl::StrCat(
                        "authcode_rpc_requests_total{method=\"IssueCode\","
                        "code=\"OK\"} ",
                        all / 5 * 4, "\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat(
                        "authcode_rpc_requests_total{method=\"IssueCode\","
                        "code=\"RESOURCE_EXHAUSTED\"} ",
                        all / 5, "\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat(
                        "authcode_rpc_duration_seconds_bucket{method="
                        "\"IssueCode\",code=\"OK\",le=\"0.0025\"} 0\n"
                        "authcode_rpc_duration_seconds_bucket{method="
                        "\"IssueCode\",code=\"OK\",le=\"0.005\"} ",
                        all / 5 * 4, "\n")));
  EXPECT_THAT(text,
              HasSubstr("authcode_rpc_duration_seconds_bucket{method="
                        "\"GetDelivery\",code=\"NOT_FOUND\",le=\"10\"} 0\n"
                        "authcode_rpc_duration_seconds_bucket{method="
                        "\"GetDelivery\",code=\"NOT_FOUND\",le=\"+Inf\"} 1\n"));
  // Pairs never seen are not rendered.
  EXPECT_THAT(text, Not(HasSubstr("method=\"VerifyCode\"")));
}

TEST(ServerMetricsTest, StartsWithZeroesForEveryOutcomeAndScope) {
  ServerMetrics metrics;
  metrics.CountVerifyOutcome(v1::VERIFY_OUTCOME_WRONG_CODE);
  metrics.CountIssueRefusal(IssueResult::Status::kIpLimited);
  metrics.CountIssueRefusal(IssueResult::Status::kIssued);
  metrics.CountDelivery("", JobOutcome::Kind::kFailed);
  const std::string text = metrics.registry().Render();
  for (const char* outcome :
       {"verified", "expired", "no_active_code", "too_many_attempts"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat(
                          "authcode_verify_outcomes_total{outcome=\"", outcome,
                          "\"} 0\n")));
  }
  EXPECT_THAT(text, HasSubstr("authcode_verify_outcomes_total{outcome="
                              "\"wrong_code\"} 1\n"));
  for (const char* scope : {"recipient", "tenant_ceiling", "lockout"}) {
    EXPECT_THAT(text,
                HasSubstr(absl::StrCat("authcode_rate_limited_total{scope=\"",
                                       scope, "\"} 0\n")));
  }
  EXPECT_THAT(text, HasSubstr("authcode_rate_limited_total{scope=\"ip\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("authcode_deliveries_total{provider=\"none\","
                              "result=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("authcode_build_info{version=\""));
}

}  // namespace
}  // namespace authcode
