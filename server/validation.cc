#include "server/validation.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/address.h"

namespace authcode {
namespace {

constexpr size_t kMaxSlug = 32;
constexpr size_t kMaxLocale = 35;

// Names the caller may not set: the composer provides them.
constexpr std::array<absl::string_view, 4> kReservedValues = {
    "code", "expires_in_minutes", "recipient", "purpose"};

bool IsSlug(absl::string_view s, size_t max) {
  if (s.empty() || s.size() > max || !absl::ascii_islower(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' ||
           c == '-';
  });
}

// A short, printable rendering of untrusted text for an error message.
std::string Quote(absl::string_view s) {
  constexpr size_t kShown = 40;
  std::string shown = absl::CHexEscape(s.substr(0, kShown));
  if (s.size() > kShown) absl::StrAppend(&shown, "...");
  return absl::StrCat("\"", shown, "\"");
}

bool HasControl(absl::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// Why `s` is not acceptable free text, or "": it must be well-formed
// UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) with
// no control characters, C0 or C1, and no Unicode line or paragraph
// separator, so nothing can start a new line in a header or a log; and no
// bidirectional embedding, override or isolate control (U+202A-U+202E,
// U+2066-U+2069), which can make a subject or a body display in an order
// other than the one it has ("Trojan Source").
std::string CheckText(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      extra = 0;
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return "is not valid UTF-8";
    }
    if (i + extra >= s.size()) return "is not valid UTF-8";
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return "is not valid UTF-8";
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return "is not valid UTF-8";
    }
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
        cp == 0x2029) {
      return "may not hold control characters (CR, LF, tab, NUL, ...) or "
             "line separators";
    }
    if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
      return "may not hold bidirectional override, embedding or isolate "
             "controls (U+202A-U+202E, U+2066-U+2069)";
    }
    i += extra + 1;
  }
  return "";
}

void CheckRecipient(absl::string_view recipient,
                    std::vector<FieldViolation>& out) {
  const absl::Status parsed = ParseRecipient(recipient).status();
  if (!parsed.ok()) {
    out.push_back({"recipient", std::string(parsed.message())});
  }
}

void CheckPurpose(absl::string_view purpose, std::vector<FieldViolation>& out) {
  if (purpose.empty()) {
    out.push_back({"purpose", "required"});
  } else if (!IsSlug(purpose, kMaxSlug)) {
    out.push_back(
        {"purpose", absl::StrCat("must be 1-32 characters of a-z, 0-9, '_' "
                                 "or '-', starting with a letter; got ",
                                 Quote(purpose))});
  }
}

void CheckLocale(absl::string_view locale, std::vector<FieldViolation>& out) {
  if (locale.empty()) return;
  const auto bad = [&] {
    out.push_back({"locale", absl::StrCat("must be a language tag such as "
                                          "\"en\" or \"de-CH\"; got ",
                                          Quote(locale))});
  };
  if (locale.size() > kMaxLocale) return bad();
  std::vector<absl::string_view> parts = absl::StrSplit(locale, '-');
  const absl::string_view lang = parts.front();
  if (lang.size() < 2 || lang.size() > 3 ||
      !std::all_of(lang.begin(), lang.end(),
                   [](char c) { return absl::ascii_isalpha(c); })) {
    return bad();
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].empty() || parts[i].size() > 8 ||
        !std::all_of(parts[i].begin(), parts[i].end(),
                     [](char c) { return absl::ascii_isalnum(c); })) {
      return bad();
    }
  }
}

void CheckTemplateValues(
    const google::protobuf::Map<std::string, std::string>& values,
    std::vector<FieldViolation>& out) {
  if (values.size() > kMaxTemplateValues) {
    out.push_back(
        {"template_values", absl::StrCat("at most ", kMaxTemplateValues,
                                         " entries; got ", values.size())});
    return;
  }
  // Map order is unspecified; sort so errors come out the same every time.
  std::vector<absl::string_view> keys;
  for (const auto& [key, value] : values) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (absl::string_view key : keys) {
    if (!IsSlug(key, kMaxSlug) || key.find('-') != absl::string_view::npos) {
      out.push_back({"template_values",
                     absl::StrCat("key ", Quote(key),
                                  " must be 1-32 characters of a-z, 0-9 or "
                                  "'_', starting with a letter")});
      continue;
    }
    const std::string field = absl::StrCat("template_values.", key);
    if (std::find(kReservedValues.begin(), kReservedValues.end(), key) !=
        kReservedValues.end()) {
      out.push_back({field, "is reserved for the server"});
      continue;
    }
    const std::string& value = values.at(std::string(key));
    if (value.size() > kMaxTemplateValueBytes) {
      out.push_back({field, absl::StrCat("at most ", kMaxTemplateValueBytes,
                                         " bytes; got ", value.size())});
    } else if (std::string why = CheckText(value); !why.empty()) {
      out.push_back({field, why});
    }
  }
}

void CheckClientIp(absl::string_view ip, std::vector<FieldViolation>& out) {
  if (ip.empty()) return;
  // inet_pton stops at a NUL, so anything after one would go unchecked.
  if (HasControl(ip)) {
    out.push_back({"client_ip", "may not hold control characters"});
    return;
  }
  std::array<unsigned char, 16> buf;
  const std::string text(ip.substr(0, 64));
  if (ip.size() > 45 || (inet_pton(AF_INET, text.c_str(), buf.data()) != 1 &&
                         inet_pton(AF_INET6, text.c_str(), buf.data()) != 1)) {
    out.push_back({"client_ip", absl::StrCat("must be an IPv4 or IPv6 "
                                             "address; got ",
                                             Quote(ip))});
  }
}

void CheckCode(absl::string_view code, std::vector<FieldViolation>& out) {
  if (code.empty()) {
    out.push_back({"code", "required"});
    return;
  }
  const bool digits = std::all_of(
      code.begin(), code.end(), [](char c) { return absl::ascii_isdigit(c); });
  if (!digits || code.size() < static_cast<size_t>(kMinCodeLength) ||
      code.size() > static_cast<size_t>(kMaxCodeLength)) {
    out.push_back({"code", absl::StrCat("must be ", kMinCodeLength, " to ",
                                        kMaxCodeLength, " digits")});
  }
}

void CheckIdempotencyKey(absl::string_view key,
                         std::vector<FieldViolation>& out) {
  if (key.empty()) return;
  const bool printable = std::all_of(
      key.begin(), key.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (key.size() > kMaxIdempotencyKey || !printable) {
    out.push_back(
        {"idempotency_key", absl::StrCat("must be 1-", kMaxIdempotencyKey,
                                         " printable ASCII characters without "
                                         "spaces")});
  }
}

}  // namespace

bool IsCodeId(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    const char c = text[i];
    if (dash ? c != '-' : !(absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::vector<FieldViolation> ValidateIssueRequest(
    const v1::IssueCodeRequest& request) {
  std::vector<FieldViolation> out;
  CheckRecipient(request.recipient(), out);
  CheckPurpose(request.purpose(), out);
  CheckLocale(request.locale(), out);
  CheckTemplateValues(request.template_values(), out);
  CheckClientIp(request.client_ip(), out);
  CheckIdempotencyKey(request.idempotency_key(), out);
  return out;
}

std::vector<FieldViolation> ValidateVerifyRequest(
    const v1::VerifyCodeRequest& request) {
  std::vector<FieldViolation> out;
  CheckRecipient(request.recipient(), out);
  CheckPurpose(request.purpose(), out);
  CheckCode(request.code(), out);
  return out;
}

std::string CountedClientIp(absl::string_view ip, int ipv6_prefix) {
  if (ip.empty()) return "";
  const std::string text(ip);
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    char out[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &v4, out, sizeof(out));
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4.s_addr, &v6.s6_addr[12], 4);
    char out[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &v4, out, sizeof(out));
  }
  for (int bit = ipv6_prefix; bit < 128; ++bit) {
    v6.s6_addr[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  }
  char out[INET6_ADDRSTRLEN];
  return absl::StrCat(inet_ntop(AF_INET6, &v6, out, sizeof(out)), "/",
                      ipv6_prefix);
}

}  // namespace authcode
