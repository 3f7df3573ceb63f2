// The "console" provider: prints every mail, one-time codes included, to
// stdout (or stderr) instead of sending it. For development and end-to-end
// tests only; the factory logs a warning saying so when it is built.
//
// Each mail is one block between a begin and an end marker that carry the
// delivery id, written in one piece and flushed:
//
//   ----- authcode console mail <delivery_id> -----
//   From: ...   To: ...   Subject: ...   (one per line, then extra headers)
//   ----- text/plain -----
//   ...
//   ----- text/html -----
//   ...
//   ----- end authcode console mail <delivery_id> -----
//
// Settings ([providers.console]): `stream` = "stdout" (default) or
// "stderr". Any other key is an error.
//
// Ownership: a ConsoleProvider does not own its stream, which must outlive
// it. Thread safety: Send() may be called concurrently; blocks never
// interleave on the stream (as long as nothing else writes to it).
#ifndef AUTHCODE_PROVIDERS_CONSOLE_CONSOLE_PROVIDER_H_
#define AUTHCODE_PROVIDERS_CONSOLE_CONSOLE_PROVIDER_H_

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace authcode::providers {

// Registers the factory under "console".
void RegisterConsoleProvider(ProviderRegistry& registry);

class ConsoleProvider final : public Provider {
 public:
  // Writes to `out`, which is not owned. The registry's factory passes
  // std::cout or std::cerr; tests pass their own stream.
  explicit ConsoleProvider(std::ostream* out);

  ConsoleProvider(const ConsoleProvider&) = delete;
  ConsoleProvider& operator=(const ConsoleProvider&) = delete;

  // Provider:
  std::string_view name() const override { return "console"; }
  // None: the mail never leaves this machine.
  std::optional<std::vector<std::string>> SpfIncludes() const override {
    return std::vector<std::string>{};
  }
  // Sent("console-<delivery_id>"), or Retryable when the stream fails.
  SendResult Send(const Message& message) override;
  // Always OK: there is nothing to reach.
  absl::Status CheckReachable() override { return absl::OkStatus(); }

 private:
  absl::Mutex mu_;
  std::ostream* const out_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace authcode::providers

#endif  // AUTHCODE_PROVIDERS_CONSOLE_CONSOLE_PROVIDER_H_
