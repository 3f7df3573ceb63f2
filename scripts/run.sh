#!/usr/bin/env bash
# Installs what authcode needs, builds it and runs the server.
#
#   scripts/run.sh                 embedded defaults: a throwaway local
#                                  PostgreSQL, fresh random keys, the
#                                  console provider, 127.0.0.1:50051
#   scripts/run.sh --config FILE   your config; nothing is started for it
#
# With no --config, AUTHCODE_DATABASE_URL, AUTHCODE_HASHING_KEYS and
# AUTHCODE_OUTBOX_KEYS are used when set, and made up when not. The
# throwaway cluster and keys are removed when the server stops.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${AUTHCODE_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target authcode -j"$(nproc)"

embedded=1
for arg in "$@"; do
  case "$arg" in --config | --config=*) embedded=0 ;; esac
done

if [ "$embedded" = 1 ]; then
  scratch=$(mktemp -d /tmp/authcode-run.XXXXXX)
  cleanup() {
    if [ -n "${server_pid:-}" ]; then
      kill -TERM "$server_pid" 2>/dev/null || true
      wait "$server_pid" 2>/dev/null || true
    fi
    "$root/scripts/pg-tmp.sh" stop "$scratch/pg" || true
    rm -rf "$scratch"
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  if [ -z "${AUTHCODE_DATABASE_URL:-}" ]; then
    echo "run: starting a throwaway PostgreSQL in $scratch/pg" >&2
    AUTHCODE_DATABASE_URL=$("$root/scripts/pg-tmp.sh" start "$scratch/pg")
    export AUTHCODE_DATABASE_URL
  fi
  key() { printf '%s:%s' "$1" "$(head -c 32 /dev/urandom | base64 -w0)"; }
  if [ -z "${AUTHCODE_HASHING_KEYS:-}${AUTHCODE_HASHING_KEYS_FILE:-}" ]; then
    echo "run: made up a hashing key for this run only" >&2
    export AUTHCODE_HASHING_KEYS=$(key dev-hash)
  fi
  if [ -z "${AUTHCODE_OUTBOX_KEYS:-}${AUTHCODE_OUTBOX_KEYS_FILE:-}" ]; then
    echo "run: made up an outbox key for this run only" >&2
    export AUTHCODE_OUTBOX_KEYS=$(key dev-outbox)
  fi
  "$build/server/authcode" "$@" &
  server_pid=$!
  wait "$server_pid"
  status=$?
  server_pid=""
  exit "$status"
fi

exec "$build/server/authcode" "$@"
