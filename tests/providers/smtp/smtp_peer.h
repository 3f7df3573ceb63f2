// The Python SMTP server the tests and benchmarks talk to
// (smtp_test_server.py, on Debian's aiosmtpd), run as a child process on
// 127.0.0.1 with a port of its own. See tests/support/peer_process.h for
// how the child is started and stopped.
#ifndef AUTHCODE_TESTS_PROVIDERS_SMTP_SMTP_PEER_H_
#define AUTHCODE_TESTS_PROVIDERS_SMTP_SMTP_PEER_H_

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/support/files.h"
#include "tests/support/peer_process.h"

namespace authcode::testing {

inline std::string SmtpPeerScript() {
  return (std::filesystem::path(__FILE__).parent_path() / "smtp_test_server.py")
      .string();
}

// The server with `args` (see smtp_test_server.py for the options): it
// prints its port, writes what it receives into dir(), and exits when the
// peer is destroyed.
class SmtpPeer : public PeerProcess {
 public:
  explicit SmtpPeer(const std::vector<std::string>& args)
      : PeerProcess(SmtpPeerScript(), args, "authcode-smtp-test") {}

  std::string Commands() const { return ReadFile(Path("commands.log")); }
  int Messages() const { return CountFiles("msg-", ".json"); }
  std::string MessagePath(int n) const {
    return Path(absl::StrCat("msg-", n, ".eml")).string();
  }
  nlohmann::json Envelope(int n) const {
    return nlohmann::json::parse(
        ReadFile(Path(absl::StrCat("msg-", n, ".json"))));
  }
};

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_PROVIDERS_SMTP_SMTP_PEER_H_
