#include "providers/smtp/smtp_reply.h"

#include <string>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "providers/smtp/smtp_connection.h"

namespace authcode::providers {
namespace {

// Feeds all of `input` at once; expects exactly one reply and no rest.
SmtpReply ParseOne(absl::string_view input) {
  SmtpReplyParser parser;
  absl::StatusOr<std::optional<SmtpReply>> reply = parser.Feed(&input);
  EXPECT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(input.empty()) << "left over: " << input;
  if (!reply.ok() || !reply->has_value()) {
    ADD_FAILURE() << "no complete reply";
    return SmtpReply();
  }
  return **reply;
}

absl::Status ParseError(absl::string_view input, SmtpReplyLimits limits = {}) {
  SmtpReplyParser parser(limits);
  absl::StatusOr<std::optional<SmtpReply>> reply = parser.Feed(&input);
  if (reply.ok()) return absl::OkStatus();
  return reply.status();
}

TEST(SmtpReplyParserTest, ParsesSingleLine) {
  const SmtpReply reply = ParseOne("250 OK\r\n");
  EXPECT_EQ(reply.code, 250);
  EXPECT_EQ(reply.enhanced, "");
  ASSERT_EQ(reply.lines.size(), 1u);
  EXPECT_EQ(reply.lines[0], "OK");
  EXPECT_TRUE(reply.positive());
}

TEST(SmtpReplyParserTest, ParsesBareCode) {
  const SmtpReply reply = ParseOne("354\r\n");
  EXPECT_EQ(reply.code, 354);
  EXPECT_EQ(reply.Summary(), "354");
}

TEST(SmtpReplyParserTest, ParsesMultiLineEhlo) {
  const SmtpReply reply = ParseOne(
      "250-mail.example.com Hello\r\n250-SIZE 1000\r\n250-STARTTLS\r\n"
      "250 AUTH PLAIN LOGIN\r\n");
  EXPECT_EQ(reply.code, 250);
  ASSERT_EQ(reply.lines.size(), 4u);
  EXPECT_EQ(reply.lines[2], "STARTTLS");
  EXPECT_EQ(reply.lines[3], "AUTH PLAIN LOGIN");
}

TEST(SmtpReplyParserTest, ExtractsEnhancedCodeFromEveryLine) {
  const SmtpReply reply =
      ParseOne("550-5.1.1 no such user\r\n550 5.1.1 try another\r\n");
  EXPECT_EQ(reply.code, 550);
  EXPECT_EQ(reply.enhanced, "5.1.1");
  EXPECT_EQ(reply.lines[0], "no such user");
  EXPECT_EQ(reply.lines[1], "try another");
  EXPECT_EQ(reply.Summary(), "550 5.1.1 no such user try another");
  EXPECT_TRUE(reply.permanent());
}

TEST(SmtpReplyParserTest, IgnoresEnhancedCodeOfAnotherClass) {
  const SmtpReply reply = ParseOne("451 5.1.1 odd\r\n");
  EXPECT_EQ(reply.enhanced, "");
  EXPECT_EQ(reply.lines[0], "5.1.1 odd");
  EXPECT_TRUE(reply.transient());
}

TEST(SmtpReplyParserTest, TakesEnhancedCodeOnlyWhenWellFormed) {
  for (absl::string_view text :
       {"2.1", "2.1.", "2.1000.0 x", "2.1.0x", "2..0 x", "x.1.0"}) {
    absl::string_view rest = text;
    EXPECT_EQ(TakeEnhancedCode('2', &rest), "") << text;
    EXPECT_EQ(rest, text);
  }
  absl::string_view rest = "2.1.0 Sender OK";
  EXPECT_EQ(TakeEnhancedCode('2', &rest), "2.1.0");
  EXPECT_EQ(rest, "Sender OK");
  rest = "4.7.0";
  EXPECT_EQ(TakeEnhancedCode('4', &rest), "4.7.0");
  EXPECT_EQ(rest, "");
}

TEST(SmtpReplyParserTest, AcceptsBytesOneAtATime) {
  const std::string wire = "250-first\r\n250 last\r\n";
  SmtpReplyParser parser;
  std::optional<SmtpReply> result;
  for (size_t i = 0; i < wire.size(); ++i) {
    absl::string_view byte(wire.data() + i, 1);
    absl::StatusOr<std::optional<SmtpReply>> reply = parser.Feed(&byte);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->has_value(), i + 1 == wire.size()) << "byte " << i;
    if (reply->has_value()) result = **reply;
  }
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->Summary(), "250 first last");
  EXPECT_FALSE(parser.InProgress());
}

TEST(SmtpReplyParserTest, LeavesTheNextReplyInTheInput) {
  absl::string_view input = "250 one\r\n354 two\r\n";
  SmtpReplyParser parser;
  absl::StatusOr<std::optional<SmtpReply>> first = parser.Feed(&input);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->code, 250);
  EXPECT_EQ(input, "354 two\r\n");
  absl::StatusOr<std::optional<SmtpReply>> second = parser.Feed(&input);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->code, 354);
}

TEST(SmtpReplyParserTest, AcceptsBareLineFeed) {
  EXPECT_EQ(ParseOne("220 ready\n").code, 220);
}

TEST(SmtpReplyParserTest, RejectsMalformedLines) {
  for (absl::string_view bad :
       {"25 short\r\n", "abc text\r\n", "250x text\r\n", "150 one\r\n",
        "610 high\r\n", "2a0 x\r\n", "\r\n"}) {
    EXPECT_FALSE(ParseError(bad).ok()) << bad;
  }
}

TEST(SmtpReplyParserTest, RejectsMixedCodes) {
  const absl::Status status = ParseError("250-one\r\n251 two\r\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("mixes"), absl::string_view::npos);
}

TEST(SmtpReplyParserTest, BoundsLineLength) {
  SmtpReplyLimits limits;
  limits.max_line_length = 64;
  const std::string endless = "250 " + std::string(100, 'x');
  const absl::Status status = ParseError(endless, limits);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
}

TEST(SmtpReplyParserTest, BoundsLineCount) {
  SmtpReplyLimits limits;
  limits.max_lines = 5;
  std::string many;
  for (int i = 0; i < 10; ++i) many += "250-more\r\n";
  const absl::Status status = ParseError(many, limits);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
}

TEST(SmtpReplyParserTest, StaysFailedUntilReset) {
  SmtpReplyParser parser;
  absl::string_view bad = "xyz\r\n";
  EXPECT_FALSE(parser.Feed(&bad).ok());
  absl::string_view good = "250 ok\r\n";
  EXPECT_FALSE(parser.Feed(&good).ok());
  parser.Reset();
  absl::StatusOr<std::optional<SmtpReply>> reply = parser.Feed(&good);
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->has_value());
}

TEST(SmtpReplyParserTest, SummaryDropsControlCharactersAndCuts) {
  const SmtpReply reply = ParseOne("550 bad\x1b[31m\x7f text\r\n");
  EXPECT_EQ(reply.Summary(), "550 bad [31m  text");
  const SmtpReply longer = ParseOne("550 " + std::string(500, 'y') + "\r\n");
  EXPECT_EQ(longer.Summary(40).size(), 40u);
  EXPECT_EQ(longer.Summary(40).substr(37), "...");
}

TEST(DotStuffTest, DoublesLeadingDotsAndTerminates) {
  EXPECT_EQ(DotStuff(".hidden\r\nnot.here\r\n.\r\n"),
            "..hidden\r\nnot.here\r\n..\r\n.\r\n");
}

TEST(DotStuffTest, NormalizesLineBreaks) {
  EXPECT_EQ(DotStuff("a\nb\rc\r\n.d"), "a\r\nb\r\nc\r\n..d\r\n.\r\n");
  EXPECT_EQ(DotStuff(""), ".\r\n");
}

}  // namespace
}  // namespace authcode::providers
