#!/usr/bin/env bash
# Installs what authcode needs, builds the benchmarks and runs them: the
# micro-benchmarks, the SMTP throughput to a local server, then
# delivery_latency against a throwaway PostgreSQL
# cluster with fsync on (a benchmark of commit-bound work must pay for real
# commits). Extra arguments go to delivery_latency (e.g. --workers 4).
# Results are written down in bench/README.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${AUTHCODE_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"

cmake -S "$root" -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target micro_bench delivery_latency smtp_throughput \
  http_throughput

scratch=$(mktemp -d /tmp/authcode-bench.XXXXXX)
cleanup() {
  "$root/scripts/pg-tmp.sh" stop "$scratch/pg" || true
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Never the fast, fsync-less cluster the tests use.
unset PG_TMP_FAST AUTHCODE_TEST_DATABASE_URL
AUTHCODE_BENCH_DATABASE_URL=$("$root/scripts/pg-tmp.sh" start "$scratch/pg")
export AUTHCODE_BENCH_DATABASE_URL

"$build/bench/micro_bench"
"$build/bench/smtp_throughput"
"$build/bench/http_throughput"
"$build/bench/delivery_latency" "$@"
