#include "server/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace authcode::metrics {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "authcode: metrics: %s\n", message.c_str());
  std::abort();
}

bool IsName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    const bool ok = absl::ascii_isalpha(c) || c == '_' ||
                    (allow_colon && c == ':') ||
                    (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

void CheckNames(const std::string& name, const std::vector<std::string>& labels,
                bool histogram) {
  if (!IsName(name, /*allow_colon=*/true)) Die("bad metric name " + name);
  for (const std::string& label : labels) {
    if (!IsName(label, /*allow_colon=*/false) || label.rfind("__", 0) == 0 ||
        (histogram && label == "le")) {
      Die(absl::StrCat("bad label name ", label, " for ", name));
    }
  }
}

void AppendSample(const std::string& name, const std::string& labels,
                  const std::string& value, std::string* out) {
  out->append(name);
  if (!labels.empty()) absl::StrAppend(out, "{", labels, "}");
  absl::StrAppend(out, " ", value, "\n");
}

}  // namespace

void Gauge::Add(double delta) {
  double current = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(current, current + delta,
                                       std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double value) {
  // Few buckets: a linear search beats a binary one here.
  size_t i = 0;
  while (i < bounds_->size() && !(value <= (*bounds_)[i])) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value,
                                     std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(total);
  }
  return snapshot;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,  0.5,    1,     2.5,  5,     10};
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '"') {
      out.append("\\\"");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Whole numbers as integers: to_chars' shortest form of 160000 is
  // "1.6e+05".
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

namespace internal {

std::string LabelText(const std::vector<std::string>& names,
                      const LabelValues& values) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&text, i == 0 ? "" : ",", names[i], "=\"",
                    EscapeLabelValue(values[i]), "\"");
  }
  return text;
}

void RenderHeader(const std::string& name, const std::string& help,
                  const char* type, std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", EscapeHelp(help), "\n", "# TYPE ",
                  name, " ", type, "\n");
}

void RenderSeries(const std::string& name, const std::string& labels,
                  const Counter& counter, std::string* out) {
  AppendSample(name, labels, absl::StrCat(counter.value()), out);
}

void RenderSeries(const std::string& name, const std::string& labels,
                  const Gauge& gauge, std::string* out) {
  AppendSample(name, labels, FormatValue(gauge.value()), out);
}

void RenderSeries(const std::string& name, const std::string& labels,
                  const Histogram& histogram, const std::vector<double>& bounds,
                  std::string* out) {
  const Histogram::Snapshot snapshot = histogram.Read();
  const std::string bucket = name + "_bucket";
  const std::string prefix = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i <= bounds.size(); ++i) {
    const std::string le =
        i < bounds.size() ? FormatValue(bounds[i]) : std::string("+Inf");
    AppendSample(bucket, absl::StrCat(prefix, "le=\"", le, "\""),
                 absl::StrCat(snapshot.cumulative[i]), out);
  }
  AppendSample(name + "_sum", labels, FormatValue(snapshot.sum), out);
  AppendSample(name + "_count", labels,
               absl::StrCat(snapshot.cumulative.back()), out);
}

void CheckArity(const std::string& family,
                const std::vector<std::string>& names,
                const LabelValues& values) {
  if (values.size() != names.size()) {
    Die(absl::StrCat(family, " takes ", names.size(), " label values (",
                     absl::StrJoin(names, ", "), "), got ", values.size()));
  }
}

}  // namespace internal

template <typename Metric>
Family<Metric>& Registry::Add(std::string name, std::string help,
                              std::vector<std::string> label_names,
                              std::vector<double> bounds) {
  CheckNames(name, label_names, std::is_same_v<Metric, Histogram>);
  for (size_t i = 1; i < bounds.size(); ++i) {
    if (!(bounds[i - 1] < bounds[i])) Die("unsorted buckets for " + name);
  }
  absl::MutexLock lock(&mu_);
  for (const std::string& taken : names_) {
    if (taken == name) Die("metric " + name + " is added twice");
  }
  names_.push_back(name);
  auto family = std::make_unique<Family<Metric>>(
      std::move(name), std::move(help), std::move(label_names),
      std::move(bounds));
  Family<Metric>& added = *family;
  families_.push_back(std::move(family));
  return added;
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  return Add<Counter>(std::move(name), std::move(help), std::move(label_names),
                      {});
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  return Add<Gauge>(std::move(name), std::move(help), std::move(label_names),
                    {});
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  for (const double bound : bounds) {
    if (!std::isfinite(bound)) Die("a bucket of " + name + " is not finite");
  }
  return Add<Histogram>(std::move(name), std::move(help),
                        std::move(label_names), std::move(bounds));
}

void Registry::AddCollector(std::function<void()> collect) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() {
  absl::MutexLock lock(&mu_);
  for (const std::function<void()>& collect : collectors_) collect();
  std::string out;
  for (const std::unique_ptr<FamilyBase>& family : families_) {
    family->Render(&out);
  }
  return out;
}

}  // namespace authcode::metrics
