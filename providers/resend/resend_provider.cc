#include "providers/resend/resend_provider.h"

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

constexpr char kName[] = "resend";
constexpr char kDefaultEndpoint[] = "https://api.resend.com";
constexpr char kDeliveryIdTag[] = "authcode_delivery_id";
constexpr char kIdempotencyPrefix[] = "authcode-";
// Resend's limit for tag values and idempotency keys alike.
constexpr size_t kMaxLength = 256;

// The id as a tag value: characters other than ASCII letters, digits, '_'
// and '-' become '_'. Two ids may then share a value, which only blurs a
// webhook's match, never a delivery.
std::string TagValue(std::string id) {
  for (char& c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      c = '_';
    }
  }
  id.resize(std::min(id.size(), kMaxLength));
  return id;
}

// The Idempotency-Key for a delivery, or "" for none. Unlike a tag value
// the id is never altered here: two deliveries sharing a key would drop
// the second mail.
std::string IdempotencyKey(const std::string& delivery_id) {
  const std::string key = absl::StrCat(kIdempotencyPrefix, delivery_id);
  const bool printable =
      std::all_of(delivery_id.begin(), delivery_id.end(),
                  [](char c) { return c > 0x20 && c < 0x7F; });
  return !delivery_id.empty() && printable && key.size() <= kMaxLength ? key
                                                                       : "";
}

std::string ReadMessageId(const http::HttpResponse& response) {
  const nlohmann::json body =
      nlohmann::json::parse(response.body, nullptr, false);
  const auto id = body.find("id");
  return id != body.end() && id->is_string() ? id->get<std::string>() : "";
}

// Whether Resend answered that the first send with this idempotency key is
// still in progress: retrying later is safe and gets its answer.
bool IsConcurrentRequest(const absl::StatusOr<http::HttpResponse>& response) {
  if (!response.ok() || response->status != 409) return false;
  const nlohmann::json body =
      nlohmann::json::parse(response->body, nullptr, false);
  const auto name = body.find("name");
  return name != body.end() && *name == "concurrent_idempotent_requests";
}

absl::StatusOr<std::unique_ptr<Provider>> CreateResendProvider(
    const ProviderSettings& settings) {
  ASSIGN_OR_RETURN(ResendProviderConfig config, ParseResendConfig(settings));
  log::Info("provider.resend_ready", {{"section", settings.section()},
                                      {"endpoint", config.http.base_url}});
  return std::make_unique<ResendProvider>(std::move(config));
}

}  // namespace

absl::StatusOr<ResendProviderConfig> ParseResendConfig(
    const ProviderSettings& settings) {
  std::set<std::string> valid = http::HttpSettings::Keys();
  valid.insert({"api_key", "api_key_file", "api_key_env"});
  RETURN_IF_ERROR(settings.CheckKeys(valid));

  ResendProviderConfig config;
  ASSIGN_OR_RETURN(config.api_key, settings.GetSecret("api_key"));
  if (config.api_key.empty()) {
    return settings.Error("api_key",
                          "required: set api_key, api_key_file or api_key_env");
  }
  ASSIGN_OR_RETURN(config.http,
                   http::HttpSettings::Parse(settings, kDefaultEndpoint));
  return config;
}

ResendProvider::ResendProvider(ResendProviderConfig config)
    : config_(std::move(config)), client_(config_.http) {}

absl::StatusOr<std::string> ResendProvider::RequestBody(
    const Message& message) const {
  RETURN_IF_ERROR(CheckMessage(message));

  nlohmann::json body = {
      {"from", FormatMailbox(message.from_name, message.from_address)},
      {"to", nlohmann::json::array({message.to_address})},
      {"subject", message.subject},
      {"text", message.text},
      {"html", message.html}};
  if (!message.headers.empty()) {
    nlohmann::json& headers = body["headers"] = nlohmann::json::object();
    for (const auto& [name, value] : message.headers) headers[name] = value;
  }
  if (!message.delivery_id.empty()) {
    const nlohmann::json tag = {{"name", kDeliveryIdTag},
                                {"value", TagValue(message.delivery_id)}};
    body["tags"] = nlohmann::json::array({tag});
  }
  return body.dump();
}

SendResult ResendProvider::Send(const Message& message) {
  absl::StatusOr<std::string> body = RequestBody(message);
  if (!body.ok()) {
    return SendResult::Permanent(absl::StrCat(
        kName, ": ", body.status().message(), "; nothing was sent"));
  }
  http::HttpRequest request;
  request.url = absl::StrCat(config_.http.base_url, "/emails");
  request.headers = {
      {"Authorization", absl::StrCat("Bearer ", config_.api_key)},
      {"Content-Type", "application/json"}};
  if (std::string key = IdempotencyKey(message.delivery_id); !key.empty()) {
    request.headers.emplace_back("Idempotency-Key", std::move(key));
  }
  request.body = *std::move(body);

  const absl::StatusOr<http::HttpResponse> response = client_.Send(request);
  SendResult result =
      http::ToSendResult(kName, response, ReadMessageId, {config_.api_key});
  if (IsConcurrentRequest(response)) {
    return SendResult::Retryable(result.error());
  }
  return result;
}

void RegisterResendProvider(ProviderRegistry& registry) {
  registry.Register(kName, CreateResendProvider);
}

}  // namespace authcode::providers
