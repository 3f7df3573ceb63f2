// A small metrics registry: counters, gauges and histograms, each a family
// of series told apart by label values, rendered in the Prometheus text
// exposition format 0.0.4.
//
// Debian 12 packages no Prometheus client library for C++, and what the
// server needs is small: monotonic counters, gauges set at scrape time and
// fixed-bucket histograms. Each series is a handful of atomics, so
// recording takes no lock. Finding a series by its label values takes the
// family's mutex (never a registry-wide one); callers on a hot path look a
// series up once and keep the reference, which stays valid for the life
// of the registry.
//
// Thread safety: everything may be called from any thread. Families are
// meant to be added at start-up; series are added on first use.
#ifndef AUTHCODE_SERVER_METRICS_H_
#define AUTHCODE_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace authcode::metrics {

// A series' label values, in the order of its family's label names.
using LabelValues = std::vector<std::string>;

// A count that only goes up.
class Counter {
 public:
  void Increment(uint64_t by = 1) {
    value_.fetch_add(by, std::memory_order_relaxed);
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets, with their sum.
class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, ascending and finite (the +Inf
  // bucket is implied); shared by the family, which outlives this.
  explicit Histogram(const std::vector<double>* bounds);

  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // Per bound, then +Inf: the count.
    double sum = 0;
  };
  // Under concurrent Observe() calls the sum may lag the counts by the
  // observations under way; the counts agree with each other.
  Snapshot Read() const;

 private:
  const std::vector<double>* const bounds_;
  // Per bucket (not cumulative), the last one for +Inf.
  const std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

// Bounds for latencies in seconds, from 1 ms to 10 s.
std::vector<double> LatencyBuckets();

// One metric name and its series, as the registry holds it.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  // Appends the family's HELP and TYPE lines and its samples to `out`.
  virtual void Render(std::string* out) const = 0;
};

namespace internal {

// `name="value",...` for the names and values given (no braces).
std::string LabelText(const std::vector<std::string>& names,
                      const LabelValues& values);
void RenderHeader(const std::string& name, const std::string& help,
                  const char* type, std::string* out);
// The sample lines of one series; `labels` as LabelText() makes them.
void RenderSeries(const std::string& name, const std::string& labels,
                  const Counter& counter, std::string* out);
void RenderSeries(const std::string& name, const std::string& labels,
                  const Gauge& gauge, std::string* out);
void RenderSeries(const std::string& name, const std::string& labels,
                  const Histogram& histogram, const std::vector<double>& bounds,
                  std::string* out);
// Aborts when `values` does not match `names` in number: a bug in the
// caller, which no input can cause.
void CheckArity(const std::string& family,
                const std::vector<std::string>& names,
                const LabelValues& values);

template <typename Metric>
struct TypeName;
template <>
struct TypeName<Counter> {
  static constexpr char kValue[] = "counter";
};
template <>
struct TypeName<Gauge> {
  static constexpr char kValue[] = "gauge";
};
template <>
struct TypeName<Histogram> {
  static constexpr char kValue[] = "histogram";
};

}  // namespace internal

// The series of one metric name. With() finds or makes the series for a
// set of label values; the reference it returns lives as long as the
// family.
template <typename Metric>
class Family final : public FamilyBase {
 public:
  // `bounds` only for a histogram.
  Family(std::string name, std::string help,
         std::vector<std::string> label_names, std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  Metric& With(const LabelValues& values) {
    internal::CheckArity(name_, label_names_, values);
    absl::MutexLock lock(&mu_);
    std::unique_ptr<Metric>& series = series_[values];
    if (series == nullptr) {
      if constexpr (std::is_same_v<Metric, Histogram>) {
        series = std::make_unique<Histogram>(&bounds_);
      } else {
        series = std::make_unique<Metric>();
      }
    }
    return *series;
  }

  void Render(std::string* out) const override {
    internal::RenderHeader(name_, help_, internal::TypeName<Metric>::kValue,
                           out);
    absl::MutexLock lock(&mu_);
    for (const auto& [values, series] : series_) {
      const std::string labels = internal::LabelText(label_names_, values);
      if constexpr (std::is_same_v<Metric, Histogram>) {
        internal::RenderSeries(name_, labels, *series, bounds_, out);
      } else {
        internal::RenderSeries(name_, labels, *series, out);
      }
    }
  }

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  // Sorted by label values, so the output is stable.
  std::map<LabelValues, std::unique_ptr<Metric>> series_ ABSL_GUARDED_BY(mu_);
};

class Registry {
 public:
  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
  // [a-zA-Z_][a-zA-Z0-9_]* (and not "le" for a histogram); a bad or
  // repeated name aborts, as the bug it is.
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds);

  // `collect` runs at the start of each Render(), one Render() at a time,
  // to set gauges from a source read at scrape time.
  void AddCollector(std::function<void()> collect);

  // Every family in the order added, in the text format 0.0.4.
  std::string Render();

 private:
  template <typename Metric>
  Family<Metric>& Add(std::string name, std::string help,
                      std::vector<std::string> label_names,
                      std::vector<double> bounds);

  absl::Mutex mu_;  // Held through a Render(); serialises the collectors.
  std::vector<std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);  // Of families_.
  std::vector<std::function<void()>> collectors_ ABSL_GUARDED_BY(mu_);
};

// The text format's escaping: a label value escapes backslash, double
// quote and line feed; HELP text backslash and line feed.
std::string EscapeLabelValue(const std::string& value);
std::string EscapeHelp(const std::string& help);
// A sample value: a whole number as an integer, otherwise the shortest
// text that reads back as `value`; or "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

// The Content-Type of Registry::Render()'s text.
inline constexpr char kContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace authcode::metrics

#endif  // AUTHCODE_SERVER_METRICS_H_
