// The codes the load tool has learned from delivered mail: at most one per
// recipient (the newest), for VerifyCode calls to guess with.
//
// A VerifyCode call takes a pair out for as long as it is in flight, so no
// two calls guess on one code at a time, and puts it back only while the
// code can still be guessed. Recipients are numbers: the tool mails
// "u<N>@<domain>".
//
// Thread safety: every member may be called from any thread.
#ifndef AUTHCODE_BENCH_LOAD_CODE_POOL_H_
#define AUTHCODE_BENCH_LOAD_CODE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"

namespace authcode::bench {

struct CodePair {
  uint32_t recipient = 0;
  std::string code;
};

class CodePool {
 public:
  // Stores `code` as `recipient`'s live code, replacing an older one.
  void Put(uint32_t recipient, std::string code);

  // Removes and returns a random pair; nullopt when the pool is empty.
  std::optional<CodePair> Take(std::mt19937_64& rng);

  // Puts back a pair from Take(), unless a newer code for its recipient
  // arrived meanwhile.
  void Return(CodePair pair);

  size_t size() const;

  // One "recipient code" line per pair. A missing file loads nothing.
  absl::Status Load(const std::string& path);
  absl::Status Save(const std::string& path) const;

 private:
  void Insert(CodePair pair);  // Needs mu_; `pair.recipient` is absent.

  mutable std::mutex mu_;
  std::vector<CodePair> pairs_;
  std::unordered_map<uint32_t, size_t> position_;  // Index into pairs_.
};

}  // namespace authcode::bench

#endif  // AUTHCODE_BENCH_LOAD_CODE_POOL_H_
