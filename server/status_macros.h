// Small helpers for absl::Status plumbing; the Abseil on Debian 12 ships
// none of its own.
#ifndef AUTHCODE_SERVER_STATUS_MACROS_H_
#define AUTHCODE_SERVER_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define AUTHCODE_CONCAT_INNER_(a, b) a##b
#define AUTHCODE_CONCAT_(a, b) AUTHCODE_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` yields a non-OK status.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    const ::absl::Status authcode_status_ = (expr);      \
    if (!authcode_status_.ok()) return authcode_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr());` declares x from the value, or
// returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  AUTHCODE_ASSIGN_OR_RETURN_IMPL_(  \
      AUTHCODE_CONCAT_(authcode_statusor_, __LINE__), lhs, expr)

#define AUTHCODE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#endif  // AUTHCODE_SERVER_STATUS_MACROS_H_
