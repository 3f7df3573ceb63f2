#!/usr/bin/env bash
# Installs what authcode needs, checks formatting, builds everything with
# warnings as errors and with AddressSanitizer and UBSan (AUTHCODE_SANITIZE),
# runs each libFuzzer target for a bounded time (AUTHCODE_FUZZ_SECONDS,
# default 10; 0 skips them), and runs the whole test suite with CTest on
# that sanitized build, against a throwaway PostgreSQL cluster (fsync off:
# it is thrown away anyway), or against AUTHCODE_TEST_DATABASE_URL when
# that is set. Extra arguments go to ctest (e.g. -R service_test).
#
# The sanitized build is in build-sanitize/ (AUTHCODE_SANITIZE_BUILD_DIR);
# build/, the plain one that scripts/run.sh and scripts/bench.sh use, is
# left alone.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${AUTHCODE_SANITIZE_BUILD_DIR:-$root/build-sanitize}

"$root/scripts/install-deps.sh"

cd "$root"
git ls-files -co --exclude-standard -- '*.cc' '*.h' '*.proto' |
  xargs clang-format --dry-run --Werror

# -O1 with line tables only: ASan's reports keep their file:line, and the
# build, which is most of the test command's time, is much quicker than
# the default -O2 with full debug information.
cmake -S "$root" -B "$build" -G Ninja -DAUTHCODE_WERROR=ON \
  -DAUTHCODE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" >/dev/null
cmake --build "$build" -j"$(nproc)"

fuzz_seconds=${AUTHCODE_FUZZ_SECONDS:-10}
if [ "$fuzz_seconds" != 0 ]; then
  "$root/scripts/fuzz.sh" "$fuzz_seconds"
fi

# Every sanitized process the suite starts reads these: the test binaries,
# and the server and authcode-cli, which the end-to-end and client tests
# start with these passed on (tests/e2e/process.cc, tests/clients/
# harness.py), and which fail their test on any report. The first finding
# stops the process, with status 86 for ASan and UBSan (not a status the
# programs use themselves) and 23 for leaks, found at exit.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:exitcode=86:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86
export LSAN_OPTIONS=exitcode=23:suppressions=$root/tests/support/lsan.supp:print_suppressions=0
# LeakSanitizer stops the process's threads with ptrace, which some
# containers forbid; there it cannot run at all, so it is turned off with
# a warning rather than failing every test.
if "$build/server/authcode" --help 2>&1 >/dev/null |
    grep -q 'LeakSanitizer has encountered a fatal error'; then
  echo "test: LeakSanitizer cannot run here (no ptrace); leaks are not" \
    "checked" >&2
  ASAN_OPTIONS=${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}
fi

export PG_TMP_FAST=1
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "$@"
