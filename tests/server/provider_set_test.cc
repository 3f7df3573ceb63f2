#include "server/provider_set.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// A provider that claims the identity domains it is given.
class IdentityProvider : public providers::Provider {
 public:
  explicit IdentityProvider(std::vector<std::string> domains)
      : domains_(std::move(domains)) {}
  std::string_view name() const override { return "identity"; }
  providers::SendResult Send(const providers::Message&) override {
    return providers::SendResult::Sent("x");
  }
  absl::Status CheckReachable() override { return absl::OkStatus(); }
  std::vector<std::string> IdentityDomains() const override { return domains_; }

 private:
  std::vector<std::string> domains_;
};

Config ChainOf(std::vector<std::string> chain) {
  Config config;
  config.delivery.chain = std::move(chain);
  return config;
}

TEST(ProviderSetTest, BuildsEveryInstanceTheChainsName) {
  Config config = ChainOf({"console"});
  config.delivery.routes["login"] = {"console"};
  auto set = ProviderSet::Create(config);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ((*set)->ChainFor("signup").size(), 1u);
  EXPECT_EQ((*set)->ChainFor("signup")[0]->name, "console");
  EXPECT_EQ((*set)->ChainFor("login")[0], (*set)->ChainFor("signup")[0])
      << "one instance, one breaker, whichever chain names it";
}

TEST(ProviderSetTest, UnknownTypeFailsNamingIt) {
  Config config = ChainOf({"postcard"});
  auto set = ProviderSet::Create(config);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("postcard"));
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("console"))
      << "the error lists the valid types";
}

TEST(ProviderSetTest, ReportsIdentitiesThatDoNotAlignWithFrom) {
  Config config = ChainOf({"a", "b"});
  std::map<std::string, std::unique_ptr<providers::Provider>> overrides;
  overrides["a"] = std::make_unique<IdentityProvider>(
      std::vector<std::string>{"example.com", "mail.example.com"});
  overrides["b"] = std::make_unique<IdentityProvider>(
      std::vector<std::string>{"gmail.com", "EXAMPLE.COM", "badexample.com"});
  auto set = ProviderSet::Create(config, std::move(overrides));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT((*set)->MisalignedIdentities("no-reply@example.com"),
              UnorderedElementsAre("b: gmail.com", "b: badexample.com"));
  // Sibling subdomains align under DMARC (one organisational domain), but
  // telling that needs the public suffix list; the check errs towards a
  // warning.
  EXPECT_THAT((*set)->MisalignedIdentities("no-reply@auth.example.com"),
              UnorderedElementsAre("a: mail.example.com", "b: gmail.com",
                                   "b: badexample.com"));
}

}  // namespace
}  // namespace authcode
