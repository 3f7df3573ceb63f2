#include "providers/maildir/maildir_provider.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "providers/registry.h"
#include "tests/support/files.h"

namespace authcode::providers {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;

// --- Reading a delivered mail back ----------------------------------------

struct Part {
  std::map<std::string, std::string> headers;
  std::vector<std::string> base64_lines;
};

struct ParsedMail {
  // Unfolded, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<Part> parts;
  std::string epilogue;

  std::string Header(const std::string& name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "<missing " + name + ">";
  }
  int Count(const std::string& name) const {
    return static_cast<int>(std::count_if(
        headers.begin(), headers.end(),
        [&](const auto& header) { return header.first == name; }));
  }
};

// Splits "Name: value" lines of a CRLF header block, undoing folding.
std::vector<std::pair<std::string, std::string>> ParseHeaders(
    const std::string& block) {
  const std::string unfolded = absl::StrReplaceAll(block, {{"\r\n ", " "}});
  std::vector<std::pair<std::string, std::string>> headers;
  for (absl::string_view line : absl::StrSplit(unfolded, "\r\n")) {
    std::pair<std::string, std::string> header =
        absl::StrSplit(line, absl::MaxSplits(": ", 1));
    headers.push_back(std::move(header));
  }
  return headers;
}

// A multipart/alternative mail as the provider writes it; fails the test
// on a structure it does not expect.
ParsedMail ParseMail(const std::string& content) {
  ParsedMail mail;
  const size_t end = content.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos) << "no blank line after the headers";
  if (end == std::string::npos) return mail;
  mail.headers = ParseHeaders(content.substr(0, end));

  const std::string type = mail.Header("Content-Type");
  const std::string prefix = "multipart/alternative; boundary=\"";
  EXPECT_TRUE(absl::StartsWith(type, prefix)) << type;
  const std::string boundary =
      std::string(absl::StripSuffix(absl::StripPrefix(type, prefix), "\""));

  // The line break before each delimiter belongs to it.
  const std::string body = "\r\n" + content.substr(end + 4);
  std::vector<std::string> pieces =
      absl::StrSplit(body, absl::StrCat("\r\n--", boundary));
  EXPECT_EQ(pieces.front(), "") << "unexpected preamble";
  mail.epilogue = pieces.back();
  for (size_t i = 1; i + 1 < pieces.size(); ++i) {
    const std::string& piece = pieces[i];
    const size_t blank = piece.find("\r\n\r\n");
    EXPECT_TRUE(absl::StartsWith(piece, "\r\n")) << piece;
    EXPECT_NE(blank, std::string::npos) << piece;
    if (blank == std::string::npos) continue;

    Part part;
    for (auto& [key, value] : ParseHeaders(piece.substr(2, blank - 2))) {
      part.headers[key] = value;
    }
    part.base64_lines =
        absl::StrSplit(piece.substr(blank + 4), "\r\n", absl::SkipEmpty());
    mail.parts.push_back(std::move(part));
  }
  return mail;
}

std::string DecodePart(const Part& part) {
  std::string decoded;
  EXPECT_TRUE(
      absl::Base64Unescape(absl::StrJoin(part.base64_lines, ""), &decoded));
  return decoded;
}

// Decodes a run of RFC 2047 "B" words; fails on anything else. `words`
// receives each word's decoded bytes.
std::string DecodeEncodedWords(const std::string& value,
                               std::vector<std::string>* words = nullptr) {
  std::string out;
  for (absl::string_view word : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
    EXPECT_LE(word.size(), 75u) << word;
    EXPECT_TRUE(absl::ConsumePrefix(&word, "=?UTF-8?B?")) << value;
    EXPECT_TRUE(absl::ConsumeSuffix(&word, "?=")) << value;
    std::string decoded;
    EXPECT_TRUE(absl::Base64Unescape(word, &decoded)) << word;
    if (words != nullptr) words->push_back(decoded);
    out += decoded;
  }
  return out;
}

std::vector<std::string> FileNames(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// --- Fixture ---------------------------------------------------------------

class MaildirProviderTest : public ::testing::Test {
 protected:
  MaildirProviderTest() {
    RegisterBuiltinProviders(registry_);
    temp_ = testing::MakeTempDir("maildir_test");
    maildir_ = temp_ / "mail";
  }
  ~MaildirProviderTest() override {
    std::error_code ignored;
    fs::permissions(temp_, fs::perms::owner_all, ignored);
    fs::remove_all(temp_, ignored);
  }

  absl::StatusOr<std::unique_ptr<Provider>> Create(
      std::map<std::string, std::string> values) {
    return registry_.Create(
        "maildir", ProviderSettings("providers.maildir", std::move(values)));
  }

  // A provider on maildir_; fails the test if it cannot be made.
  std::unique_ptr<Provider> CreateOrDie() {
    auto provider = Create({{"path", maildir_.string()}});
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  static Message Mail(const std::string& id) {
    Message message;
    message.from_address = "no-reply@example.com";
    message.from_name = "Example";
    message.to_address = "alice@example.com";
    message.subject = "Your sign-in code";
    message.text = "Code: 493027\n";
    message.html = "<p>Code: <b>493027</b></p>";
    message.headers = {{"X-Purpose", "login"}};
    message.delivery_id = id;
    return message;
  }

  // The single file in new/, read back.
  std::string OnlyDelivered() {
    const std::vector<std::string> names = FileNames(maildir_ / "new");
    EXPECT_EQ(names.size(), 1u);
    return names.size() == 1 ? ReadFile(maildir_ / "new" / names[0]) : "";
  }

  ProviderRegistry registry_;
  fs::path temp_;
  fs::path maildir_;
};

// --- Create ----------------------------------------------------------------

TEST_F(MaildirProviderTest, CreatesMissingFoldersPrivately) {
  maildir_ = temp_ / "a" / "b" / "mail";
  auto provider = Create({{"path", maildir_.string()}});
  ASSERT_TRUE(provider.ok()) << provider.status();
  EXPECT_EQ((*provider)->name(), "maildir");

  for (const char* sub : {"", "tmp", "new", "cur"}) {
    struct stat info;
    const fs::path dir = maildir_ / sub;
    ASSERT_EQ(stat(dir.c_str(), &info), 0) << dir;
    EXPECT_TRUE(S_ISDIR(info.st_mode)) << dir;
    EXPECT_EQ(info.st_mode & 0777, 0700u) << dir;
  }
  EXPECT_TRUE(FileNames(maildir_ / "tmp").empty()) << "probe file left";
}

TEST_F(MaildirProviderTest, MissingPathFailsCreateNamingKey) {
  for (const auto& values :
       {std::map<std::string, std::string>{},
        std::map<std::string, std::string>{{"path", ""}}}) {
    auto provider = Create(values);
    ASSERT_FALSE(provider.ok());
    EXPECT_EQ(provider.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(provider.status().message(),
                                  "providers.maildir.path"))
        << provider.status();
  }
}

TEST_F(MaildirProviderTest, UncreatablePathFailsCreateNamingKey) {
  std::ofstream(temp_ / "file") << "not a folder";
  auto provider = Create({{"path", (temp_ / "file" / "mail").string()}});
  ASSERT_FALSE(provider.ok());
  EXPECT_TRUE(
      absl::StrContains(provider.status().message(), "providers.maildir.path"))
      << provider.status();
  EXPECT_TRUE(absl::StrContains(provider.status().message(), "ENOTDIR"))
      << provider.status();
}

TEST_F(MaildirProviderTest, SubfolderThatIsAFileFailsCreateNamingKey) {
  fs::create_directories(maildir_);
  std::ofstream(maildir_ / "new") << "not a folder";
  auto provider = Create({{"path", maildir_.string()}});
  ASSERT_FALSE(provider.ok());
  EXPECT_TRUE(
      absl::StrContains(provider.status().message(), "providers.maildir.path"))
      << provider.status();
  EXPECT_TRUE(absl::StrContains(provider.status().message(), "/new"))
      << provider.status();
}

TEST_F(MaildirProviderTest, UnwritablePathFailsCreateNamingKey) {
  if (geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  for (const char* sub : {"tmp", "new", "cur"}) {
    fs::create_directories(maildir_ / sub);
  }
  fs::permissions(maildir_ / "tmp",
                  fs::perms::owner_read | fs::perms::owner_exec);

  auto provider = Create({{"path", maildir_.string()}});
  fs::permissions(maildir_ / "tmp", fs::perms::owner_all);
  ASSERT_FALSE(provider.ok());
  EXPECT_TRUE(
      absl::StrContains(provider.status().message(), "providers.maildir.path"))
      << provider.status();
}

TEST_F(MaildirProviderTest, RejectsUnknownSetting) {
  auto provider = Create({{"path", maildir_.string()}, {"fsync", "false"}});
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      absl::StrContains(provider.status().message(), "providers.maildir.fsync"))
      << provider.status();
}

TEST_F(MaildirProviderTest, CheckReachableNeedsTheFoldersItWritesTo) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  EXPECT_TRUE(provider->CheckReachable().ok());

  fs::remove_all(maildir_ / "new");
  const absl::Status status = provider->CheckReachable();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), (maildir_ / "new").string()))
      << status;
  EXPECT_TRUE(FileNames(maildir_ / "tmp").empty()) << "nothing written";
}

// --- Delivery --------------------------------------------------------------

TEST_F(MaildirProviderTest, SendLeavesExactlyOneFileInNew) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);

  const SendResult result = provider->Send(Mail("d-42"));
  ASSERT_TRUE(result.ok()) << result.error();

  const std::vector<std::string> names = FileNames(maildir_ / "new");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(result.message_id(), "maildir:" + names[0]);
  EXPECT_TRUE(std::regex_match(
      names[0], std::regex(R"([0-9]+\.d-42_[0-9]+\.[A-Za-z0-9._-]+)")))
      << names[0];
  EXPECT_TRUE(FileNames(maildir_ / "tmp").empty());
  EXPECT_TRUE(FileNames(maildir_ / "cur").empty());

  struct stat info;
  ASSERT_EQ(stat((maildir_ / "new" / names[0]).c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u) << "a mail holds a code";
}

TEST_F(MaildirProviderTest, WritesHeadersWithCrlfLineEndings) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  Message message = Mail("d-42");
  message.headers = {{"X-Purpose", "login"}, {"X-Tenant", "acme"}};
  const absl::Time before = absl::Now();
  ASSERT_TRUE(provider->Send(message).ok());

  const std::string content = OnlyDelivered();
  for (size_t i = 0; i < content.size(); ++i) {
    if (content[i] == '\n') {
      ASSERT_TRUE(i > 0 && content[i - 1] == '\r') << "bare LF at " << i;
    } else if (content[i] == '\r') {
      ASSERT_TRUE(i + 1 < content.size() && content[i + 1] == '\n')
          << "bare CR at " << i;
    }
  }
  EXPECT_TRUE(absl::EndsWith(content, "\r\n"));

  const ParsedMail mail = ParseMail(content);
  EXPECT_EQ(mail.Header("From"), "Example <no-reply@example.com>");
  EXPECT_EQ(mail.Header("To"), "alice@example.com");
  EXPECT_EQ(mail.Header("Subject"), "Your sign-in code");
  EXPECT_EQ(mail.Header("MIME-Version"), "1.0");
  EXPECT_EQ(mail.Header("X-Authcode-Delivery-Id"), "d-42");
  EXPECT_EQ(mail.Header("X-Purpose"), "login");
  EXPECT_EQ(mail.Header("X-Tenant"), "acme");
  EXPECT_TRUE(
      std::regex_match(mail.Header("Message-ID"),
                       std::regex(R"(<d-42\.[0-9a-f]{16}@authcode\.invalid>)")))
      << mail.Header("Message-ID");
  for (const char* name : {"From", "To", "Subject", "Date", "Message-ID",
                           "MIME-Version", "Content-Type"}) {
    EXPECT_EQ(mail.Count(name), 1) << name;
  }

  absl::Time date;
  std::string error;
  ASSERT_TRUE(absl::ParseTime("%a, %d %b %Y %H:%M:%S %z", mail.Header("Date"),
                              &date, &error))
      << mail.Header("Date") << ": " << error;
  EXPECT_TRUE(absl::EndsWith(mail.Header("Date"), " +0000"));
  EXPECT_GE(date, absl::FromUnixSeconds(absl::ToUnixSeconds(before)));
  EXPECT_LE(date, absl::Now());
}

TEST_F(MaildirProviderTest, PartsAreBase64OfTextThenHtml) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  Message message = Mail("d-42");
  message.text = "Dein Code: 493027\nGültig für 10 Minuten. — Grüße, 例\n";
  message.html = absl::StrCat("<p>Dein Code: <b>493027</b></p>",
                              std::string(200, 'x'), "<p>Grüße ✓</p>");
  ASSERT_TRUE(provider->Send(message).ok());

  const ParsedMail mail = ParseMail(OnlyDelivered());
  ASSERT_EQ(mail.parts.size(), 2u);
  EXPECT_EQ(mail.epilogue, "--\r\n");

  const char* types[] = {"text/plain; charset=utf-8",
                         "text/html; charset=utf-8"};
  const std::string* bodies[] = {&message.text, &message.html};
  for (int i = 0; i < 2; ++i) {
    const Part& part = mail.parts[i];
    EXPECT_EQ(part.headers.at("Content-Type"), types[i]);
    EXPECT_EQ(part.headers.at("Content-Transfer-Encoding"), "base64");
    for (size_t line = 0; line < part.base64_lines.size(); ++line) {
      if (line + 1 < part.base64_lines.size()) {
        EXPECT_EQ(part.base64_lines[line].size(), 76u) << types[i];
      } else {
        EXPECT_LE(part.base64_lines[line].size(), 76u) << types[i];
      }
    }
    EXPECT_EQ(DecodePart(part), *bodies[i]) << types[i];
  }
  EXPECT_GT(mail.parts[1].base64_lines.size(), 2u) << "html should wrap";
}

TEST_F(MaildirProviderTest, EmptyBodiesStillMakeTwoParts) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  Message message = Mail("d-42");
  message.text = "";
  message.html = "";
  ASSERT_TRUE(provider->Send(message).ok());

  const ParsedMail mail = ParseMail(OnlyDelivered());
  ASSERT_EQ(mail.parts.size(), 2u);
  EXPECT_EQ(DecodePart(mail.parts[0]), "");
  EXPECT_EQ(DecodePart(mail.parts[1]), "");
}

TEST_F(MaildirProviderTest, NonAsciiSubjectAndFromNameAreEncodedWords) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  Message message = Mail("d-42");
  message.from_name = "Zoë Bäcker";
  // Long enough for several words, with multi-byte characters throughout.
  message.subject =
      "Ihr Anmeldecode für Übungsräume — gültig für zehn Minuten ✓ 例え";
  ASSERT_TRUE(provider->Send(message).ok());

  const ParsedMail mail = ParseMail(OnlyDelivered());
  std::vector<std::string> words;
  EXPECT_EQ(DecodeEncodedWords(mail.Header("Subject"), &words),
            message.subject);
  EXPECT_GT(words.size(), 1u);
  for (const std::string& word : words) {
    ASSERT_FALSE(word.empty());
    EXPECT_NE(static_cast<unsigned char>(word[0]) & 0xc0, 0x80)
        << "a word starts inside a UTF-8 character";
  }

  const std::string from = mail.Header("From");
  ASSERT_TRUE(absl::EndsWith(from, " <no-reply@example.com>")) << from;
  EXPECT_EQ(DecodeEncodedWords(std::string(
                absl::StripSuffix(from, " <no-reply@example.com>"))),
            message.from_name);
}

TEST_F(MaildirProviderTest, AsciiTextThatLooksEncodedIsEncoded) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  Message message = Mail("d-42");
  message.subject = "=?UTF-8?B?aGk=?= literally";
  message.from_name = "Example, Inc.";
  ASSERT_TRUE(provider->Send(message).ok());

  const ParsedMail mail = ParseMail(OnlyDelivered());
  EXPECT_EQ(DecodeEncodedWords(mail.Header("Subject")), message.subject);
  EXPECT_EQ(mail.Header("From"), "\"Example, Inc.\" <no-reply@example.com>");
}

TEST_F(MaildirProviderTest, RejectsLineBreaksInHeadersWritingNothing) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  const std::string injected = "\r\nBcc: mallory@example.com";

  struct Case {
    std::string header;  // Expected in the error.
    Message message;
  };
  std::vector<Case> cases(6, Case{"", Mail("d-42")});
  cases[0].header = "Subject";
  cases[0].message.subject += injected;
  cases[1].header = "From";
  cases[1].message.from_name += "\n";
  cases[2].header = "To";
  cases[2].message.to_address += injected;
  cases[3].header = "X-Purpose";
  cases[3].message.headers = {{"X-Purpose", "login" + injected}};
  cases[4].header = "X-Evil";
  cases[4].message.headers = {{"X-Evil\r\nBcc", "x"}};
  cases[5].header = "From";
  cases[5].message.from_address += "\r";

  for (const Case& c : cases) {
    const SendResult result = provider->Send(c.message);
    EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent) << c.header;
    EXPECT_TRUE(absl::StrContains(result.error(), c.header))
        << c.header << ": " << result.error();
    EXPECT_FALSE(absl::StrContains(result.error(), "mallory"))
        << result.error();
    EXPECT_FALSE(absl::StrContains(result.error(), "493027")) << result.error();
  }
  EXPECT_TRUE(FileNames(maildir_ / "new").empty());
  EXPECT_TRUE(FileNames(maildir_ / "tmp").empty());
}

TEST_F(MaildirProviderTest, RejectsExtraHeaderThatDuplicatesOwn) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  for (const char* name : {"Content-Type", "subject", "Message-ID"}) {
    Message message = Mail("d-42");
    message.headers = {{name, "text/plain"}};
    const SendResult result = provider->Send(message);
    EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent) << name;
    EXPECT_TRUE(absl::StrContains(result.error(), name)) << result.error();
  }
  Message message = Mail("d-42");
  message.headers = {{"X Purpose", "login"}};
  EXPECT_EQ(provider->Send(message).kind(), SendResult::Kind::kPermanent);
  EXPECT_TRUE(FileNames(maildir_ / "new").empty());
}

TEST_F(MaildirProviderTest, SameDeliveryIdTwiceWritesTwoFiles) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  const SendResult first = provider->Send(Mail("d-42"));
  const SendResult second = provider->Send(Mail("d-42"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first.message_id(), second.message_id());
  EXPECT_EQ(FileNames(maildir_ / "new").size(), 2u);
}

TEST_F(MaildirProviderTest, SanitizesDeliveryIdInFileName) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  const std::string id = "../../etc/x y:2,S\xc3\xa9";
  const SendResult result = provider->Send(Mail(id));
  ASSERT_TRUE(result.ok()) << result.error();

  const std::vector<std::string> names = FileNames(maildir_ / "new");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(std::regex_match(names[0], std::regex("[A-Za-z0-9._-]+")))
      << names[0];
  // Dots may stay; '/', ' ', ':', ',' and each byte of "é" become '_'.
  EXPECT_TRUE(absl::StrContains(names[0], "..._.._etc_x_y_2_S___0."))
      << names[0];
  const ParsedMail mail = ParseMail(ReadFile(maildir_ / "new" / names[0]));
  // Not ASCII, so written as an encoded word: headers stay 7-bit.
  EXPECT_EQ(DecodeEncodedWords(mail.Header("X-Authcode-Delivery-Id")), id);
}

TEST_F(MaildirProviderTest, EmptyDeliveryIdGetsRandomNamePart) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  const SendResult result = provider->Send(Mail(""));
  ASSERT_TRUE(result.ok()) << result.error();
  EXPECT_TRUE(std::regex_match(
      result.message_id(),
      std::regex(R"(maildir:[0-9]+\.[0-9a-f]{16}_[0-9]+\.[A-Za-z0-9._-]+)")))
      << result.message_id();
}

// A restarted server counts from zero again; within the same second it
// must not replace what it delivered before.
TEST_F(MaildirProviderTest, NeverOverwritesAnEarlierDelivery) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  const SendResult first = provider->Send(Mail("d-42"));
  ASSERT_TRUE(first.ok());

  // "maildir:<seconds>.d-42_0.<host>": take up the next few seconds too.
  const std::vector<std::string> fields =
      absl::StrSplit(absl::StripPrefix(first.message_id(), "maildir:"),
                     absl::MaxSplits('.', 2));
  ASSERT_EQ(fields.size(), 3u);
  long long seconds = 0;
  ASSERT_TRUE(absl::SimpleAtoi(fields[0], &seconds));
  for (long long s = seconds; s < seconds + 3; ++s) {
    for (int counter = 0; counter < 4; ++counter) {
      const std::string name =
          absl::StrCat(s, ".d-42_", counter, ".", fields[2]);
      if (fs::exists(maildir_ / "new" / name)) continue;
      std::ofstream(maildir_ / "new" / name) << "earlier";
    }
  }
  const size_t before = FileNames(maildir_ / "new").size();

  auto restarted = CreateOrDie();
  ASSERT_NE(restarted, nullptr);
  const SendResult second = restarted->Send(Mail("d-42"));
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ(FileNames(maildir_ / "new").size(), before + 1);
  for (const std::string& name : FileNames(maildir_ / "new")) {
    if ("maildir:" + name == first.message_id() ||
        "maildir:" + name == second.message_id()) {
      EXPECT_TRUE(absl::StartsWith(ReadFile(maildir_ / "new" / name), "From:"));
    } else {
      EXPECT_EQ(ReadFile(maildir_ / "new" / name), "earlier") << name;
    }
  }
}

TEST_F(MaildirProviderTest, WriteFailureIsRetryableWithoutContent) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  fs::remove(maildir_ / "tmp");

  const SendResult result = provider->Send(Mail("d-42"));
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_TRUE(absl::StrContains(result.error(), "No such file or directory"))
      << result.error();
  EXPECT_TRUE(absl::StrContains(result.error(), "maildir"));
  for (const char* content : {"493027", "sign-in", "alice"}) {
    EXPECT_FALSE(absl::StrContains(result.error(), content)) << result.error();
  }
  EXPECT_TRUE(FileNames(maildir_ / "new").empty());

  fs::create_directory(maildir_ / "tmp");
  EXPECT_TRUE(provider->Send(Mail("d-42")).ok()) << "recovers";
}

TEST_F(MaildirProviderTest, ConcurrentSendsWriteDistinctFiles) {
  auto provider = CreateOrDie();
  ASSERT_NE(provider, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;

  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Ids repeat, as retries do: names must differ all the same.
        const SendResult result =
            provider->Send(Mail(absl::StrCat("t", t, "-", i % 5)));
        ids[t].push_back(result.ok() ? result.message_id() : result.error());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::set<std::string> expected;
  for (const std::vector<std::string>& per_thread : ids) {
    for (const std::string& id : per_thread) {
      EXPECT_TRUE(absl::StartsWith(id, "maildir:")) << id;
      expected.insert(std::string(absl::StripPrefix(id, "maildir:")));
    }
  }
  EXPECT_EQ(expected.size(), static_cast<size_t>(kThreads * kPerThread));

  const std::vector<std::string> names = FileNames(maildir_ / "new");
  EXPECT_EQ(names.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected);
  EXPECT_TRUE(FileNames(maildir_ / "tmp").empty());
}

}  // namespace
}  // namespace authcode::providers
