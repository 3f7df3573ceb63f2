// The CPU cost of one IssueCode/VerifyCode outside the database: checking
// the request, drawing a code, hashing it, sealing the payload, and (in
// the worker) opening it, composing the mail and signing the provider's
// request.
#include <benchmark/benchmark.h>

#include <string>

#include "providers/ses/sigv4.h"
#include "server/codes.h"
#include "server/mail/composer.h"
#include "server/secretbox.h"
#include "server/service.h"
#include "server/validation.h"

namespace authcode {
namespace {

const CodeScope kScope{"default", "login", "ada@example.com"};

void BM_GenerateCode(benchmark::State& state) {
  const RandomSource random = SystemRandom();
  for (auto _ : state) {
    benchmark::DoNotOptimize(GenerateCode(6, random));
  }
}
BENCHMARK(BM_GenerateCode);

void BM_HashCode(benchmark::State& state) {
  CodeHasher hasher({{"h1", std::string(32, 'k')}});
  for (auto _ : state) {
    benchmark::DoNotOptimize(hasher.HashCurrent(kScope, "123456"));
  }
}
BENCHMARK(BM_HashCode);

void BM_ValidateIssueRequest(benchmark::State& state) {
  v1::IssueCodeRequest request;
  request.set_recipient("ada.lovelace+signup@mail.example.com");
  request.set_purpose("signup");
  request.set_locale("en-GB");
  (*request.mutable_template_values())["app_name"] = "Acme";
  for (auto _ : state) {
    benchmark::DoNotOptimize(ValidateIssueRequest(request));
  }
}
BENCHMARK(BM_ValidateIssueRequest);

void BM_SealPayload(benchmark::State& state) {
  SecretBox box({{"o1", std::string(32, 'o')}});
  const std::string payload = EncodePayload(
      {"ada@example.com", "123456", "en", {{"app_name", "Acme"}}});
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        box.Seal(payload, "c99e2c39-8d91-4021-987f-9494d9900b4a"));
  }
}
BENCHMARK(BM_SealPayload);

void BM_OpenPayload(benchmark::State& state) {
  SecretBox box({{"o1", std::string(32, 'o')}});
  const std::string aad = "c99e2c39-8d91-4021-987f-9494d9900b4a";
  const Sealed sealed =
      *box.Seal(EncodePayload({"ada@example.com", "123456", "en", {}}), aad);
  for (auto _ : state) {
    benchmark::DoNotOptimize(box.Open(sealed.key_id, sealed.data, aad));
  }
}
BENCHMARK(BM_OpenPayload);

void BM_ComposeMail(benchmark::State& state) {
  Config::Mail mail;
  auto composer = Composer::Create(mail);
  if (!composer.ok()) {
    state.SkipWithError("the built-in templates did not load");
    return;
  }
  const MailRequest request{"login",           "de-CH",
                            "ada@example.com", "123456",
                            absl::Minutes(10), {{"app_name", "Acme"}}};
  for (auto _ : state) {
    benchmark::DoNotOptimize((*composer)->Compose(request));
  }
}
BENCHMARK(BM_ComposeMail);

// One SES v2 SendEmail call as the worker signs it: temporary credentials
// (a session token of the usual length) and a JSON body of about 600
// bytes, a mail with a subject, text and HTML part.
void BM_SigV4Sign(benchmark::State& state) {
  namespace sigv4 = providers::sigv4;
  const sigv4::Credentials credentials{
      "ASIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      std::string(600, 'T')};
  sigv4::Options options;
  options.region = "eu-west-1";
  options.service = "ses";
  const std::string payload =
      R"({"FromEmailAddress":"Acme <no-reply@mail.acme.example>",)"
      R"("Destination":{"ToAddresses":["ada.lovelace@example.com"]},)"
      R"("Content":{"Simple":{"Subject":{"Data":"Your Acme login code",)"
      R"("Charset":"UTF-8"},"Body":{"Text":{"Data":"Your login code is )"
      R"(123456. It expires in 10 minutes. If you did not ask for it, )"
      R"(ignore this mail.","Charset":"UTF-8"},"Html":{"Data":"<p>Your )"
      R"(login code is <b>123456</b>.</p><p>It expires in 10 minutes. If )"
      R"(you did not ask for it, ignore this mail.</p>","Charset":"UTF-8")"
      R"(}}}},"ConfigurationSetName":"authcode","EmailTags":[{"Name":)"
      R"("purpose","Value":"login"},{"Name":"tenant","Value":"default"}]})";
  sigv4::Request request;
  request.method = "POST";
  request.path = "/v2/email/outbound-emails";
  request.headers = {{"Host", "email.eu-west-1.amazonaws.com"},
                     {"Content-Type", "application/json"}};
  request.payload = payload;
  const absl::Time now = absl::FromUnixSeconds(1796300000);
  for (auto _ : state) {
    benchmark::DoNotOptimize(sigv4::Sign(request, credentials, options, now));
  }
  state.SetLabel(std::to_string(payload.size()) + "-byte payload");
}
BENCHMARK(BM_SigV4Sign);

}  // namespace
}  // namespace authcode
