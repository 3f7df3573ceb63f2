#include "providers/console/console_provider.h"

#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "providers/registry.h"

namespace authcode::providers {
namespace {

// Points a standard stream at a string for the life of the object.
class StreamCapture {
 public:
  explicit StreamCapture(std::ostream& stream)
      : stream_(stream), saved_(stream.rdbuf(captured_.rdbuf())) {}
  ~StreamCapture() { stream_.rdbuf(saved_); }

  std::string str() const { return captured_.str(); }

 private:
  std::ostream& stream_;
  std::ostringstream captured_;
  std::streambuf* saved_;
};

class ConsoleProviderTest : public ::testing::Test {
 protected:
  ConsoleProviderTest() { RegisterBuiltinProviders(registry_); }

  absl::StatusOr<std::unique_ptr<Provider>> Create(
      std::map<std::string, std::string> values) {
    return registry_.Create(
        "console", ProviderSettings("providers.console", std::move(values)));
  }

  static Message Mail(const std::string& id, const std::string& code) {
    Message message;
    message.from_address = "no-reply@example.com";
    message.from_name = "Example";
    message.to_address = "alice@example.com";
    message.subject = "Your sign-in code";
    message.text = absl::StrCat("Code: ", code, "\n");
    message.html = absl::StrCat("<p>Code: <b>", code, "</b></p>");
    message.headers = {{"X-Purpose", "login"}};
    message.delivery_id = id;
    return message;
  }

  ProviderRegistry registry_;
};

TEST_F(ConsoleProviderTest, PrintsWholeMailToStdout) {
  auto provider = Create({});
  ASSERT_TRUE(provider.ok()) << provider.status();

  StreamCapture capture(std::cout);
  const SendResult result = (*provider)->Send(Mail("d-42", "493027"));
  const std::string out = capture.str();

  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.message_id(), "console-d-42");
  EXPECT_TRUE(absl::StartsWith(out, "----- authcode console mail d-42 -----\n"))
      << out;
  EXPECT_TRUE(
      absl::EndsWith(out, "----- end authcode console mail d-42 -----\n"))
      << out;
  for (const char* part :
       {"From: Example <no-reply@example.com>\n", "To: alice@example.com\n",
        "Subject: Your sign-in code\n", "Delivery-Id: d-42\n",
        "X-Purpose: login\n", "----- text/plain -----\nCode: 493027\n",
        "----- text/html -----\n<p>Code: <b>493027</b></p>\n"}) {
    EXPECT_TRUE(absl::StrContains(out, part)) << part << "\nin:\n" << out;
  }
}

TEST_F(ConsoleProviderTest, StderrSettingPrintsToStderr) {
  auto provider = Create({{"stream", "stderr"}});
  ASSERT_TRUE(provider.ok()) << provider.status();

  StreamCapture out(std::cout);
  StreamCapture err(std::cerr);
  EXPECT_TRUE((*provider)->Send(Mail("d-1", "111111")).ok());
  EXPECT_TRUE(absl::StrContains(err.str(), "Code: 111111"));
  EXPECT_EQ(out.str(), "");
}

TEST_F(ConsoleProviderTest, RejectsUnknownSetting) {
  auto provider = Create({{"colour", "green"}});
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(provider.status().message(),
                                "providers.console.colour"))
      << provider.status();
}

TEST_F(ConsoleProviderTest, RejectsUnknownStream) {
  auto provider = Create({{"stream", "file"}});
  ASSERT_FALSE(provider.ok());
  EXPECT_TRUE(absl::StrContains(provider.status().message(),
                                "providers.console.stream"))
      << provider.status();
}

TEST_F(ConsoleProviderTest, CheckReachablePassesAndPrintsNothing) {
  std::ostringstream out;
  ConsoleProvider provider(&out);
  EXPECT_TRUE(provider.CheckReachable().ok());
  EXPECT_EQ(out.str(), "");
}

TEST_F(ConsoleProviderTest, FailedWriteIsRetryable) {
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  ConsoleProvider provider(&out);
  const SendResult result = provider.Send(Mail("d-1", "111111"));
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_TRUE(provider.Send(Mail("d-2", "222222")).ok());
}

TEST_F(ConsoleProviderTest, ConcurrentSendsDoNotInterleave) {
  std::ostringstream out;
  ConsoleProvider provider(&out);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&provider, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = absl::StrCat("t", t, "-", i);
        provider.Send(Mail(id, absl::StrCat("code-", id)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  // Walk the output line by line: every block must run from its own begin
  // marker to its own end marker with only its own lines in between.
  const std::vector<std::string> lines =
      absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  int blocks = 0;
  std::string open_id;
  for (const std::string& line : lines) {
    if (absl::StartsWith(line, "----- authcode console mail ")) {
      ASSERT_TRUE(open_id.empty()) << "nested block at: " << line;
      open_id = std::string(absl::StripSuffix(
          absl::StripPrefix(line, "----- authcode console mail "), " -----"));
    } else if (absl::StartsWith(line, "----- end authcode console mail ")) {
      ASSERT_EQ(line, absl::StrCat("----- end authcode console mail ", open_id,
                                   " -----"));
      open_id.clear();
      ++blocks;
    } else if (absl::StartsWith(line, "Code: ") ||
               absl::StartsWith(line, "<p>Code: ")) {
      const std::string code = absl::StrCat("code-", open_id);
      ASSERT_TRUE(line == absl::StrCat("Code: ", code) ||
                  line == absl::StrCat("<p>Code: <b>", code, "</b></p>"))
          << line << " inside block " << open_id;
    } else {
      ASSERT_FALSE(open_id.empty()) << "line outside a block: " << line;
    }
  }
  EXPECT_TRUE(open_id.empty());
  EXPECT_EQ(blocks, kThreads * kPerThread);
}

}  // namespace
}  // namespace authcode::providers
