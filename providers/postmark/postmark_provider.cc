#include "providers/postmark/postmark_provider.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "providers/http/http_response.h"
#include "providers/message/mime.h"
#include "server/log.h"
#include "server/status_macros.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "postmark";
constexpr char kDefaultEndpoint[] = "https://api.postmarkapp.com";
constexpr char kDeliveryIdKey[] = "authcode_delivery_id";
// The token with which Postmark checks a mail and delivers none.
constexpr char kTestToken[] = "POSTMARK_API_TEST";
constexpr size_t kMaxTagLength = 1000;

bool IsStreamId(absl::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_';
  });
}

bool IsPlainText(absl::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
  });
}

std::string ReadMessageId(const http::HttpResponse& response) {
  const nlohmann::json body =
      nlohmann::json::parse(response.body, nullptr, false);
  const auto id = body.find("MessageID");
  return id != body.end() && id->is_string() ? id->get<std::string>() : "";
}

absl::StatusOr<std::unique_ptr<Provider>> CreatePostmarkProvider(
    const ProviderSettings& settings) {
  ASSIGN_OR_RETURN(PostmarkProviderConfig config,
                   ParsePostmarkConfig(settings));
  log::Info(
      "provider.postmark_ready",
      {{"section", settings.section()},
       {"endpoint", config.http.base_url},
       {"message_stream", config.message_stream},
       {"test_token", config.server_token == kTestToken ? "true" : "false"}});
  return std::make_unique<PostmarkProvider>(std::move(config));
}

}  // namespace

absl::StatusOr<PostmarkProviderConfig> ParsePostmarkConfig(
    const ProviderSettings& settings) {
  std::set<std::string> valid = http::HttpSettings::Keys();
  valid.insert({"server_token", "server_token_file", "server_token_env",
                "message_stream", "tag"});
  RETURN_IF_ERROR(settings.CheckKeys(valid));

  PostmarkProviderConfig config;
  ASSIGN_OR_RETURN(config.server_token, settings.GetSecret("server_token"));
  if (config.server_token.empty()) {
    return settings.Error("server_token",
                          "required: set server_token, server_token_file or "
                          "server_token_env");
  }
  config.message_stream =
      settings.GetString("message_stream", config.message_stream);
  if (!IsStreamId(config.message_stream)) {
    return settings.Error("message_stream",
                          "must be a stream id: ASCII letters, digits, '-' "
                          "and '_'");
  }
  config.tag = settings.GetString("tag", "");
  if (config.tag.size() > kMaxTagLength || !IsPlainText(config.tag)) {
    return settings.Error(
        "tag", absl::StrCat("must be at most ", kMaxTagLength,
                            " characters, without control characters"));
  }
  ASSIGN_OR_RETURN(config.http,
                   http::HttpSettings::Parse(settings, kDefaultEndpoint));
  return config;
}

PostmarkProvider::PostmarkProvider(PostmarkProviderConfig config)
    : config_(std::move(config)), client_(config_.http) {}

absl::StatusOr<std::string> PostmarkProvider::RequestBody(
    const Message& message) const {
  RETURN_IF_ERROR(CheckMessage(message));

  nlohmann::json body = {
      {"From", FormatMailbox(message.from_name, message.from_address)},
      {"To", message.to_address},
      {"Subject", message.subject},
      {"TextBody", message.text},
      {"HtmlBody", message.html},
      {"MessageStream", config_.message_stream}};
  if (!message.headers.empty()) {
    nlohmann::json& headers = body["Headers"] = nlohmann::json::array();
    for (const auto& [name, value] : message.headers) {
      headers.push_back(nlohmann::json{{"Name", name}, {"Value", value}});
    }
  }
  if (!config_.tag.empty()) body["Tag"] = config_.tag;
  if (!message.delivery_id.empty()) {
    body["Metadata"] = {{kDeliveryIdKey, message.delivery_id}};
  }
  return body.dump();
}

SendResult PostmarkProvider::Send(const Message& message) {
  absl::StatusOr<std::string> body = RequestBody(message);
  if (!body.ok()) {
    return SendResult::Permanent(absl::StrCat(
        kName, ": ", body.status().message(), "; nothing was sent"));
  }
  http::HttpRequest request;
  request.url = absl::StrCat(config_.http.base_url, "/email");
  request.headers = {{"X-Postmark-Server-Token", config_.server_token},
                     {"Accept", "application/json"},
                     {"Content-Type", "application/json"}};
  request.body = *std::move(body);
  return http::ToSendResult(kName, client_.Send(request), ReadMessageId,
                            {config_.server_token});
}

void RegisterPostmarkProvider(ProviderRegistry& registry) {
  registry.Register(kName, CreatePostmarkProvider);
}

}  // namespace authcode::providers
