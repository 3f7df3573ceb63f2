#include "providers/smtp/smtp_provider.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "providers/registry.h"
#include "providers/smtp/smtp_connection.h"
#include "tests/providers/smtp/smtp_peer.h"

namespace authcode::providers {
namespace {

namespace fs = std::filesystem;

using testing::kPython;
constexpr char kUser[] = "mailer";
constexpr char kPassword[] = "s3cret-Pa55word";

using testing::MakeTempDir;
using testing::ReadFile;
using TestServer = testing::SmtpPeer;

// The received message as Python's email package reads it.
nlohmann::json ParseWithPython(const std::string& path) {
  const std::string script =
      "import email, email.policy, json, sys\n"
      "m = email.message_from_binary_file(open(sys.argv[1], 'rb'),\n"
      "    policy=email.policy.default)\n"
      "a = m['from'].addresses[0]\n"
      "print(json.dumps({'subject': str(m['subject']),\n"
      "  'from_name': a.display_name, 'from_addr': a.addr_spec,\n"
      "  'to': str(m['to']), 'message_id': str(m['message-id']),\n"
      "  'names': [k.lower() for k in m.keys()],\n"
      "  'parts': [[p.get_content_type(), p.get_content()]\n"
      "            for p in m.iter_parts()]}))\n";
  const std::string script_path = path + ".py";
  std::ofstream(script_path) << script;
  const std::string command =
      absl::StrCat(kPython, " ", script_path, " ", path, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    out.append(buffer, n);
  EXPECT_EQ(pclose(pipe), 0) << out;
  return nlohmann::json::parse(out, nullptr, false);
}

Message TestMessage() {
  Message message;
  message.from_address = "codes@example.com";
  message.from_name = "Zoë Müller";
  message.to_address = "ada@example.net";
  message.subject = "Ihr Code – Grüße ✓";
  message.text = "Your code is 123456.\n.a line starting with a dot\n.\n";
  message.html = "<p>Your code is <b>123456</b>.</p>\n";
  message.delivery_id = "d-1";
  return message;
}

class SmtpProviderTest : public testing::WithTestCerts<SmtpProviderTest> {
 protected:
  static std::string Cert(const char* name) {
    return (fs::path(certs()) / name).string();
  }

  // A server with the throwaway certificate; `args` add to it.
  static std::unique_ptr<TestServer> StartServer(
      const std::string& security, std::vector<std::string> args = {}) {
    std::vector<std::string> all = {
        "--security", security,
        "--cert",     Cert("server.pem"),
        "--key",      Cert("server.key"),
        "--auth",     absl::StrCat(kUser, ":", kPassword)};
    all.insert(all.end(), args.begin(), args.end());
    return std::make_unique<TestServer>(all);
  }

  // Settings for `server`: trusted CA, password from the environment.
  static std::map<std::string, std::string> Settings(
      const TestServer& server, const std::string& security) {
    setenv("AUTHCODE_TEST_SMTP_PASSWORD", kPassword, 1);
    return {{"host", "127.0.0.1"},
            {"port", std::to_string(server.port())},
            {"security", security},
            {"server_name", "localhost"},
            {"ca_file", Cert("ca.pem")},
            {"username", kUser},
            {"password_env", "AUTHCODE_TEST_SMTP_PASSWORD"},
            {"helo", "client.test"},
            {"timeout", "5s"}};
  }

  static absl::StatusOr<std::unique_ptr<Provider>> Create(
      std::map<std::string, std::string> values) {
    ProviderRegistry registry;
    RegisterSmtpProvider(registry);
    return registry.Create("smtp", ProviderSettings("providers.smtp", values));
  }

  static std::unique_ptr<Provider> MustCreate(
      std::map<std::string, std::string> values) {
    absl::StatusOr<std::unique_ptr<Provider>> provider =
        Create(std::move(values));
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  // Checks the first received message against TestMessage().
  static void ExpectDelivered(const TestServer& server,
                              const SendResult& result) {
    ASSERT_TRUE(result.ok()) << result.error();
    ASSERT_EQ(server.Messages(), 1);
    const Message sent = TestMessage();
    const nlohmann::json envelope = server.Envelope(1);
    EXPECT_EQ(envelope["mail_from"], sent.from_address);
    EXPECT_EQ(envelope["rcpt_tos"], nlohmann::json::array({sent.to_address}));

    const nlohmann::json mail = ParseWithPython(server.MessagePath(1));
    ASSERT_FALSE(mail.is_discarded());
    EXPECT_EQ(mail["subject"], sent.subject);
    EXPECT_EQ(mail["from_name"], sent.from_name);
    EXPECT_EQ(mail["from_addr"], sent.from_address);
    EXPECT_EQ(mail["to"], sent.to_address);
    EXPECT_EQ(mail["message_id"], "<" + result.message_id() + ">");
    ASSERT_EQ(mail["parts"].size(), 2u) << mail.dump();
    EXPECT_EQ(mail["parts"][0][0], "text/plain");
    EXPECT_EQ(mail["parts"][1][0], "text/html");
    const auto normalize = [](std::string text) {
      std::string out;
      for (char c : text) {
        if (c != '\r') out += c;
      }
      return out;
    };
    EXPECT_EQ(normalize(mail["parts"][0][1]), sent.text);
    EXPECT_EQ(normalize(mail["parts"][1][1]), sent.html);
  }
};

TEST_F(SmtpProviderTest, DeliversOverStartTlsWithAuthPlain) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  auto settings = Settings(*server, "starttls");
  settings["auth"] = "plain";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  ExpectDelivered(*server, provider->Send(TestMessage()));
  const std::string commands = server->Commands();
  EXPECT_TRUE(absl::StrContains(commands, "STARTTLS")) << commands;
  EXPECT_TRUE(absl::StrContains(commands, "AUTH PLAIN")) << commands;
  EXPECT_TRUE(absl::StrContains(commands, "EHLO client.test")) << commands;
}

TEST_F(SmtpProviderTest, DeliversWithXoauth2WhenATokenIsConfigured) {
  std::unique_ptr<TestServer> server =
      StartServer("starttls", {"--oauth", absl::StrCat(kUser, ":ya29.tok")});
  auto settings = Settings(*server, "starttls");
  settings.erase("password_env");
  setenv("AUTHCODE_TEST_SMTP_TOKEN", "ya29.tok", 1);
  settings["oauth_token_env"] = "AUTHCODE_TEST_SMTP_TOKEN";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  ExpectDelivered(*server, provider->Send(TestMessage()));
  const std::string commands = server->Commands();
  EXPECT_TRUE(absl::StrContains(commands, "AUTH XOAUTH2")) << commands;
  EXPECT_FALSE(absl::StrContains(commands, "ya29.tok")) << commands;
}

TEST_F(SmtpProviderTest, RefusedXoauth2TokenIsPermanentAndNotEchoed) {
  std::unique_ptr<TestServer> server =
      StartServer("starttls", {"--oauth", absl::StrCat(kUser, ":right")});
  auto settings = Settings(*server, "starttls");
  settings.erase("password_env");
  settings["oauth_token"] = "wrong-token";
  settings["auth"] = "xoauth2";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  const SendResult result = provider->Send(TestMessage());
  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent) << result.error();
  EXPECT_TRUE(absl::StrContains(result.error(), "XOAUTH2")) << result.error();
  EXPECT_FALSE(absl::StrContains(result.error(), "wrong-token"));
  EXPECT_EQ(server->Messages(), 0);
}

TEST_F(SmtpProviderTest, DeliversOverImplicitTlsWithAuthLogin) {
  std::unique_ptr<TestServer> server = StartServer("tls");
  const std::string password_file = server->dir() + "/password";
  std::ofstream(password_file) << kPassword << "\n";
  auto settings = Settings(*server, "tls");
  settings.erase("password_env");
  settings["password_file"] = password_file;
  settings["auth"] = "login";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  ExpectDelivered(*server, provider->Send(TestMessage()));
  const std::string commands = server->Commands();
  EXPECT_FALSE(absl::StrContains(commands, "STARTTLS")) << commands;
  EXPECT_TRUE(absl::StrContains(commands, "AUTH LOGIN")) << commands;
}

TEST_F(SmtpProviderTest, RefusesPlaintextWhenStartTlsIsNotOffered) {
  std::unique_ptr<TestServer> server = StartServer("plain");
  std::unique_ptr<Provider> provider =
      MustCreate(Settings(*server, "starttls"));
  ASSERT_NE(provider, nullptr);

  const SendResult result = provider->Send(TestMessage());
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_TRUE(absl::StrContains(result.error(), "does not offer STARTTLS"))
      << result.error();
  EXPECT_FALSE(absl::StrContains(server->Commands(), "AUTH"));
  EXPECT_FALSE(absl::StrContains(server->Commands(), "MAIL"));
  EXPECT_EQ(server->Messages(), 0);
}

TEST_F(SmtpProviderTest, RefusesAnUntrustedCertificate) {
  std::unique_ptr<TestServer> server = StartServer("tls");
  auto settings = Settings(*server, "tls");
  settings.erase("ca_file");  // The system CAs do not know the test CA.
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  const SendResult result = provider->Send(TestMessage());
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_TRUE(absl::StrContains(result.error(), "failed verification"))
      << result.error();
  EXPECT_EQ(server->Messages(), 0);
}

TEST_F(SmtpProviderTest, RefusesACertificateForAnotherName) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  auto settings = Settings(*server, "starttls");
  settings["server_name"] = "smtp.example.com";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  const SendResult result = provider->Send(TestMessage());
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_TRUE(absl::StrContains(result.error(), "failed verification"))
      << result.error();
}

TEST_F(SmtpProviderTest, CheckReachableLogsInAndSendsNothing) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  std::unique_ptr<Provider> provider =
      MustCreate(Settings(*server, "starttls"));
  ASSERT_NE(provider, nullptr);

  const absl::Status status = provider->CheckReachable();
  EXPECT_TRUE(status.ok()) << status;
  const std::string commands = server->Commands();
  EXPECT_TRUE(absl::StrContains(commands, "STARTTLS")) << commands;
  EXPECT_TRUE(absl::StrContains(commands, "AUTH PLAIN")) << commands;
  EXPECT_TRUE(absl::StrContains(commands, "QUIT")) << commands;
  EXPECT_FALSE(absl::StrContains(commands, "MAIL")) << commands;
  EXPECT_EQ(server->Messages(), 0);
}

TEST_F(SmtpProviderTest, CheckReachableNamesTheFailingStep) {
  std::unique_ptr<TestServer> server = StartServer("tls");
  auto untrusted = Settings(*server, "tls");
  untrusted.erase("ca_file");  // The system CAs do not know the test CA.
  std::unique_ptr<Provider> provider = MustCreate(untrusted);
  ASSERT_NE(provider, nullptr);
  absl::Status status = provider->CheckReachable();
  EXPECT_TRUE(absl::StrContains(status.message(), "failed verification"))
      << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), "smtp: TLS: ")) << status;

  auto wrong_password = Settings(*server, "tls");
  wrong_password.erase("password_env");
  wrong_password["password"] = "wrong-password";
  provider = MustCreate(wrong_password);
  ASSERT_NE(provider, nullptr);
  status = provider->CheckReachable();
  EXPECT_TRUE(absl::StrContains(status.message(), "535")) << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "wrong-password"));
  EXPECT_EQ(server->Messages(), 0);
}

struct ReplyCase {
  std::string fail;  // --fail argument.
  SendResult::Kind kind;
  std::string error;  // Expected in the error text.
};

class SmtpReplyMappingTest : public SmtpProviderTest,
                             public ::testing::WithParamInterface<ReplyCase> {};

TEST_P(SmtpReplyMappingTest, MapsReplyCodesToRetryableOrPermanent) {
  const ReplyCase& c = GetParam();
  std::unique_ptr<TestServer> server =
      StartServer("starttls", {"--fail", c.fail});
  std::unique_ptr<Provider> provider =
      MustCreate(Settings(*server, "starttls"));
  ASSERT_NE(provider, nullptr);

  const SendResult result = provider->Send(TestMessage());
  EXPECT_EQ(result.kind(), c.kind) << result.error();
  EXPECT_EQ(result.error(), "smtp: " + c.error);
  EXPECT_FALSE(absl::StrContains(result.error(), kPassword));
  EXPECT_EQ(server->Messages(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Steps, SmtpReplyMappingTest,
    ::testing::Values(
        ReplyCase{"mail=451", SendResult::Kind::kRetryable,
                  "MAIL FROM: 451 4.1.0 sender refused by test"},
        ReplyCase{"mail=553", SendResult::Kind::kPermanent,
                  "MAIL FROM: 553 5.1.0 sender refused by test"},
        ReplyCase{"rcpt=450", SendResult::Kind::kRetryable,
                  "RCPT TO: 450 4.1.1 no such user"},
        ReplyCase{"rcpt=550", SendResult::Kind::kPermanent,
                  "RCPT TO: 550 5.1.1 no such user"},
        ReplyCase{"data=452", SendResult::Kind::kRetryable,
                  "end of DATA: 452 4.3.0 message refused by test"},
        ReplyCase{"data=554", SendResult::Kind::kPermanent,
                  "end of DATA: 554 5.3.0 message refused by test"},
        ReplyCase{"auth=454", SendResult::Kind::kRetryable,
                  "AUTH PLAIN: 454 4.7.8 authentication refused by test"},
        ReplyCase{"auth=535", SendResult::Kind::kPermanent,
                  "AUTH PLAIN: 535 5.7.8 authentication refused by test"}));

TEST_F(SmtpProviderTest, WrongPasswordIsPermanentAndNotEchoed) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  auto settings = Settings(*server, "starttls");
  settings.erase("password_env");
  settings["password"] = "wrong-password";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  const SendResult result = provider->Send(TestMessage());
  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_TRUE(absl::StartsWith(result.error(), "smtp: AUTH PLAIN: 535"))
      << result.error();
  EXPECT_FALSE(absl::StrContains(result.error(), "wrong-password"));
}

TEST_F(SmtpProviderTest, StallingServerTimesOutAsRetryable) {
  TestServer server({"--stall"});
  std::map<std::string, std::string> settings = {
      {"host", "127.0.0.1"},
      {"port", std::to_string(server.port())},
      {"security", "none"},
      {"timeout", "500ms"}};
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  const absl::Time start = absl::Now();
  const SendResult result = provider->Send(TestMessage());
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_TRUE(absl::StrContains(result.error(), "greeting: no answer within"))
      << result.error();
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(SmtpProviderTest, RefusedConnectionIsRetryable) {
  int port;
  {
    TestServer server({"--stall"});
    port = server.port();
  }
  std::unique_ptr<Provider> provider =
      MustCreate({{"host", "127.0.0.1"},
                  {"port", std::to_string(port)},
                  {"security", "none"},
                  {"timeout", "1s"}});
  ASSERT_NE(provider, nullptr);
  const SendResult result = provider->Send(TestMessage());
  EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
  EXPECT_TRUE(absl::StrContains(result.error(), "connect")) << result.error();
}

TEST_F(SmtpProviderTest, PoolReusesConnectionsAcrossMessages) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  auto settings = Settings(*server, "starttls");
  settings["pool_size"] = "2";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::atomic<int> sent{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        const SendResult result = provider->Send(TestMessage());
        if (result.ok()) {
          ++sent;
        } else {
          ADD_FAILURE() << result.error();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(sent.load(), kThreads * kPerThread);
  EXPECT_EQ(server->Messages(), kThreads * kPerThread);
  EXPECT_GE(server->Connections(), 1);
  EXPECT_LE(server->Connections(), 2);
  // Each reuse began with RSET.
  const std::string commands = server->Commands();
  size_t resets = 0;
  for (size_t pos = 0; (pos = commands.find("RSET", pos)) != std::string::npos;
       ++pos) {
    ++resets;
  }
  EXPECT_GE(resets, static_cast<size_t>(kThreads * kPerThread - 2));
}

TEST_F(SmtpProviderTest, DiscardsTheConnectionAfter421) {
  std::unique_ptr<TestServer> server =
      StartServer("starttls", {"--fail", "mail=421"});
  std::unique_ptr<Provider> provider =
      MustCreate(Settings(*server, "starttls"));
  ASSERT_NE(provider, nullptr);

  for (int i = 0; i < 2; ++i) {
    const SendResult result = provider->Send(TestMessage());
    EXPECT_EQ(result.kind(), SendResult::Kind::kRetryable);
    EXPECT_EQ(result.error(),
              "smtp: MAIL FROM: 421 4.1.0 sender refused by test");
  }
  EXPECT_EQ(server->Connections(), 2);
}

TEST_F(SmtpProviderTest, UsesSmtpUtf8ForANonAsciiAddress) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  std::unique_ptr<Provider> provider =
      MustCreate(Settings(*server, "starttls"));
  ASSERT_NE(provider, nullptr);

  Message message = TestMessage();
  message.to_address = "jörg@example.net";
  const SendResult result = provider->Send(message);
  ASSERT_TRUE(result.ok()) << result.error();
  const nlohmann::json envelope = server->Envelope(1);
  EXPECT_EQ(envelope["rcpt_tos"], nlohmann::json::array({"jörg@example.net"}));
  EXPECT_EQ(envelope["mail_options"][0], "SMTPUTF8") << envelope.dump();
}

TEST_F(SmtpProviderTest, RefusesANonAsciiAddressWithoutSmtpUtf8) {
  std::unique_ptr<TestServer> server =
      StartServer("starttls", {"--no-smtputf8"});
  std::unique_ptr<Provider> provider =
      MustCreate(Settings(*server, "starttls"));
  ASSERT_NE(provider, nullptr);

  Message message = TestMessage();
  message.to_address = "jörg@example.net";
  const SendResult result = provider->Send(message);
  EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent);
  EXPECT_TRUE(absl::StrContains(result.error(), "needs SMTPUTF8"))
      << result.error();
  EXPECT_FALSE(absl::StrContains(server->Commands(), "MAIL"));
}

TEST_F(SmtpProviderTest, SignsWithDkimWhenConfigured) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  const std::string key = server->dir() + "/dkim.pem";
  ASSERT_EQ(std::system(absl::StrCat("openssl genpkey -algorithm ed25519 "
                                     "-out ",
                                     key, " 2>/dev/null")
                            .c_str()),
            0);
  auto settings = Settings(*server, "starttls");
  settings["dkim_domain"] = "example.com";
  settings["dkim_selector"] = "s1";
  settings["dkim_key_file"] = key;
  settings["from_domain"] = "example.com";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  EXPECT_EQ(provider->IdentityDomains(),
            std::vector<std::string>{"example.com"});
  const std::optional<DkimPublicKey> published = provider->DkimKey();
  ASSERT_TRUE(published.has_value());
  EXPECT_EQ(published->domain, "example.com");
  EXPECT_EQ(published->selector, "s1");
  EXPECT_EQ(published->type, "ed25519");
  EXPECT_EQ(published->key.size(), 32u);
  ExpectDelivered(*server, provider->Send(TestMessage()));
  const nlohmann::json mail = ParseWithPython(server->MessagePath(1));
  ASSERT_FALSE(mail["names"].empty());
  EXPECT_EQ(mail["names"][0], "dkim-signature") << mail.dump();
}

TEST_F(SmtpProviderTest, IdleConnectionsAreClosed) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  auto settings = Settings(*server, "starttls");
  settings["idle_timeout"] = "200ms";
  std::unique_ptr<Provider> provider = MustCreate(settings);
  ASSERT_NE(provider, nullptr);

  ASSERT_TRUE(provider->Send(TestMessage()).ok());
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_TRUE(absl::StrContains(server->Commands(), "QUIT"));
  ASSERT_TRUE(provider->Send(TestMessage()).ok());
  EXPECT_EQ(server->Connections(), 2);
}

TEST_F(SmtpProviderTest, LineBreaksNeverReachTheServer) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  std::unique_ptr<Provider> provider =
      MustCreate(Settings(*server, "starttls"));
  ASSERT_NE(provider, nullptr);

  Message to = TestMessage();
  to.to_address = "ada@example.net>\r\nRCPT TO:<evil@example.org";
  Message name = TestMessage();
  name.from_name = "Zoë\r\nBcc: evil@example.org";
  Message subject = TestMessage();
  subject.subject = "Hi\r\nBcc: evil@example.org";
  Message lf = TestMessage();
  lf.subject = "Hi\nBcc: evil@example.org";
  for (const Message& message : {to, name, subject, lf}) {
    const SendResult result = provider->Send(message);
    EXPECT_EQ(result.kind(), SendResult::Kind::kPermanent) << result.error();
  }
  EXPECT_EQ(server->Messages(), 0);
  EXPECT_FALSE(absl::StrContains(server->Commands(), "evil"))
      << server->Commands();

  // The connection stays good for the next, clean message.
  ASSERT_TRUE(provider->Send(TestMessage()).ok());
  EXPECT_EQ(server->Messages(), 1);
}

TEST_F(SmtpProviderTest, TransportDotStuffsRawData) {
  std::unique_ptr<TestServer> server = StartServer("starttls");
  std::shared_ptr<SSL_CTX> tls = *MakeSmtpTlsContext(Cert("ca.pem"), true);
  SmtpConnectionOptions options;
  options.host = "127.0.0.1";
  options.port = server->port();
  options.server_name = "localhost";
  options.timeout = absl::Seconds(5);
  options.credentials.username = kUser;
  options.credentials.password = kPassword;
  absl::StatusOr<std::unique_ptr<SmtpConnection>> connection =
      SmtpConnection::Open(options, tls);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_TRUE((*connection)->tls());

  const std::string data =
      "Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend.\r\n";
  absl::StatusOr<SmtpReply> reply =
      (*connection)->Send("a@example.com", "b@example.net", data, false);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->code, 250);
  EXPECT_TRUE(absl::StrContains(reply->Summary(), "queued as"))
      << reply->Summary();
  EXPECT_EQ(ReadFile(server->MessagePath(1)), data);

  ASSERT_TRUE((*connection)->Reset().ok());
  (*connection)->Quit();
  EXPECT_FALSE((*connection)->usable());
}

TEST_F(SmtpProviderTest, SpfIncludesComeFromTheSpfIncludeSetting) {
  std::unique_ptr<Provider> provider = MustCreate({{"host", "127.0.0.1"}});
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->SpfIncludes(), std::nullopt)
      << "without spf_include the relay's hosts are unknown";
  EXPECT_EQ(provider->DkimKey(), std::nullopt);

  provider = MustCreate(
      {{"host", "127.0.0.1"}, {"spf_include", "_SPF.relay.test, b.test"}});
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->SpfIncludes(),
            (std::vector<std::string>{"_spf.relay.test", "b.test"}));
}

TEST_F(SmtpProviderTest, FactoryRejectsBadSettings) {
  const std::map<std::string, std::string> base = {{"host", "127.0.0.1"}};
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      cases = {
          {{}, "providers.smtp.host: required"},
          {{{"security", "ssl"}}, "providers.smtp.security"},
          {{{"port", "0"}}, "providers.smtp.port"},
          {{{"username", "u"}}, "providers.smtp.password"},
          {{{"username", "u"}, {"password", "p"}, {"password_env", "X"}},
           "set only one of password"},
          {{{"username", "u"}, {"password_env", "AUTHCODE_NO_SUCH_VAR"}},
           "providers.smtp.password_env"},
          {{{"username", "u"}, {"auth", "xoauth2"}, {"password", "p"}},
           "providers.smtp.oauth_token"},
          {{{"timeout", "soon"}}, "providers.smtp.timeout"},
          {{{"pool_size", "0"}}, "providers.smtp.pool_size"},
          {{{"ca_file", "/nonexistent/ca.pem"}}, "providers.smtp.ca_file"},
          {{{"dkim_domain", "example.com"}}, "providers.smtp.dkim_domain"},
          {{{"helo", "a b"}}, "providers.smtp.helo"},
          {{{"spf_include", "include:_spf.relay.test"}},
           "providers.smtp.spf_include"},
          {{{"spf_include", "a.test,,b.test"}}, "providers.smtp.spf_include"},
          {{{"colour", "blue"}}, "providers.smtp.colour: unknown setting"},
      };
  for (const auto& [extra, expected] : cases) {
    std::map<std::string, std::string> values = extra;
    if (expected.find("host") == std::string::npos) {
      values.insert(base.begin(), base.end());
    }
    absl::StatusOr<std::unique_ptr<Provider>> provider = Create(values);
    ASSERT_FALSE(provider.ok()) << expected;
    EXPECT_EQ(provider.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(provider.status().message(), expected))
        << provider.status();
    EXPECT_FALSE(absl::StrContains(provider.status().message(), "\"p\""));
  }
}

}  // namespace
}  // namespace authcode::providers
