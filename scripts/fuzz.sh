#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer and UBSan on)
# and runs each for a bounded time from its checked-in seed corpus.
#
#   scripts/fuzz.sh [SECONDS]   seconds per target (default 20)
#
# A crash fails the script and leaves the crashing input in the build
# folder (build-fuzz/crash-*).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${AUTHCODE_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-20}

"$root/scripts/install-deps.sh"
CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DAUTHCODE_FUZZ=ON \
  -DAUTHCODE_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

for corpus in "$root"/tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  target="$build/tests/fuzz/${name}_fuzz"
  # Run in a scratch copy, so new inputs the fuzzer finds stay out of git.
  work=$(mktemp -d)
  cp -r "$corpus". "$work/"
  echo "fuzz: $name for ${seconds}s" >&2
  (cd "$build" && "$target" -max_total_time="$seconds" -max_len=4096 \
    -print_final_stats=1 "$work") 2>&1 | tail -n 12
  rm -rf "$work"
done
