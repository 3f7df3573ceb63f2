#include "providers/message/mime.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/files.h"

namespace authcode::providers {
namespace {

using Encoding = MimeOptions::Encoding;
using testing::ReadFile;
using testing::TempPath;
using testing::WriteFile;

// --- An independent reader: Debian's Python `email` package ---------------

// Reads a message on stdin with the modern policy (which decodes RFC 2047
// words and parses addresses and dates) and prints what it understood.
// The display name is decoded with the legacy API instead: the modern
// parser of Debian 12's Python 3.11 keeps the whitespace between adjacent
// encoded words of a phrase and turns tabs into spaces, against RFC 2047
// 6.2 (CPython gh-128110, fixed upstream in 2025).
constexpr char kReaderScript[] = R"py(
import base64, email, email.policy, json, sys
from email.header import decode_header, make_header
from email.utils import getaddresses

raw = sys.stdin.buffer.read()
msg = email.message_from_bytes(raw, policy=email.policy.default)
out = {
    "defects": [repr(d) for d in msg.defects],
    "headers": [[name, str(value)] for name, value in msg.items()],
    "content_type": msg.get_content_type(),
    "parts": [],
}
sender = msg["From"].addresses
out["from_address"] = sender[0].addr_spec
out["from_count"] = len(sender)
legacy = email.message_from_bytes(raw)
name, address = getaddresses([legacy["From"]])[0]
out["from_name"] = str(make_header(decode_header(name)))
out["from_address_legacy"] = address
out["to_address"] = msg["To"].addresses[0].addr_spec
out["subject"] = str(msg["Subject"])
out["date"] = int(msg["Date"].datetime.timestamp())
out["message_id"] = str(msg["Message-ID"])
out["mime_version"] = str(msg["MIME-Version"])
for part in msg.iter_parts():
    out["parts"].append({
        "type": part.get_content_type(),
        "charset": part.get_content_charset(),
        "encoding": part["Content-Transfer-Encoding"],
        "body": base64.b64encode(part.get_payload(decode=True)).decode(),
        "defects": [repr(d) for d in part.defects],
    })
print(json.dumps(out))
)py";

// What Python's email package made of `message`; a null json (and a failed
// test) when it could not read it.
nlohmann::json ReadWithPython(const std::string& message) {
  const std::string script = TempPath("mime_reader.py");
  const std::string input = TempPath("mime_input.eml");
  const std::string output = TempPath("mime_output.json");
  WriteFile(script, kReaderScript);
  WriteFile(input, message);
  const std::string command = absl::StrCat("/usr/bin/python3 ", script, " < ",
                                           input, " > ", output, " 2>&1");
  const int status = std::system(command.c_str());
  const std::string result = ReadFile(output);
  for (const std::string& path : {script, input, output}) {
    std::remove(path.c_str());
  }
  EXPECT_EQ(status, 0) << "Python's email could not read the message: "
                       << result << "\n"
                       << message;
  if (status != 0) return nlohmann::json();
  return nlohmann::json::parse(result);
}

std::string Decoded(const nlohmann::json& part) {
  std::string body;
  EXPECT_TRUE(absl::Base64Unescape(part.at("body").get<std::string>(), &body));
  return body;
}

// --- Checks of the wire form ----------------------------------------------

// CRLF only, no line over 998 octets, nothing but ASCII in the header.
void ExpectWireForm(const std::string& data) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\n') {
      ASSERT_TRUE(i > 0 && data[i - 1] == '\r') << "bare LF at " << i;
    } else if (data[i] == '\r') {
      ASSERT_TRUE(i + 1 < data.size() && data[i + 1] == '\n')
          << "bare CR at " << i;
    }
  }
  EXPECT_TRUE(absl::EndsWith(data, "\r\n"));
  for (absl::string_view line : absl::StrSplit(data, "\r\n")) {
    EXPECT_LE(line.size(), 998u) << line.substr(0, 80);
  }
  const std::string header = data.substr(0, data.find("\r\n\r\n"));
  for (char c : header) {
    ASSERT_EQ(c & 0x80, 0) << "8-bit header:\n" << header;
  }
}

// The encoded lines of each part body: at most 76 characters, and in
// quoted-printable no trailing whitespace and every '=' an escape or a
// soft break.
void ExpectEncodedLines(const std::string& data, Encoding encoding) {
  const std::string body = data.substr(data.find("\r\n\r\n") + 4);
  const std::vector<std::string> parts =
      absl::StrSplit(body, absl::ByString("\r\n\r\n"));
  for (size_t p = 1; p < parts.size(); ++p) {
    for (absl::string_view line : absl::StrSplit(parts[p], "\r\n")) {
      if (absl::StartsWith(line, "--")) break;  // The next boundary.
      EXPECT_LE(line.size(), 76u) << line;
      if (encoding == Encoding::kBase64 || line.empty()) continue;
      EXPECT_NE(line.back(), ' ') << line;
      EXPECT_NE(line.back(), '\t') << line;
      for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] != '=' || i + 1 == line.size()) continue;
        EXPECT_TRUE(i + 2 < line.size() &&
                    std::isxdigit(static_cast<unsigned char>(line[i + 1])) &&
                    std::isxdigit(static_cast<unsigned char>(line[i + 2])))
            << "bare '=' in " << line;
      }
      for (char c : line) {
        EXPECT_EQ(c & 0x80, 0) << "8-bit quoted-printable: " << line;
      }
    }
  }
}

std::string Header(const nlohmann::json& mail, const std::string& name) {
  for (const auto& header : mail.at("headers")) {
    if (header[0] == name) return header[1];
  }
  return "<missing " + name + ">";
}

int HeaderCount(const nlohmann::json& mail, const std::string& name) {
  int count = 0;
  for (const auto& header : mail.at("headers")) count += header[0] == name;
  return count;
}

// CRLF, bare LF and bare CR all as CRLF.
std::string Crlf(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' || text[i] == '\n') {
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
    } else {
      out += text[i];
    }
  }
  return out;
}

// --- Fixture ---------------------------------------------------------------

class MimeTest : public ::testing::TestWithParam<Encoding> {
 protected:
  static Message Mail() {
    Message message;
    message.from_address = "no-reply@mail.example.com";
    message.from_name = "Example";
    message.to_address = "alice@example.org";
    message.subject = "Your sign-in code";
    message.text = "Code: 493027\nIt expires in 10 minutes.\n";
    message.html = "<p>Code: <b>493027</b></p>\n<p>Expires soon.</p>";
    message.headers = {{"X-Purpose", "login"}, {"X-Tenant", "acme"}};
    message.delivery_id = "d-42";
    return message;
  }

  MimeOptions Options() const {
    MimeOptions options;
    options.encoding = GetParam();
    options.date = absl::FromUnixSeconds(1709647387);  // Tue, 05 Mar 2024.
    return options;
  }

  // What a reader should find in a decoded part: the input, with CRLF line
  // breaks in quoted-printable (the builder's documented normalisation).
  std::string Expected(const std::string& body) const {
    return GetParam() == Encoding::kQuotedPrintable ? Crlf(body) : body;
  }

  // Builds, checks the wire form and reads the mail back with Python; also
  // checks that the bodies survive.
  nlohmann::json BuildAndRead(const Message& message,
                              const MimeOptions& options) {
    absl::StatusOr<MimeMessage> mime = BuildMime(message, options);
    EXPECT_TRUE(mime.ok()) << mime.status();
    if (!mime.ok()) return nlohmann::json();
    ExpectWireForm(mime->data);
    ExpectEncodedLines(mime->data, options.encoding);
    last_ = *mime;

    nlohmann::json mail = ReadWithPython(mime->data);
    if (mail.is_null()) return mail;
    EXPECT_TRUE(mail.at("defects").empty()) << mail.at("defects");
    EXPECT_EQ(mail.at("content_type"), "multipart/alternative");
    EXPECT_EQ(mail.at("parts").size(), 2u);
    if (mail.at("parts").size() != 2) return mail;

    const char* transfer =
        options.encoding == Encoding::kBase64 ? "base64" : "quoted-printable";
    const char* types[] = {"text/plain", "text/html"};
    const std::string* bodies[] = {&message.text, &message.html};
    for (int i = 0; i < 2; ++i) {
      const nlohmann::json& part = mail.at("parts")[i];
      EXPECT_EQ(part.at("type"), types[i]);
      EXPECT_EQ(part.at("charset"), "utf-8");
      EXPECT_EQ(part.at("encoding"), transfer);
      EXPECT_TRUE(part.at("defects").empty()) << part.at("defects");
      EXPECT_EQ(Decoded(part), Expected(*bodies[i])) << types[i];
    }
    return mail;
  }

  MimeMessage last_;
};

INSTANTIATE_TEST_SUITE_P(Encodings, MimeTest,
                         ::testing::Values(Encoding::kQuotedPrintable,
                                           Encoding::kBase64),
                         [](const auto& param_info) {
                           return param_info.param == Encoding::kBase64
                                      ? "Base64"
                                      : "QuotedPrintable";
                         });

// --- Headers ---------------------------------------------------------------

TEST_P(MimeTest, WritesEveryHeaderOnce) {
  const Message message = Mail();
  const nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());

  EXPECT_EQ(mail.at("from_name"), "Example");
  EXPECT_EQ(mail.at("from_address"), "no-reply@mail.example.com");
  EXPECT_EQ(mail.at("from_address_legacy"), "no-reply@mail.example.com");
  EXPECT_EQ(mail.at("from_count"), 1);
  EXPECT_EQ(mail.at("to_address"), "alice@example.org");
  EXPECT_EQ(mail.at("subject"), "Your sign-in code");
  EXPECT_EQ(mail.at("date"), 1709647387);
  EXPECT_EQ(Header(mail, "Date"), "Tue, 05 Mar 2024 14:03:07 +0000");
  EXPECT_EQ(mail.at("mime_version"), "1.0");
  EXPECT_EQ(Header(mail, "X-Purpose"), "login");
  EXPECT_EQ(Header(mail, "X-Tenant"), "acme");
  for (const char* name : {"From", "To", "Subject", "Date", "Message-ID",
                           "MIME-Version", "Content-Type"}) {
    EXPECT_EQ(HeaderCount(mail, name), 1) << name;
  }

  // The id is random but on the sending domain, and returned as written.
  EXPECT_TRUE(std::regex_match(
      last_.message_id, std::regex(R"([0-9a-f]{32}@mail\.example\.com)")))
      << last_.message_id;
  EXPECT_EQ(mail.at("message_id"), "<" + last_.message_id + ">");
  EXPECT_FALSE(absl::StrContains(last_.data, "d-42"))
      << "the delivery id is Maildir's business, not the builder's";
}

TEST_P(MimeTest, HeadersComeInDocumentedOrder) {
  const nlohmann::json mail = BuildAndRead(Mail(), Options());
  ASSERT_FALSE(mail.is_null());
  std::vector<std::string> names;
  for (const auto& header : mail.at("headers")) names.push_back(header[0]);
  EXPECT_EQ(names,
            (std::vector<std::string>{"From", "To", "Subject", "Date",
                                      "Message-ID", "MIME-Version", "X-Purpose",
                                      "X-Tenant", "Content-Type"}));
}

TEST_P(MimeTest, MessageIdDomainOptionWins) {
  MimeOptions options = Options();
  options.message_id_domain = "ids.example.net";
  options.message_id_local = "fixed.local-part";
  const nlohmann::json mail = BuildAndRead(Mail(), options);
  ASSERT_FALSE(mail.is_null());
  EXPECT_EQ(last_.message_id, "fixed.local-part@ids.example.net");
  EXPECT_EQ(mail.at("message_id"), "<fixed.local-part@ids.example.net>");
}

TEST_P(MimeTest, RandomPartsDifferEachTime) {
  const absl::StatusOr<MimeMessage> first = BuildMime(Mail(), Options());
  const absl::StatusOr<MimeMessage> second = BuildMime(Mail(), Options());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->message_id, second->message_id);
  EXPECT_NE(first->data, second->data);

  MimeOptions fixed = Options();
  fixed.boundary = "=_fixed_boundary";
  fixed.message_id_local = "fixed";
  const absl::StatusOr<MimeMessage> third = BuildMime(Mail(), fixed);
  const absl::StatusOr<MimeMessage> fourth = BuildMime(Mail(), fixed);
  ASSERT_TRUE(third.ok() && fourth.ok());
  EXPECT_EQ(third->data, fourth->data) << "fixed options are deterministic";
  EXPECT_TRUE(absl::StrContains(third->data, "boundary=\"=_fixed_boundary\""));
}

TEST_P(MimeTest, NonAsciiSubjectAndNameAreEncodedWords) {
  Message message = Mail();
  message.from_name = "Zoë Bäcker, Ö-Team";
  message.subject =
      "Ihr Anmeldecode für Übungsräume — gültig für zehn Minuten ✓ 例え";
  const nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());

  EXPECT_EQ(mail.at("from_name"), message.from_name);
  EXPECT_EQ(mail.at("from_address"), "no-reply@mail.example.com");
  EXPECT_EQ(mail.at("subject"), message.subject);
  EXPECT_TRUE(absl::StrContains(last_.data, "Subject: =?UTF-8?B?"));
  EXPECT_TRUE(absl::StrContains(last_.data, "From: =?UTF-8?B?"));
}

TEST_P(MimeTest, AsciiSpecialsInNamesAndSubjects) {
  Message message = Mail();
  message.from_name = "Example, Inc. \"Security\" \\ Team";
  message.subject = "=?UTF-8?B?aGk=?= is literal; so are (parens) & 100%";
  const nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());
  EXPECT_EQ(mail.at("from_name"), message.from_name);
  EXPECT_EQ(mail.at("subject"), message.subject);
}

TEST_P(MimeTest, EdgeWhitespaceInSubjectSurvives) {
  Message message = Mail();
  message.subject = " leading and trailing ";
  message.from_name = "Tab\there";
  const nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());
  EXPECT_EQ(mail.at("subject"), message.subject);
  EXPECT_EQ(mail.at("from_name"), message.from_name);
}

TEST_P(MimeTest, LongSubjectsFoldWithinLimits) {
  Message message = Mail();
  std::string words;
  for (int i = 0; i < 60; ++i) absl::StrAppend(&words, "word", i, " ");
  words.pop_back();
  message.subject = words;  // Plain: folded at spaces.
  nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());
  EXPECT_EQ(mail.at("subject"), message.subject);
  const std::string header = last_.data.substr(0, last_.data.find("\r\n\r\n"));
  for (absl::string_view line : absl::StrSplit(header, "\r\n")) {
    EXPECT_LE(line.size(), 78u) << line;
  }

  message.subject = std::string(2000, 'x');  // No space: encoded words.
  message.from_name = std::string(1500, 'n');
  mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());
  EXPECT_EQ(mail.at("subject"), message.subject);
  EXPECT_EQ(mail.at("from_name"), message.from_name);
}

TEST_P(MimeTest, NonAsciiExtraHeaderValueIsEncoded) {
  Message message = Mail();
  message.headers = {{"X-Note", "für dich"},
                     {"List-Unsubscribe", "<https://example.com/u?a=1&b=2>"}};
  const nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());
  EXPECT_EQ(Header(mail, "X-Note"), "für dich");
  EXPECT_EQ(Header(mail, "List-Unsubscribe"),
            "<https://example.com/u?a=1&b=2>");
}

TEST_P(MimeTest, InternationalizedAddressesAreWrittenAsIs) {
  Message message = Mail();
  message.to_address = "jürgen@bücher.example";
  MimeOptions options = Options();
  options.message_id_domain = "mail.example.com";
  absl::StatusOr<MimeMessage> mime = BuildMime(message, options);
  ASSERT_TRUE(mime.ok()) << mime.status();
  EXPECT_TRUE(
      absl::StrContains(mime->data, "\r\nTo: jürgen@bücher.example\r\n"));
  EXPECT_TRUE(NeedsSmtpUtf8(message.to_address));
  EXPECT_FALSE(NeedsSmtpUtf8("alice@example.org"));

  // A non-ASCII From domain cannot carry the Message-ID by itself.
  message.from_address = "post@bücher.example";
  mime = BuildMime(message, Options());
  ASSERT_FALSE(mime.ok());
  EXPECT_TRUE(absl::StrContains(mime.status().message(), "message_id_domain"))
      << mime.status();
}

// --- Bodies ----------------------------------------------------------------

TEST_P(MimeTest, AwkwardBodiesSurvive) {
  Message message = Mail();
  message.text = absl::StrCat(
      "Line one\n", ".starts with a dot\n", ".\n", "..two dots\n",
      "a = b == c=\n", "trailing spaces   \n", "trailing tab\t\n",
      "Grüße — 例 ✓\n", std::string(1200, 'L'), "\n", std::string(100, '='),
      "\n", "From the start\n", "mixed\r\nbreaks\rhere", "\n\n\n  ");
  message.html =
      absl::StrCat("<!DOCTYPE html>\n<html><body style=\"color: #333\">\n",
                   "<p class=\"code\">493027</p>\n", std::string(1500, 'h'),
                   "<p>Grüße ✓</p></body></html>\n");
  const nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());
}

TEST_P(MimeTest, EmptyBodiesStillMakeTwoParts) {
  Message message = Mail();
  message.text = "";
  message.html = "";
  const nlohmann::json mail = BuildAndRead(message, Options());
  ASSERT_FALSE(mail.is_null());
}

TEST(MimeQuotedPrintableTest, FollowsRfc2045) {
  Message message;
  message.from_address = "a@example.com";
  message.to_address = "b@example.com";
  message.text = absl::StrCat("a=b \nc\t\r\n", std::string(80, 'x'), "\n",
                              std::string(74, 'y'), "=\n", "ü end ");
  message.html = "";
  MimeOptions options;
  options.boundary = "=_b";
  absl::StatusOr<MimeMessage> mime = BuildMime(message, options);
  ASSERT_TRUE(mime.ok()) << mime.status();

  // '=' and trailing whitespace escaped; a soft break after 75 characters;
  // an escape is never split, so a 74-character line ending in '=' breaks
  // before it; UTF-8 as escaped octets.
  const std::string expected = absl::StrCat(
      "Content-Transfer-Encoding: quoted-printable\r\n\r\n", "a=3Db=20\r\n",
      "c=09\r\n", std::string(75, 'x'), "=\r\n", std::string(5, 'x'), "\r\n",
      std::string(74, 'y'), "=\r\n=3D\r\n", "=C3=BC end=20\r\n--=_b\r\n");
  EXPECT_TRUE(absl::StrContains(mime->data, expected)) << mime->data;
}

// --- Rejections --------------------------------------------------------------

TEST(MimeRejectsTest, ControlCharactersInAnyHeaderField) {
  struct Case {
    std::string field;  // Expected in the error.
    void (*inject)(Message&, const std::string&);
  };
  const Case cases[] = {
      {"Subject", [](Message& m, const std::string& s) { m.subject += s; }},
      {"From (display name)",
       [](Message& m, const std::string& s) { m.from_name += s; }},
      {"From (address)",
       [](Message& m, const std::string& s) { m.from_address += s; }},
      {"To", [](Message& m, const std::string& s) { m.to_address += s; }},
      {"X-Purpose",
       [](Message& m, const std::string& s) {
         m.headers = {{"X-Purpose", "login" + s}};
       }},
      {"X-Evil",
       [](Message& m, const std::string& s) {
         m.headers = {{"X-Evil" + s, "x"}};
       }},
  };
  const std::string injections[] = {
      "\r\nBcc: mallory@example.net", "\nBcc: mallory@example.net",
      "\rBcc: mallory@example.net", std::string("\0Bcc: mallory", 13),
      "\x1b[31mmallory"};
  for (const Case& c : cases) {
    for (const std::string& injection : injections) {
      Message message;
      message.from_address = "no-reply@example.com";
      message.from_name = "Example";
      message.to_address = "alice@example.com";
      message.subject = "Your code";
      message.text = "493027";
      c.inject(message, injection);

      const absl::StatusOr<MimeMessage> mime = BuildMime(message);
      ASSERT_FALSE(mime.ok()) << c.field << " " << absl::CHexEscape(injection);
      EXPECT_EQ(mime.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(absl::StrContains(mime.status().message(), c.field))
          << c.field << ": " << mime.status();
      EXPECT_FALSE(absl::StrContains(mime.status().message(), "mallory"))
          << mime.status();
      EXPECT_FALSE(absl::StrContains(mime.status().message(), "493027"));
    }
  }
}

TEST(MimeRejectsTest, BadExtraHeaders) {
  struct Case {
    std::string name;
    std::string value;
    std::string named;  // Expected in the error: a bad name up to its flaw.
  };
  const Case cases[] = {
      {"Content-Type", "text/plain", "\"Content-Type\""},
      {"subject", "again", "\"subject\""},
      {"MESSAGE-ID", "<x@y>", "\"MESSAGE-ID\""},
      {"From", "mallory@example.net", "\"From\""},
      {"X Purpose", "login", "\"X\" header has a name with the character 0x20"},
      {"X-Purpose:", "login", "\"X-Purpose\" header has a name with"},
      {"", "empty name", "empty name"},
      {"X-\xc3\xa9", "non-ASCII name", "\"X-\" header has a name with"},
      {std::string(77, 'X'), "long", "longer than 76"},
      {"X-Long", std::string(1000, 'v'), "\"X-Long\" header has a word"},
      {"X-Bad-Utf8", "\xc3(", "\"X-Bad-Utf8\" header is not valid UTF-8"}};
  for (const Case& c : cases) {
    Message message;
    message.from_address = "no-reply@example.com";
    message.to_address = "alice@example.com";
    message.headers = {{c.name, c.value}};
    const absl::StatusOr<MimeMessage> mime = BuildMime(message);
    ASSERT_FALSE(mime.ok()) << c.name;
    EXPECT_EQ(mime.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(mime.status().message(), c.named))
        << mime.status();
  }
}

TEST(MimeRejectsTest, MalformedAddresses) {
  const std::string bad[] = {"",
                             "no-at-sign",
                             "@example.com",
                             "alice@",
                             "alice@@example.com",
                             "al ice@example.com",
                             "<alice@example.com>",
                             "alice@example.com, bob@example.com",
                             "Alice <alice@example.com>",
                             "\"quoted\"@example.com",
                             ".alice@example.com",
                             "alice@example..com",
                             "alice@[127.0.0.1]",
                             std::string(250, 'a') + "@example.com",
                             "bad\xff@example.com"};
  for (const std::string& address : bad) {
    Message message;
    message.from_address = "no-reply@example.com";
    message.to_address = address;
    absl::StatusOr<MimeMessage> mime = BuildMime(message);
    ASSERT_FALSE(mime.ok()) << address;
    EXPECT_EQ(mime.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(mime.status().message(), "the To header"))
        << mime.status();

    message.to_address = "alice@example.com";
    message.from_address = address;
    mime = BuildMime(message);
    ASSERT_FALSE(mime.ok()) << address;
    EXPECT_TRUE(absl::StrContains(mime.status().message(), "From (address)"))
        << mime.status();
  }
}

TEST(MimeRejectsTest, InvalidUtf8InSubjectOrName) {
  Message message;
  message.from_address = "no-reply@example.com";
  message.to_address = "alice@example.com";
  message.subject = "caf\xe9";  // Latin-1, not UTF-8.
  absl::StatusOr<MimeMessage> mime = BuildMime(message);
  ASSERT_FALSE(mime.ok());
  EXPECT_TRUE(absl::StrContains(mime.status().message(), "Subject"));

  message.subject = "ok";
  message.from_name = "\xed\xa0\x80";  // A UTF-16 surrogate.
  mime = BuildMime(message);
  ASSERT_FALSE(mime.ok());
  EXPECT_TRUE(absl::StrContains(mime.status().message(), "display name"));
}

TEST(MimeRejectsTest, BadOptions) {
  Message message;
  message.from_address = "no-reply@example.com";
  message.to_address = "alice@example.com";
  message.text = "the boundary =_b is in here";

  MimeOptions options;
  options.encoding = Encoding::kBase64;
  options.boundary = "=_b";
  EXPECT_TRUE(BuildMime(message, options).ok()) << "base64 hides it";
  options.encoding = Encoding::kQuotedPrintable;
  options.boundary = "b";
  EXPECT_FALSE(BuildMime(message, options).ok()) << "boundary in the body";

  for (const std::string& boundary :
       {std::string("bad\"quote"), std::string(71, 'b'),
        std::string("trailing ")}) {
    options.boundary = boundary;
    EXPECT_FALSE(BuildMime(message, options).ok()) << boundary;
  }
  options.boundary = "";
  for (const std::string& part : {std::string("a b"), std::string("a@b"),
                                  std::string("x>"), std::string("a..b")}) {
    options.message_id_local = part;
    EXPECT_FALSE(BuildMime(message, options).ok()) << part;
    options.message_id_local = "";
    options.message_id_domain = part;
    EXPECT_FALSE(BuildMime(message, options).ok()) << part;
    options.message_id_domain = "";
  }
}

}  // namespace
}  // namespace authcode::providers
