#include "providers/sendgrid/sendgrid_provider.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "providers/http/http_response.h"
#include "providers/message/mime.h"
#include "server/log.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "sendgrid";
constexpr char kPath[] = "/v3/mail/send";
constexpr char kDeliveryIdArg[] = "authcode_delivery_id";
// SendGrid's own limits on a request (Mail Send API reference).
constexpr size_t kMaxCategories = 10;
constexpr size_t kMaxCategoryLength = 255;

const std::set<std::string>& ValidKeys() {
  static const auto* keys = [] {
    auto* valid = new std::set<std::string>{
        "api_key",    "api_key_file", "api_key_env", "region",
        "categories", "custom_args",  "sandbox_mode"};
    valid->insert(http::HttpSettings::Keys().begin(),
                  http::HttpSettings::Keys().end());
    return valid;
  }();
  return *keys;
}

bool HasControl(absl::string_view value) {
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> ParseCategories(
    const ProviderSettings& settings) {
  std::vector<std::string> categories;
  for (absl::string_view item : absl::StrSplit(
           settings.GetString("categories", ""), ',', absl::SkipWhitespace())) {
    const std::string category(absl::StripAsciiWhitespace(item));
    if (category.size() > kMaxCategoryLength || HasControl(category)) {
      return settings.Error(
          "categories",
          absl::StrCat("each must be at most ", kMaxCategoryLength,
                       " characters, without control characters"));
    }
    categories.push_back(category);
  }
  if (categories.size() > kMaxCategories) {
    return settings.Error("categories",
                          absl::StrCat("at most ", kMaxCategories, " allowed"));
  }
  return categories;
}

absl::StatusOr<std::map<std::string, std::string>> ParseCustomArgs(
    const ProviderSettings& settings) {
  std::map<std::string, std::string> args;
  for (absl::string_view item :
       absl::StrSplit(settings.GetString("custom_args", ""), ',',
                      absl::SkipWhitespace())) {
    const std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    const std::string key(absl::StripAsciiWhitespace(kv.first));
    const std::string value(absl::StripAsciiWhitespace(kv.second));
    if (key.empty() || key == kDeliveryIdArg || HasControl(key) ||
        HasControl(value) || item.find('=') == absl::string_view::npos) {
      return settings.Error(
          "custom_args",
          absl::StrCat("must be \"key=value,key=value\" with keys other than ",
                       kDeliveryIdArg));
    }
    args[key] = value;
  }
  return args;
}

std::string DefaultEndpoint(const std::string& region) {
  return region == "eu" ? "https://api.eu.sendgrid.com"
                        : "https://api.sendgrid.com";
}

std::string ReadMessageId(const http::HttpResponse& response) {
  return response.Header("x-message-id").value_or("");
}

}  // namespace

absl::StatusOr<SendGridProviderConfig> ParseSendGridConfig(
    const ProviderSettings& settings) {
  if (absl::Status s = settings.CheckKeys(ValidKeys()); !s.ok()) return s;
  SendGridProviderConfig config;
  absl::StatusOr<std::string> key = settings.GetSecret("api_key");
  if (!key.ok()) return key.status();
  if (key->empty()) {
    return settings.Error("api_key",
                          "required: set api_key, api_key_file or api_key_env");
  }
  config.api_key = *std::move(key);

  const std::string region = settings.GetString("region", "global");
  if (region != "global" && region != "eu") {
    return settings.Error("region", "must be \"global\" or \"eu\"");
  }
  absl::StatusOr<std::vector<std::string>> categories =
      ParseCategories(settings);
  if (!categories.ok()) return categories.status();
  config.categories = *std::move(categories);
  absl::StatusOr<std::map<std::string, std::string>> args =
      ParseCustomArgs(settings);
  if (!args.ok()) return args.status();
  config.custom_args = *std::move(args);
  absl::StatusOr<bool> sandbox = settings.GetBool("sandbox_mode", false);
  if (!sandbox.ok()) return sandbox.status();
  config.sandbox_mode = *sandbox;

  absl::StatusOr<http::HttpSettings> http =
      http::HttpSettings::Parse(settings, DefaultEndpoint(region));
  if (!http.ok()) return http.status();
  config.http = *std::move(http);
  return config;
}

SendGridProvider::SendGridProvider(SendGridProviderConfig config)
    : config_(std::move(config)), client_(config_.http) {}

absl::StatusOr<std::string> SendGridProvider::RequestBody(
    const Message& message) const {
  if (absl::Status s = CheckMessage(message); !s.ok()) return s;

  nlohmann::json from = {{"email", message.from_address}};
  if (!message.from_name.empty()) from["name"] = message.from_name;
  nlohmann::json body = {
      {"personalizations", {{{"to", {{{"email", message.to_address}}}}}}},
      {"from", std::move(from)},
      {"subject", message.subject},
      {"content",
       {{{"type", "text/plain"}, {"value", message.text}},
        {{"type", "text/html"}, {"value", message.html}}}}};
  if (!config_.categories.empty()) body["categories"] = config_.categories;

  nlohmann::json args(config_.custom_args);
  if (!message.delivery_id.empty()) args[kDeliveryIdArg] = message.delivery_id;
  // In the personalization: SendGrid's schema types the top-level
  // custom_args as a string, the personalization's as an object.
  if (!args.empty()) {
    body["personalizations"][0]["custom_args"] = std::move(args);
  }
  if (!message.headers.empty()) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [name, value] : message.headers) headers[name] = value;
    body["headers"] = std::move(headers);
  }
  if (config_.sandbox_mode) {
    body["mail_settings"] = {{"sandbox_mode", {{"enable", true}}}};
  }
  return body.dump();
}

SendResult SendGridProvider::Send(const Message& message) {
  absl::StatusOr<std::string> body = RequestBody(message);
  if (!body.ok()) {
    return SendResult::Permanent(absl::StrCat(
        kName, ": ", body.status().message(), "; nothing was sent"));
  }
  http::HttpRequest request;
  request.url = absl::StrCat(config_.http.base_url, kPath);
  request.headers = {
      {"Authorization", absl::StrCat("Bearer ", config_.api_key)},
      {"Content-Type", "application/json"}};
  request.body = *std::move(body);
  return http::ToSendResult(kName, client_.Send(request), ReadMessageId,
                            {config_.api_key});
}

void RegisterSendGridProvider(ProviderRegistry& registry) {
  registry.Register(
      kName,
      [](const ProviderSettings& settings)
          -> absl::StatusOr<std::unique_ptr<Provider>> {
        absl::StatusOr<SendGridProviderConfig> config =
            ParseSendGridConfig(settings);
        if (!config.ok()) return config.status();
        log::Info("provider.sendgrid_ready",
                  {{"section", settings.section()},
                   {"endpoint", config->http.base_url},
                   {"sandbox_mode", config->sandbox_mode ? "true" : "false"}});
        return std::make_unique<SendGridProvider>(*std::move(config));
      });
}

}  // namespace authcode::providers
