#include "bench/load/code_pool.h"

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace authcode::bench {

void CodePool::Put(uint32_t recipient, std::string code) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = position_.find(recipient);
  if (it != position_.end()) {
    pairs_[it->second].code = std::move(code);
    return;
  }
  Insert({recipient, std::move(code)});
}

std::optional<CodePair> CodePool::Take(std::mt19937_64& rng) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pairs_.empty()) return std::nullopt;

  const size_t i = rng() % pairs_.size();
  CodePair taken = std::move(pairs_[i]);
  position_.erase(taken.recipient);
  if (i + 1 != pairs_.size()) {
    pairs_[i] = std::move(pairs_.back());
    position_[pairs_[i].recipient] = i;
  }
  pairs_.pop_back();
  return taken;
}

void CodePool::Return(CodePair pair) {
  std::lock_guard<std::mutex> lock(mu_);
  if (position_.count(pair.recipient) == 0) Insert(std::move(pair));
}

size_t CodePool::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pairs_.size();
}

absl::Status CodePool::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::OkStatus();
  uint32_t recipient = 0;
  std::string code;
  while (in >> recipient >> code) Put(recipient, code);
  if (!in.eof()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pool-file ", path, ": not \"recipient code\" lines"));
  }
  return absl::OkStatus();
}

absl::Status CodePool::Save(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  std::lock_guard<std::mutex> lock(mu_);
  for (const CodePair& pair : pairs_) {
    out << pair.recipient << ' ' << pair.code << '\n';
  }
  out.flush();
  if (!out) {
    return absl::InternalError(
        absl::StrCat("--pool-file ", path, ": could not write"));
  }
  return absl::OkStatus();
}

void CodePool::Insert(CodePair pair) {
  position_[pair.recipient] = pairs_.size();
  pairs_.push_back(std::move(pair));
}

}  // namespace authcode::bench
