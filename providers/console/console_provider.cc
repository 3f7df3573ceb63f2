#include "providers/console/console_provider.h"

#include <iostream>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/log.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "console";

// A body may lack a final newline; the next marker must still start a line.
void AppendBody(std::string& block, const std::string& body) {
  block += body;
  if (!body.empty() && body.back() != '\n') block += '\n';
}

// The whole block is built before the lock is taken, so the critical
// section is a single write and flush.
std::string FormatBlock(const Message& message) {
  std::string block = absl::StrCat("----- authcode console mail ",
                                   message.delivery_id, " -----\n");
  if (message.from_name.empty()) {
    absl::StrAppend(&block, "From: ", message.from_address, "\n");
  } else {
    absl::StrAppend(&block, "From: ", message.from_name, " <",
                    message.from_address, ">\n");
  }
  absl::StrAppend(&block, "To: ", message.to_address, "\n",
                  "Subject: ", message.subject, "\n",
                  "Delivery-Id: ", message.delivery_id, "\n");
  for (const auto& [header, value] : message.headers) {
    absl::StrAppend(&block, header, ": ", value, "\n");
  }

  block += "----- text/plain -----\n";
  AppendBody(block, message.text);
  block += "----- text/html -----\n";
  AppendBody(block, message.html);
  absl::StrAppend(&block, "----- end authcode console mail ",
                  message.delivery_id, " -----\n");
  return block;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateConsoleProvider(
    const ProviderSettings& settings) {
  if (absl::Status s = settings.CheckKeys({"stream"}); !s.ok()) return s;

  const std::string stream = settings.GetString("stream", "stdout");
  std::ostream* out = nullptr;
  if (stream == "stdout") {
    out = &std::cout;
  } else if (stream == "stderr") {
    out = &std::cerr;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(settings.section(), ".stream: must be \"stdout\" or ",
                     "\"stderr\", got \"", stream, "\""));
  }

  log::Warn("provider.console_enabled",
            {{"stream", stream},
             {"note", absl::StrCat("every mail is printed to ", stream,
                                   ", one-time codes included; for "
                                   "development only, never in production")}});
  return std::make_unique<ConsoleProvider>(out);
}

}  // namespace

void RegisterConsoleProvider(ProviderRegistry& registry) {
  registry.Register(kName, CreateConsoleProvider);
}

ConsoleProvider::ConsoleProvider(std::ostream* out) : out_(out) {}

SendResult ConsoleProvider::Send(const Message& message) {
  const std::string block = FormatBlock(message);

  absl::MutexLock lock(&mu_);
  out_->write(block.data(), static_cast<std::streamsize>(block.size()));
  out_->flush();
  if (!*out_) {
    // Clear the state so one failed write (say, a closed pipe that is
    // reopened) doesn't fail every later send without trying.
    out_->clear();
    return SendResult::Retryable("console: writing the mail failed");
  }
  return SendResult::Sent(absl::StrCat("console-", message.delivery_id));
}

}  // namespace authcode::providers
