// Callers::Identify() without a network: which credentials name which
// tenant, and which are refused.
#include "server/callers.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

using ::testing::HasSubstr;

constexpr char kAlphaToken[] = "ac_alpha";
constexpr char kBetaToken[] = "ac_beta";

Config TwoTenants() {
  Config config;
  config.tenants["alpha"].token_digests = {TokenDigest(kAlphaToken)};
  config.tenants["alpha"].client_names = {"alpha.svc.test",
                                          "spiffe://test/alpha"};
  config.tenants["beta"].token_digests = {TokenDigest(kBetaToken)};
  config.tenants["beta"].client_names = {"beta.svc.test"};
  config.tenants["beta"].purposes = {"login"};
  return config;
}

std::string Bearer(const std::string& token) {
  return absl::StrCat("Bearer ", token);
}

TEST(CallersTest, ATokenNamesItsTenant) {
  const Config config = TwoTenants();
  const Callers callers(config);
  const std::string alpha = Bearer(kAlphaToken);
  const absl::StatusOr<Caller> caller = callers.Identify({alpha}, {});
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->tenant, "alpha");
  EXPECT_EQ(caller->policy, &config.tenants.at("alpha"));
}

TEST(CallersTest, ACertificateNameNamesItsTenant) {
  const Config config = TwoTenants();
  const Callers callers(config);
  for (const std::string& name :
       {std::string("alpha.svc.test"), std::string("spiffe://test/alpha")}) {
    const absl::StatusOr<Caller> caller =
        callers.Identify({}, {"unrelated.example", name});
    ASSERT_TRUE(caller.ok()) << caller.status();
    EXPECT_EQ(caller->tenant, "alpha");
  }
}

TEST(CallersTest, ATokenAndACertificateMustAgree) {
  const Config config = TwoTenants();
  const Callers callers(config);
  const std::string beta = Bearer(kBetaToken);
  const std::string alpha = Bearer(kAlphaToken);
  EXPECT_EQ(callers.Identify({beta}, {"alpha.svc.test"}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(callers.Identify({alpha}, {"alpha.svc.test"})->tenant, "alpha");
  // A certificate that names no tenant leaves the token to decide.
  EXPECT_EQ(callers.Identify({beta}, {"unknown.svc.test"})->tenant, "beta");
  // A certificate naming two tenants is refused.
  EXPECT_EQ(
      callers.Identify({}, {"alpha.svc.test", "beta.svc.test"}).status().code(),
      absl::StatusCode::kUnauthenticated);
}

TEST(CallersTest, RefusalsNeverQuoteTheCredential) {
  const Config config = TwoTenants();
  const Callers callers(config);
  const struct {
    std::vector<std::string> authorization;
    std::vector<std::string> names;
    const char* reason;
  } kCases[] = {
      {{}, {}, "needs credentials"},
      {{"Bearer ac_secret-guess"}, {}, "not one this server accepts"},
      {{"Basic ac_secret-guess"}, {}, "must be \"Bearer TOKEN\""},
      {{"Bearer"}, {}, "must be \"Bearer TOKEN\""},
      {{Bearer(kAlphaToken), Bearer(kAlphaToken)}, {}, "more than one"},
      {{}, {"stranger.svc.test"}, "names no tenant"},
  };
  for (const auto& c : kCases) {
    const std::vector<absl::string_view> authorization(c.authorization.begin(),
                                                       c.authorization.end());
    const absl::Status status =
        callers.Identify(authorization, c.names).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << c.reason;
    EXPECT_THAT(status.message(), HasSubstr(c.reason));
    EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("ac_")));
  }
}

TEST(CallersTest, PurposesAreCheckedAgainstThePolicy) {
  const Config config = TwoTenants();
  const Callers callers(config);
  const std::string beta = Bearer(kBetaToken);
  const absl::StatusOr<Caller> caller = callers.Identify({beta}, {});
  ASSERT_TRUE(caller.ok());
  EXPECT_TRUE(caller->CheckPurpose("login").ok());
  const absl::Status denied = caller->CheckPurpose("signup");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("tenants.beta.purposes"));
}

TEST(CallersTest, WithoutTenantsEveryCallerIsTheDefaultTenant) {
  Config config;
  config.default_tenant = "acme";
  config.limits.ceiling = {{absl::Hours(1), 9}};
  const Callers callers(config);
  const std::vector<absl::string_view> anything = {"Bearer whatever"};
  for (const auto& authorization :
       {std::vector<absl::string_view>{}, anything}) {
    const absl::StatusOr<Caller> caller = callers.Identify(authorization, {});
    ASSERT_TRUE(caller.ok()) << caller.status();
    EXPECT_EQ(caller->tenant, "acme");
    EXPECT_TRUE(caller->CheckPurpose("anything").ok());
    EXPECT_EQ(caller->policy->issue.size(), config.limits.issue.size());
    ASSERT_EQ(caller->policy->ceiling.size(), 1u);
    EXPECT_EQ(caller->policy->ceiling[0].limit, 9);
  }
}

TEST(CallersTest, TokenDigestIsSha256) {
  // echo -n abc | sha256sum
  EXPECT_EQ(absl::BytesToHexString(TokenDigest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace authcode
