// The sender doctor's c-ares resolver against real DNS servers on
// 127.0.0.1: dnsmasq answering, a UDP socket that never answers, and a
// port where nothing listens.
#include "server/doctor/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dns_server.h"

namespace authcode::doctor {
namespace {

using testing::DnsServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// A UDP socket on 127.0.0.1 that receives queries and never answers.
class SilentServer {
 public:
  SilentServer() : fd_(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
              0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length),
              0);
    port_ = ntohs(address.sin_port);
  }
  ~SilentServer() { close(fd_); }

  // "127.0.0.1:PORT".
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_;
  int port_ = 0;
};

class DoctorResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new DnsServer(
        {"test"}, {{"one.test", {"v=spf1 -all"}},
                   {"two.test", {"first"}},
                   {"two.test", {"sec", "ond; with, punctuation"}},
                   DnsServer::Split("long.test", std::string(300, 'k') + "end"),
                   {"_dmarc.parent.test", {"v=DMARC1; p=none"}}});
  }
  static void TearDownTestSuite() { delete server_; }

  static std::unique_ptr<Resolver> Make(const std::string& servers,
                                        absl::Duration timeout) {
    absl::StatusOr<std::unique_ptr<Resolver>> resolver =
        Resolver::Create({servers, timeout});
    EXPECT_TRUE(resolver.ok()) << resolver.status();
    return resolver.ok() ? *std::move(resolver) : nullptr;
  }

  static DnsServer* server_;
};

DnsServer* DoctorResolverTest::server_ = nullptr;

TEST_F(DoctorResolverTest, ReadsRecordsJoiningTheirStrings) {
  ASSERT_GT(server_->port(), 0);
  std::unique_ptr<Resolver> resolver =
      Make(server_->address(), absl::Seconds(5));
  ASSERT_NE(resolver, nullptr);

  TxtAnswer answer = resolver->LookupTxt("one.test");
  EXPECT_EQ(answer.kind, TxtAnswer::Kind::kRecords) << Describe(answer);
  EXPECT_THAT(answer.records, ElementsAre("v=spf1 -all"));

  answer = resolver->LookupTxt("two.test");
  EXPECT_THAT(answer.records,
              UnorderedElementsAre("first", "second; with, punctuation"));

  answer = resolver->LookupTxt("long.test");
  EXPECT_THAT(answer.records, ElementsAre(std::string(300, 'k') + "end"))
      << "a record of two strings (255 + 48) comes back as one";
}

TEST_F(DoctorResolverTest, TellsNoDataFromNxDomainFromRefusal) {
  ASSERT_GT(server_->port(), 0);
  std::unique_ptr<Resolver> resolver =
      Make(server_->address(), absl::Seconds(5));
  ASSERT_NE(resolver, nullptr);

  // parent.test exists (a name below it has records) but has none.
  EXPECT_EQ(resolver->LookupTxt("parent.test").kind, TxtAnswer::Kind::kNoData);
  EXPECT_EQ(resolver->LookupTxt("absent.test").kind,
            TxtAnswer::Kind::kNxDomain);
  const TxtAnswer refused = resolver->LookupTxt("example.org");
  EXPECT_EQ(refused.kind, TxtAnswer::Kind::kError);
  EXPECT_THAT(refused.error, HasSubstr("REFUSED"));
}

TEST_F(DoctorResolverTest, GivesUpOnASilentServerAtTheTimeout) {
  SilentServer silent;
  std::unique_ptr<Resolver> resolver =
      Make(silent.address(), absl::Milliseconds(600));
  ASSERT_NE(resolver, nullptr);

  const absl::Time start = absl::Now();
  const TxtAnswer answer = resolver->LookupTxt("one.test");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(answer.kind, TxtAnswer::Kind::kTimeout) << Describe(answer);
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Seconds(3)) << "bounded by the timeout";
}

TEST_F(DoctorResolverTest, ReportsAPortWhereNothingListens) {
  int port = 0;
  {
    SilentServer closed;  // Bound for a moment, then closed again.
    port = std::stoi(closed.address().substr(10));
  }
  std::unique_ptr<Resolver> resolver =
      Make(absl::StrCat("127.0.0.1:", port), absl::Seconds(2));
  ASSERT_NE(resolver, nullptr);
  const TxtAnswer answer = resolver->LookupTxt("one.test");
  EXPECT_TRUE(answer.failed()) << Describe(answer);
}

TEST_F(DoctorResolverTest, RefusesServersItCannotUse) {
  for (const char* servers : {"dns.example", "127.0.0.1:0", "127.0.0.1:70000",
                              "[::1", "1.2.3:53", "127.0.0.1, bad"}) {
    absl::StatusOr<std::unique_ptr<Resolver>> resolver =
        Resolver::Create({servers, absl::Seconds(1)});
    ASSERT_FALSE(resolver.ok()) << servers;
    EXPECT_THAT(std::string(resolver.status().message()),
                HasSubstr("resolver: cannot use"))
        << servers;
  }
  for (const char* servers : {"127.0.0.1", "127.0.0.1:5353", "::1",
                              "[::1]:5353", "127.0.0.1:53,[::1]:53"}) {
    EXPECT_TRUE(Resolver::Create({servers, absl::Seconds(1)}).ok()) << servers;
  }
}

}  // namespace
}  // namespace authcode::doctor
