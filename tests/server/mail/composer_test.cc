#include "server/mail/composer.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

constexpr char kScript[] = "<script>alert(1)</script> & \"q\" 'a'";
constexpr char kEscapedScript[] =
    "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &apos;a&apos;";

class ComposerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A fresh override folder; removed after the test.
  const std::string& TemplatesDir() {
    if (dir_.empty()) {
      std::string pattern = ::testing::TempDir() + "composer_test.XXXXXX";
      char* made = mkdtemp(pattern.data());
      EXPECT_NE(made, nullptr) << "mkdtemp " << pattern;
      dir_ = pattern;
    }
    return dir_;
  }

  void WriteTemplate(const std::string& relative_path,
                     const std::string& contents) {
    const std::filesystem::path path =
        std::filesystem::path(TemplatesDir()) / relative_path;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
  }

  Config::Mail MailConfig(bool with_overrides = false) {
    Config::Mail config;
    config.from_address = "codes@example.com";
    config.from_name = "Example";
    if (with_overrides) config.templates_dir = TemplatesDir();
    return config;
  }

  static MailRequest Request(const std::string& purpose,
                             const std::string& locale) {
    MailRequest request;
    request.purpose = purpose;
    request.locale = locale;
    request.recipient = "alice@example.com";
    request.code = "493027";
    request.expires_in = absl::Minutes(10);
    return request;
  }

  static std::unique_ptr<Composer> MustCreate(const Config::Mail& config) {
    auto composer = Composer::Create(config);
    EXPECT_TRUE(composer.ok()) << composer.status();
    return composer.ok() ? std::move(composer).value() : nullptr;
  }

  std::string dir_;
};

TEST_F(ComposerTest, EveryBuiltinPurposeRendersCodeAndMinutes) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  for (const char* locale : {"en", "de", "fr"}) {
    for (const char* purpose :
         {"signup", "login", "password_reset", "default"}) {
      SCOPED_TRACE(absl::StrCat(locale, "/", purpose));
      MailRequest request = Request(purpose, locale);
      request.values["app_name"] = kScript;

      auto message = composer->Compose(request);
      ASSERT_TRUE(message.ok()) << message.status();
      EXPECT_FALSE(message->subject.empty());
      EXPECT_TRUE(absl::StrContains(message->text, "493027"));
      EXPECT_TRUE(absl::StrContains(message->text, std::string(locale) == "de"
                                                       ? "10 Minuten"
                                                       : "10 minutes"));
      EXPECT_TRUE(absl::StrContains(message->text, "alice@example.com"));
      EXPECT_TRUE(absl::StrContains(message->html, "493027"));
      EXPECT_TRUE(absl::StrContains(message->html, " 10 "));
      EXPECT_TRUE(absl::StrContains(
          message->html, absl::StrCat("<html lang=\"", locale, "\">")));
      EXPECT_TRUE(absl::StrContains(message->html, kEscapedScript));
      EXPECT_FALSE(absl::StrContains(message->html, "<script>"));
    }
  }
}

TEST_F(ComposerTest, CallerValuesEscapedInHtmlOnly) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  MailRequest request = Request("signup", "en");
  request.values["app_name"] = kScript;

  auto message = composer->Compose(request);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_TRUE(absl::StrContains(message->html, kEscapedScript));
  EXPECT_FALSE(absl::StrContains(message->html, kScript));
  EXPECT_TRUE(absl::StrContains(message->text, kScript));
  EXPECT_EQ(message->subject, absl::StrCat("Your sign-up code for ", kScript));
}

TEST_F(ComposerTest, TripleMustacheStillEscapesInHtml) {
  WriteTemplate("en/signup.html", "<p>{{{app_name}}} {{&app_name}}</p>");
  auto composer = MustCreate(MailConfig(/*with_overrides=*/true));
  ASSERT_NE(composer, nullptr);
  MailRequest request = Request("signup", "en");
  request.values["app_name"] = "<b>";

  auto message = composer->Compose(request);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->html, "<p>&lt;b&gt; &lt;b&gt;</p>");
}

TEST_F(ComposerTest, MissingOrEmptyValueSkipsItsSection) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  MailRequest request = Request("signup", "en");
  auto without = composer->Compose(request);
  request.values["app_name"] = "";
  auto empty = composer->Compose(request);

  ASSERT_TRUE(without.ok()) << without.status();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(without->subject, "Your sign-up code");
  EXPECT_EQ(empty->subject, "Your sign-up code");
}

TEST_F(ComposerTest, FillsAddressesAndLeavesDeliveryIdEmpty) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  auto message = composer->Compose(Request("login", "en"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->from_address, "codes@example.com");
  EXPECT_EQ(message->from_name, "Example");
  EXPECT_EQ(message->to_address, "alice@example.com");
  EXPECT_TRUE(message->delivery_id.empty());
  EXPECT_TRUE(message->headers.empty());
}

TEST_F(ComposerTest, RoundsMinutesUp) {
  WriteTemplate("en/login.txt", "{{expires_in_minutes}}");
  auto composer = MustCreate(MailConfig(/*with_overrides=*/true));
  ASSERT_NE(composer, nullptr);
  MailRequest request = Request("login", "en");
  for (const auto& [ttl, want] :
       std::vector<std::pair<absl::Duration, std::string>>{
           {absl::Seconds(10), "1"},
           {absl::Seconds(60), "1"},
           {absl::Seconds(61), "2"},
           {absl::Hours(24), "1440"}}) {
    request.expires_in = ttl;
    auto message = composer->Compose(request);
    ASSERT_TRUE(message.ok()) << message.status();
    EXPECT_EQ(message->text, want) << ttl;
  }
}

TEST_F(ComposerTest, RegionFallsBackToLanguage) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  auto message = composer->Compose(Request("login", "de-CH"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->subject, "Ihr Anmeldecode");
  EXPECT_TRUE(absl::StrContains(message->html, "<html lang=\"de\">"));
}

TEST_F(ComposerTest, UnknownLocaleFallsBackToDefaultLocale) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  for (const char* locale : {"xx", "xx-YY", ""}) {
    auto message = composer->Compose(Request("login", locale));
    ASSERT_TRUE(message.ok()) << message.status();
    EXPECT_EQ(message->subject, "Your sign-in code") << locale;
  }
}

TEST_F(ComposerTest, ConfiguredDefaultLocaleIsUsed) {
  Config::Mail config = MailConfig();
  config.default_locale = "fr-CA";
  auto composer = MustCreate(config);
  ASSERT_NE(composer, nullptr);
  auto message = composer->Compose(Request("login", "xx"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->subject, "Votre code de connexion");
}

TEST_F(ComposerTest, UnknownPurposeUsesDefaultTemplate) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  auto english = composer->Compose(Request("newsletter_optin", "en"));
  auto german = composer->Compose(Request("newsletter_optin", "de-AT"));
  ASSERT_TRUE(english.ok()) << english.status();
  ASSERT_TRUE(german.ok()) << german.status();
  EXPECT_EQ(english->subject, "Your verification code");
  EXPECT_EQ(german->subject, "Ihr Bestätigungscode");
}

TEST_F(ComposerTest, LocaleMatchingIgnoresCaseAndUnderscore) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  for (const char* locale : {"DE", "de-ch", "de_CH", "De_cH"}) {
    auto message = composer->Compose(Request("login", locale));
    ASSERT_TRUE(message.ok()) << message.status();
    EXPECT_EQ(message->subject, "Ihr Anmeldecode") << locale;
  }
}

TEST_F(ComposerTest, RegionTemplateWinsOverLanguage) {
  WriteTemplate("de_CH/login.subject", "Grüezi {{code}}");
  WriteTemplate("de_CH/login.txt", "ch text");
  WriteTemplate("de_CH/login.html", "ch html");
  auto composer = MustCreate(MailConfig(/*with_overrides=*/true));
  ASSERT_NE(composer, nullptr);

  auto swiss = composer->Compose(Request("login", "de-ch"));
  auto german = composer->Compose(Request("login", "de-DE"));
  ASSERT_TRUE(swiss.ok()) << swiss.status();
  ASSERT_TRUE(german.ok()) << german.status();
  EXPECT_EQ(swiss->subject, "Grüezi 493027");
  EXPECT_EQ(german->subject, "Ihr Anmeldecode");
}

TEST_F(ComposerTest, OverrideFolderReplacesOneFile) {
  WriteTemplate("en/signup.txt", "Custom {{code}} for {{recipient}}\n");
  auto composer = MustCreate(MailConfig(/*with_overrides=*/true));
  ASSERT_NE(composer, nullptr);

  auto message = composer->Compose(Request("signup", "en"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->text, "Custom 493027 for alice@example.com\n");
  // The other two parts stay built in.
  EXPECT_EQ(message->subject, "Your sign-up code");
  EXPECT_TRUE(absl::StrContains(message->html, "493027"));
}

TEST_F(ComposerTest, OverrideFolderAddsPurpose) {
  WriteTemplate("en/invite.subject", "Join us");
  WriteTemplate("en/invite.txt", "Invited: {{code}}");
  WriteTemplate("en/invite.html", "<p>Invited: {{code}}</p>");
  auto composer = MustCreate(MailConfig(/*with_overrides=*/true));
  ASSERT_NE(composer, nullptr);

  auto message = composer->Compose(Request("invite", "de"));
  ASSERT_TRUE(message.ok()) << message.status();
  // No German invite: the English one beats German "default".
  EXPECT_EQ(message->subject, "Join us");
}

TEST_F(ComposerTest, BrokenOverrideFailsCreateNamingFile) {
  WriteTemplate("en/login.html", "<p>{{#code}}unclosed</p>");
  auto composer = Composer::Create(MailConfig(/*with_overrides=*/true));
  ASSERT_FALSE(composer.ok());
  EXPECT_EQ(composer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(composer.status().message(),
                                TemplatesDir() + "/en/login.html"))
      << composer.status();
  EXPECT_TRUE(absl::StrContains(composer.status().message(), "Unclosed"))
      << composer.status();
}

TEST_F(ComposerTest, PartialFailsCreate) {
  WriteTemplate("en/login.txt", "Hi {{> app_name}}");
  auto composer = Composer::Create(MailConfig(/*with_overrides=*/true));
  ASSERT_FALSE(composer.ok());
  EXPECT_TRUE(absl::StrContains(composer.status().message(), "en/login.txt"))
      << composer.status();
  EXPECT_TRUE(absl::StrContains(composer.status().message(), "partials"))
      << composer.status();
}

TEST_F(ComposerTest, IncompleteTripletFailsCreateNamingMissingFile) {
  WriteTemplate("es/signup.subject", "Tu código");
  WriteTemplate("es/signup.txt", "{{code}}");
  auto composer = Composer::Create(MailConfig(/*with_overrides=*/true));
  ASSERT_FALSE(composer.ok());
  EXPECT_TRUE(absl::StrContains(composer.status().message(), "es/signup.html"))
      << composer.status();
}

TEST_F(ComposerTest, StrayFileFailsCreate) {
  WriteTemplate("en/signup.text", "{{code}}");
  auto composer = Composer::Create(MailConfig(/*with_overrides=*/true));
  ASSERT_FALSE(composer.ok());
  EXPECT_TRUE(absl::StrContains(composer.status().message(), "signup.text"))
      << composer.status();
}

TEST_F(ComposerTest, HiddenFilesAreSkipped) {
  WriteTemplate(".DS_Store", "junk");
  WriteTemplate("en/.signup.txt.swp", "junk");
  WriteTemplate(".git/config", "junk");
  auto composer = Composer::Create(MailConfig(/*with_overrides=*/true));
  EXPECT_TRUE(composer.ok()) << composer.status();
}

TEST_F(ComposerTest, MissingTemplatesDirFailsCreate) {
  Config::Mail config = MailConfig();
  config.templates_dir = "/nonexistent/authcode-templates";
  auto composer = Composer::Create(config);
  ASSERT_FALSE(composer.ok());
  EXPECT_TRUE(
      absl::StrContains(composer.status().message(), "mail.templates_dir"))
      << composer.status();
}

TEST_F(ComposerTest, DefaultLocaleWithoutTemplatesFailsCreate) {
  Config::Mail config = MailConfig();
  config.default_locale = "pt";
  auto composer = Composer::Create(config);
  ASSERT_FALSE(composer.ok());
  EXPECT_TRUE(
      absl::StrContains(composer.status().message(), "mail.default_locale"))
      << composer.status();
}

TEST_F(ComposerTest, SubjectWithLineBreakFailsCompose) {
  WriteTemplate("en/login.subject", "Your code\nBcc: everyone@example.com\n");
  auto composer = MustCreate(MailConfig(/*with_overrides=*/true));
  ASSERT_NE(composer, nullptr);

  auto message = composer->Compose(Request("login", "en"));
  ASSERT_FALSE(message.ok());
  EXPECT_EQ(message.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(message.status().message(), "en/login.subject"))
      << message.status();
}

TEST_F(ComposerTest, SubjectValueWithLineBreakFailsCompose) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  MailRequest request = Request("login", "en");
  request.values["app_name"] = "x\r\nBcc: everyone@example.com";

  auto message = composer->Compose(request);
  EXPECT_FALSE(message.ok());
}

TEST_F(ComposerTest, SubjectIsTrimmed) {
  WriteTemplate("en/login.subject", "  \n  Code {{code}}  \n\n");
  auto composer = MustCreate(MailConfig(/*with_overrides=*/true));
  ASSERT_NE(composer, nullptr);
  auto message = composer->Compose(Request("login", "en"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->subject, "Code 493027");
}

TEST_F(ComposerTest, ConcurrentComposeGivesEachCallItsOwnMail) {
  auto composer = MustCreate(MailConfig());
  ASSERT_NE(composer, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  const char* const locales[] = {"en", "de", "fr", "de-CH"};

  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        MailRequest request = Request("signup", locales[(t + i) % 4]);
        request.code = absl::StrCat(100000 + t * kPerThread + i);
        request.values["app_name"] = absl::StrCat("<app", t, ">");
        auto message = composer->Compose(request);
        const bool good =
            message.ok() && absl::StrContains(message->text, request.code) &&
            absl::StrContains(message->html, request.code) &&
            absl::StrContains(message->subject, request.values["app_name"]) &&
            absl::StrContains(message->html, absl::StrCat("&lt;app", t));
        if (!good) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
  }
}

}  // namespace
}  // namespace authcode
