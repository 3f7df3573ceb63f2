#include "server/log.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/stdout_sinks.h"

namespace authcode::log {
namespace {

std::atomic<bool> json_format{false};

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '"' || c == '=' || c == '\\' || u == 0x7f) {
      return true;
    }
  }
  return false;
}

void AppendLogfmtValue(std::string& out, std::string_view v) {
  if (!NeedsQuotes(v)) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace

absl::Status Init(const Config::Log& config) {
  const spdlog::level::level_enum level = spdlog::level::from_str(config.level);
  if (level == spdlog::level::off && config.level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("log.level: unknown level \"", config.level, "\""));
  }
  auto logger = spdlog::stderr_logger_mt("authcode");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  json_format = config.format == "json";
  if (json_format) {
    spdlog::set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})",
                        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%fZ level=%l %v",
                        spdlog::pattern_time_type::utc);
  }
  spdlog::flush_on(spdlog::level::info);
  return absl::OkStatus();
}

std::string Format(std::string_view event,
                   std::initializer_list<Field> fields) {
  if (json_format) {
    nlohmann::ordered_json object = {{"event", event}};
    for (const Field& f : fields) object[std::string(f.key)] = f.value;
    // The pattern supplies the braces around ts and level.
    std::string dumped = object.dump(
        -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    return dumped.substr(1, dumped.size() - 2);
  }
  std::string out = "event=";
  AppendLogfmtValue(out, event);
  for (const Field& f : fields) {
    out.push_back(' ');
    out.append(f.key);
    out.push_back('=');
    AppendLogfmtValue(out, f.value);
  }
  return out;
}

void Event(spdlog::level::level_enum level, std::string_view event,
           std::initializer_list<Field> fields) {
  if (!spdlog::should_log(level)) return;
  spdlog::log(level, "{}", Format(event, fields));
}

std::string MaskEmail(std::string_view address) {
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  return std::string(address.substr(0, 1)) + "***" +
         std::string(address.substr(at));
}

}  // namespace authcode::log
