#!/usr/bin/env bash
# Installs what authcode needs, builds everything with warnings as errors,
# checks formatting, runs each libFuzzer target for a bounded time
# (AUTHCODE_FUZZ_SECONDS, default 15; 0 skips them), and runs the whole
# test suite with CTest against a throwaway PostgreSQL cluster (fsync off:
# it is thrown away anyway), or against AUTHCODE_TEST_DATABASE_URL when
# that is set. Extra arguments go to ctest (e.g. -R service_test).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${AUTHCODE_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"

cd "$root"
git ls-files -co --exclude-standard -- '*.cc' '*.h' '*.proto' |
  xargs clang-format --dry-run --Werror

cmake -S "$root" -B "$build" -G Ninja -DAUTHCODE_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

fuzz_seconds=${AUTHCODE_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ]; then
  "$root/scripts/fuzz.sh" "$fuzz_seconds"
fi

export PG_TMP_FAST=1
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "$@"
