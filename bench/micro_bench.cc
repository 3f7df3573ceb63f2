// The CPU cost of one IssueCode/VerifyCode outside the database: checking
// the request, drawing a code, hashing it, sealing the payload, and (in
// the worker) opening it and composing the mail.
#include <benchmark/benchmark.h>

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

}  // namespace
}  // namespace authcode
