#include "providers/registry.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/support/files.h"

namespace authcode::providers {
namespace {

class NamedProvider : public Provider {
 public:
  explicit NamedProvider(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  SendResult Send(const Message& message) override {
    return SendResult::Sent("id");
  }
  absl::Status CheckReachable() override { return absl::OkStatus(); }

 private:
  std::string name_;
};

ProviderFactory FactoryFor(const std::string& name) {
  return [name](const ProviderSettings& settings)
             -> absl::StatusOr<std::unique_ptr<Provider>> {
    return std::make_unique<NamedProvider>(name);
  };
}

ProviderSettings Smtp(std::map<std::string, std::string> values) {
  return ProviderSettings("providers.smtp", std::move(values));
}

TEST(ProviderRegistryTest, CreatesRegisteredProvider) {
  ProviderRegistry registry;
  registry.Register("alpha", FactoryFor("alpha"));
  auto provider = registry.Create("alpha", ProviderSettings("x", {}));
  ASSERT_TRUE(provider.ok()) << provider.status();
  EXPECT_EQ((*provider)->name(), "alpha");
}

TEST(ProviderRegistryTest, UnknownNameListsValidNames) {
  ProviderRegistry registry;
  registry.Register("beta", FactoryFor("beta"));
  registry.Register("alpha", FactoryFor("alpha"));

  auto provider = registry.Create("foo", ProviderSettings("x", {}));
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(provider.status().message(),
            "unknown provider \"foo\" (delivery.provider); valid names: "
            "alpha, beta");
}

TEST(ProviderRegistryTest, FactoryErrorIsReturned) {
  ProviderRegistry registry;
  registry.Register(
      "picky",
      [](const ProviderSettings& settings)
          -> absl::StatusOr<std::unique_ptr<Provider>> {
        return absl::InvalidArgumentError(settings.section() + ".key: bad");
      });
  auto provider = registry.Create("picky", ProviderSettings("providers.p", {}));
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.status().message(), "providers.p.key: bad");
}

TEST(ProviderRegistryDeathTest, DuplicateRegistrationDies) {
  ProviderRegistry registry;
  registry.Register("alpha", FactoryFor("alpha"));
  EXPECT_DEATH(registry.Register("alpha", FactoryFor("alpha")),
               "\"alpha\" registered twice");
}

TEST(ProviderRegistryTest, BuiltinsIncludeConsole) {
  ProviderRegistry registry;
  RegisterBuiltinProviders(registry);
  const std::vector<std::string> names = registry.Names();
  EXPECT_NE(std::find(names.begin(), names.end(), "console"), names.end());

  auto provider =
      registry.Create("console", ProviderSettings("providers.console", {}));
  ASSERT_TRUE(provider.ok()) << provider.status();
  EXPECT_EQ((*provider)->name(), "console");
}

TEST(ProviderRegistryTest, BuiltinsAreEveryProvider) {
  ProviderRegistry registry;
  RegisterBuiltinProviders(registry);
  EXPECT_EQ(registry.Names(), (std::vector<std::string>{
                                  "console", "maildir", "mailgun", "postmark",
                                  "resend", "sendgrid", "ses", "smtp"}));
}

TEST(ProviderSettingsTest, GetStringFallsBack) {
  const ProviderSettings settings = Smtp({{"host", "mail.example.com"}});
  EXPECT_EQ(settings.GetString("host", "localhost"), "mail.example.com");
  EXPECT_EQ(settings.GetString("helo", "localhost"), "localhost");
}

TEST(ProviderSettingsTest, RequiredStringNamesFullKey) {
  const ProviderSettings settings = Smtp({{"user", ""}});
  EXPECT_EQ(settings.GetRequiredString("host").status().message(),
            "providers.smtp.host: required, but not set");
  EXPECT_EQ(settings.GetRequiredString("user").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ProviderSettingsTest, GetIntParsesAndFallsBack) {
  const ProviderSettings settings = Smtp({{"port", "587"}});
  EXPECT_EQ(settings.GetInt("port", 25, 1, 65535).value(), 587);
  EXPECT_EQ(settings.GetInt("timeout", 30, 1, 600).value(), 30);
}

TEST(ProviderSettingsTest, GetIntRejectsTypeAndRangeNamingFullKey) {
  for (const char* bad :
       {"x", "0", "65536", "5.5", "", "99999999999999999999"}) {
    const ProviderSettings settings = Smtp({{"port", bad}});
    auto port = settings.GetInt("port", 25, 1, 65535);
    ASSERT_FALSE(port.ok()) << bad;
    EXPECT_EQ(port.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(port.status().message(),
              std::string("providers.smtp.port: must be an integer between 1 "
                          "and 65535, got \"") +
                  bad + "\"");
  }
}

TEST(ProviderSettingsTest, GetBoolAcceptsOnlyTrueAndFalse) {
  EXPECT_TRUE(Smtp({{"tls", "true"}}).GetBool("tls", false).value());
  EXPECT_FALSE(Smtp({{"tls", "false"}}).GetBool("tls", true).value());
  EXPECT_TRUE(Smtp({}).GetBool("tls", true).value());

  auto bad = Smtp({{"tls", "yes"}}).GetBool("tls", false);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "providers.smtp.tls: must be true or false, got \"yes\"");
}

TEST(ProviderSettingsTest, ErrorEscapesControlCharacters) {
  auto port = Smtp({{"port", "1\n2"}}).GetInt("port", 25, 1, 65535);
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().message().find('\n'), std::string::npos);
}

TEST(ProviderSettingsTest, GetSecretFromValueFileOrEnvironment) {
  EXPECT_EQ(Smtp({}).GetSecret("password").value(), "");
  EXPECT_EQ(Smtp({{"password", "pw1"}}).GetSecret("password").value(), "pw1");

  const std::string file = testing::TempPath("authcode-secret");
  testing::WriteFile(file, "pw2\r\n");
  EXPECT_EQ(Smtp({{"password_file", file}}).GetSecret("password").value(),
            "pw2");
  std::remove(file.c_str());

  setenv("AUTHCODE_TEST_SECRET", "pw3", 1);
  EXPECT_EQ(Smtp({{"password_env", "AUTHCODE_TEST_SECRET"}})
                .GetSecret("password")
                .value(),
            "pw3");
  unsetenv("AUTHCODE_TEST_SECRET");
}

TEST(ProviderSettingsTest, GetSecretNamesTheKeyNeverTheValue) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{{"password", "pw"}, {"password_env", "X"}},
           "providers.smtp.password: set only one of password, password_file, "
           "password_env"},
          {{{"password_env", "AUTHCODE_TEST_UNSET"}},
           "providers.smtp.password_env: the environment variable "
           "\"AUTHCODE_TEST_UNSET\" is not set"},
          {{{"password_file", "/nonexistent/pw"}},
           "providers.smtp.password_file: cannot open the file "
           "\"/nonexistent/pw\""},
          {{{"password", "p\nw"}},
           "providers.smtp.password: the secret is empty or holds a line "
           "break"},
      };
  for (const auto& [values, expected] : cases) {
    const absl::Status status = Smtp(values).GetSecret("password").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), expected);
  }
}

TEST(ProviderSettingsTest, GetDurationReadsAbseilDurations) {
  EXPECT_EQ(Smtp({{"timeout", "1500ms"}})
                .GetDuration("timeout", absl::Seconds(1))
                .value(),
            absl::Milliseconds(1500));
  EXPECT_EQ(Smtp({}).GetDuration("timeout", absl::Seconds(1)).value(),
            absl::Seconds(1));
  for (const char* bad : {"30", "0s", "-1s", "2h", "soon"}) {
    EXPECT_FALSE(
        Smtp({{"timeout", bad}}).GetDuration("timeout", absl::Seconds(1)).ok())
        << bad;
  }
}

TEST(ProviderSettingsTest, CheckKeysListsTheValidOnes) {
  EXPECT_TRUE(Smtp({{"host", "h"}}).CheckKeys({"host", "port"}).ok());
  EXPECT_EQ(Smtp({{"hots", "h"}}).CheckKeys({"host", "port"}).message(),
            "providers.smtp.hots: unknown setting; valid: host, port");
}

}  // namespace
}  // namespace authcode::providers
