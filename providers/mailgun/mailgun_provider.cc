#include "providers/mailgun/mailgun_provider.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "providers/http/http_response.h"
#include "providers/message/mime.h"
#include "server/log.h"
#include "server/status_macros.h"

namespace authcode::providers {
namespace {

constexpr char kName[] = "mailgun";
constexpr char kDeliveryIdVariable[] = "v:authcode_delivery_id";
// Mailgun's limit on a tag.
constexpr size_t kMaxTagLength = 128;
constexpr size_t kMaxDomainLength = 253;
constexpr size_t kMaxLabelLength = 63;

// A DNS name of two labels or more, each of ASCII letters, digits and
// inner hyphens. The domain goes into the request's path, so nothing else
// may.
bool IsDomainName(absl::string_view name) {
  if (name.size() > kMaxDomainLength) return false;
  const std::vector<absl::string_view> labels = absl::StrSplit(name, '.');
  if (labels.size() < 2) return false;
  return std::all_of(labels.begin(), labels.end(), [](absl::string_view l) {
    return !l.empty() && l.size() <= kMaxLabelLength && l.front() != '-' &&
           l.back() != '-' && std::all_of(l.begin(), l.end(), [](char c) {
             return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                    c == '-';
           });
  });
}

bool IsTag(absl::string_view tag) {
  return tag.size() <= kMaxTagLength &&
         std::all_of(tag.begin(), tag.end(),
                     [](char c) { return c >= 0x20 && c < 0x7F; });
}

std::string DefaultEndpoint(const std::string& region) {
  return region == "eu" ? "https://api.eu.mailgun.net"
                        : "https://api.mailgun.net";
}

std::string FormEscape(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(byte) || c == '*' || c == '-' || c == '.' ||
        c == '_') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += {'%', kHex[byte >> 4], kHex[byte & 0xF]};
    }
  }
  return out;
}

std::string ReadMessageId(const http::HttpResponse& response) {
  const nlohmann::json body =
      nlohmann::json::parse(response.body, nullptr, false);
  const auto id = body.find("id");
  if (id == body.end() || !id->is_string()) return "";
  absl::string_view value = id->get_ref<const std::string&>();
  absl::ConsumePrefix(&value, "<");
  absl::ConsumeSuffix(&value, ">");
  return std::string(value);
}

absl::StatusOr<std::unique_ptr<Provider>> CreateMailgunProvider(
    const ProviderSettings& settings) {
  ASSIGN_OR_RETURN(MailgunProviderConfig config, ParseMailgunConfig(settings));
  log::Info("provider.mailgun_ready", {{"section", settings.section()},
                                       {"endpoint", config.http.base_url},
                                       {"domain", config.domain}});
  return std::make_unique<MailgunProvider>(std::move(config));
}

}  // namespace

std::string FormUrlEncode(
    const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string body;
  for (const auto& [name, value] : fields) {
    absl::StrAppend(&body, body.empty() ? "" : "&", FormEscape(name), "=",
                    FormEscape(value));
  }
  return body;
}

absl::StatusOr<MailgunProviderConfig> ParseMailgunConfig(
    const ProviderSettings& settings) {
  std::set<std::string> valid = http::HttpSettings::Keys();
  valid.insert(
      {"domain", "api_key", "api_key_file", "api_key_env", "region", "tag"});
  RETURN_IF_ERROR(settings.CheckKeys(valid));

  MailgunProviderConfig config;
  ASSIGN_OR_RETURN(config.domain, settings.GetRequiredString("domain"));
  if (!IsDomainName(config.domain)) {
    return settings.Error("domain",
                          "must be a DNS name such as \"mg.example.com\"");
  }
  absl::AsciiStrToLower(&config.domain);
  ASSIGN_OR_RETURN(config.api_key, settings.GetSecret("api_key"));
  if (config.api_key.empty()) {
    return settings.Error("api_key",
                          "required: set api_key, api_key_file or api_key_env");
  }
  const std::string region = settings.GetString("region", "us");
  if (region != "us" && region != "eu") {
    return settings.Error("region", "must be \"us\" or \"eu\"");
  }
  config.tag = settings.GetString("tag", "");
  if (!IsTag(config.tag)) {
    return settings.Error(
        "tag", absl::StrCat("must be printable ASCII, at most ", kMaxTagLength,
                            " characters"));
  }
  ASSIGN_OR_RETURN(config.http, http::HttpSettings::Parse(
                                    settings, DefaultEndpoint(region)));
  return config;
}

MailgunProvider::MailgunProvider(MailgunProviderConfig config)
    : config_(std::move(config)), client_(config_.http) {}

absl::StatusOr<std::string> MailgunProvider::RequestBody(
    const Message& message) const {
  RETURN_IF_ERROR(CheckMessage(message));

  std::vector<std::pair<std::string, std::string>> fields = {
      {"from", FormatMailbox(message.from_name, message.from_address)},
      {"to", message.to_address},
      {"subject", message.subject},
      {"text", message.text},
      {"html", message.html}};
  for (const auto& [name, value] : message.headers) {
    fields.emplace_back(absl::StrCat("h:", name), value);
  }
  if (!message.delivery_id.empty()) {
    fields.emplace_back(kDeliveryIdVariable, message.delivery_id);
  }
  if (!config_.tag.empty()) fields.emplace_back("o:tag", config_.tag);
  return FormUrlEncode(fields);
}

SendResult MailgunProvider::Send(const Message& message) {
  absl::StatusOr<std::string> body = RequestBody(message);
  if (!body.ok()) {
    return SendResult::Permanent(absl::StrCat(
        kName, ": ", body.status().message(), "; nothing was sent"));
  }
  const std::string credentials =
      absl::Base64Escape(absl::StrCat("api:", config_.api_key));
  http::HttpRequest request;
  request.url =
      absl::StrCat(config_.http.base_url, "/v3/", config_.domain, "/messages");
  request.headers = {{"Authorization", absl::StrCat("Basic ", credentials)},
                     {"Content-Type", "application/x-www-form-urlencoded"}};
  request.body = *std::move(body);
  return http::ToSendResult(kName, client_.Send(request), ReadMessageId,
                            {config_.api_key, credentials});
}

void RegisterMailgunProvider(ProviderRegistry& registry) {
  registry.Register(kName, CreateMailgunProvider);
}

}  // namespace authcode::providers
