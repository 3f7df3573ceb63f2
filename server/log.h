// Structured event logging on top of spdlog: one line per event, an event
// name then key=value fields (logfmt), or one JSON object per line.
//
// Never pass a code, a key, a token or a password as a field; pass
// recipients through MaskEmail().
//
// Thread safety: Init() once at start-up; the rest from any thread.
#ifndef AUTHCODE_SERVER_LOG_H_
#define AUTHCODE_SERVER_LOG_H_

#include <initializer_list>
#include <string>
#include <string_view>

#include "server/config.h"
#include "spdlog/spdlog.h"

namespace authcode::log {

struct Field {
  std::string_view key;
  std::string value;
};

// Sets level and format of the default logger (to stderr). Fails naming
// the bad setting.
absl::Status Init(const Config::Log& config);

// Renders an event line's body in the configured format.
std::string Format(std::string_view event, std::initializer_list<Field> fields);

void Event(spdlog::level::level_enum level, std::string_view event,
           std::initializer_list<Field> fields);

inline void Info(std::string_view event, std::initializer_list<Field> fields) {
  Event(spdlog::level::info, event, fields);
}
inline void Warn(std::string_view event, std::initializer_list<Field> fields) {
  Event(spdlog::level::warn, event, fields);
}
inline void Error(std::string_view event, std::initializer_list<Field> fields) {
  Event(spdlog::level::err, event, fields);
}
// "ada@example.com" -> "a***@example.com".
std::string MaskEmail(std::string_view address);

}  // namespace authcode::log

#endif  // AUTHCODE_SERVER_LOG_H_
