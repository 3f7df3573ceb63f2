#!/usr/bin/env bash
# The load benchmark, unattended: installs and builds what it needs, starts
# a throwaway PostgreSQL with fsync on, and on it measures
#
#   1. the raw-SQL reference (pgbench, bench/load/reference_*.sql): issue,
#      then verify, each with LOAD_CONCURRENCY clients;
#   2. the service (build/server/authcode, mail through a postmark provider
#      pointed at the load tool's sink): IssueCode, then VerifyCode, with
#      build/bench/authcode_load at the same concurrency;
#   3. the same two after LOAD_HISTORY_ROWS historical rows (expired codes
#      and sent delivery jobs, half each) went into the service's tables;
#   4. a long mixed run, until the server has answered LOAD_LONG_REQUESTS
#      calls in all or LOAD_TIME_BUDGET is spent; its VmRSS then is
#      compared with that at its LOAD_RSS_FIRST-th call (read in whichever
#      run made that call);
#
# then writes a markdown results table to stdout and to results.md in its
# scratch folder (kept; the cluster and the big logs are removed). What
# the figures mean and the latest results: bench/README.md.
#
# Settings (environment; defaults in brackets):
#   LOAD_SECONDS [20]      measured seconds of each issue and verify run
#   LOAD_WARMUP [2]        unmeasured seconds before each
#   LOAD_CONCURRENCY [64]  calls in flight / pgbench clients
#   LOAD_RECIPIENTS [1000000]
#   LOAD_RIGHT_PERCENT [50] verify calls that send the right code
#   LOAD_ISSUE_SHARE [0.35] issue calls in the long mixed run (a third
#                          issues as many codes as right guesses use up)
#   LOAD_HISTORY_ROWS [10000000]
#   LOAD_LONG_REQUESTS [1000000]  LOAD_RSS_FIRST [100000]
#   LOAD_TIME_BUDGET [840] seconds for everything after the build: the
#                          long run stops when they are up, even if the
#                          server has not answered LOAD_LONG_REQUESTS
#                          calls by then (the table says how many)
#   LOAD_LOG_LEVEL [info]  the server's log.level (info is the default)
#   LOAD_POOL_SIZE, LOAD_WORKERS  database.pool_size, delivery.workers
#                          (the server's defaults when unset)
#   LOAD_QUICK=1           a check that every stage works, in about two
#                          minutes: short runs, few rows, few requests
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${AUTHCODE_BUILD_DIR:-$root/build}
pgbin=/usr/lib/postgresql/15/bin

if [ "${LOAD_QUICK:-0}" = 1 ]; then
  : "${LOAD_SECONDS:=5}" "${LOAD_WARMUP:=1}" "${LOAD_HISTORY_ROWS:=200000}"
  : "${LOAD_LONG_REQUESTS:=60000}" "${LOAD_RSS_FIRST:=20000}"
fi
seconds=${LOAD_SECONDS:-20}
warmup=${LOAD_WARMUP:-2}
concurrency=${LOAD_CONCURRENCY:-64}
recipients=${LOAD_RECIPIENTS:-1000000}
right_percent=${LOAD_RIGHT_PERCENT:-50}
issue_share=${LOAD_ISSUE_SHARE:-0.35}
history_rows=${LOAD_HISTORY_ROWS:-10000000}
long_requests=${LOAD_LONG_REQUESTS:-1000000}
rss_first=${LOAD_RSS_FIRST:-100000}
log_level=${LOAD_LOG_LEVEL:-info}
time_budget=${LOAD_TIME_BUDGET:-840}

say() { echo "load.sh $(date -u +%H:%M:%S): $*" >&2; }

script_started=$(date +%s)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target authcode authcode_load

scratch=$(mktemp -d /tmp/authcode-load.XXXXXX)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -KILL "$server_pid" 2>/dev/null; then
      echo "the server did not stop within 30 s of SIGTERM" |
        tee -a "$scratch/failures"
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() {
  stop_server
  "$root/scripts/pg-tmp.sh" stop "$scratch/pg" || true
  rm -f "$scratch"/server.log "$scratch"/pool "$scratch"/pgbench-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "load.sh: no free port found" >&2
  return 1
}

# --- The database: a fresh cluster that pays for every commit. ---
started=$(date +%s)
unset PG_TMP_FAST AUTHCODE_TEST_DATABASE_URL
cluster_url=$("$root/scripts/pg-tmp.sh" start "$scratch/pg")
db_url=${cluster_url%/postgres}/authcode_load
psql -q -v ON_ERROR_STOP=1 "$cluster_url" -c "CREATE DATABASE authcode_load"
sql() {
  PGOPTIONS="-c client_min_messages=warning" \
    psql -q -At -v ON_ERROR_STOP=1 "$db_url" "$@"
}
sql -c "SHOW server_version" >"$scratch/postgres-version"
git -C "$root" rev-parse --short HEAD >"$scratch/commit" 2>/dev/null ||
  echo unknown >"$scratch/commit"
say "PostgreSQL $(cat "$scratch/postgres-version")," \
  "fsync $(sql -c 'SHOW fsync')"

# --- 1. The reference. ---
run_pgbench() {  # NAME SCRIPT [pgbench options]
  local name=$1 script=$2
  shift 2
  say "reference $name: pgbench, $concurrency clients, $((warmup + seconds)) s"
  sql -c CHECKPOINT
  "$pgbin/pgbench" -n -M prepared -c "$concurrency" -j 2 \
    -T $((warmup + seconds)) -D recipients="$recipients" "$@" \
    -f "$root/bench/load/$script" -l --log-prefix="$scratch/pgbench-$name" \
    "$db_url" >"$scratch/reference-$name.out" 2>&1 ||
    echo "reference $name: pgbench exited $?" | tee -a "$scratch/failures"
}
say "reference tables, $recipients live codes"
sql -v recipients="$recipients" -f "$root/bench/load/reference_schema.sql"
run_pgbench issue reference_issue.sql -D issue_limit=1000000
run_pgbench verify reference_verify.sql -D right_percent="$right_percent"
# Gone before the service runs, so that its cache is not the reference's.
sql -c "DROP SCHEMA ref CASCADE"

# --- 2. The service. ---
sink_port=$(free_port)
grpc_port=$(free_port)
{
  echo "# Written by scripts/load.sh: the defaults, except limits that no"
  echo "# caller of the benchmark reaches, codes that outlive the run, mail"
  echo "# sent to the load tool's sink, and expired rows kept for a week:"
  echo "# the historical rows stay (otherwise the clean-up would spend the"
  echo "# runs deleting all of them, which no steady state does)."
  if [ -n "${LOAD_POOL_SIZE:-}" ]; then
    printf '[database]\npool_size = %s\n' "$LOAD_POOL_SIZE"
  fi
  printf '[codes]\nttl = "1h"\n'
  printf '[limits]\nissue = [{ window = "1s", limit = 1000000 }]\n'
  printf 'max_failures = 100000\n'
  printf '[delivery]\nchain = ["sink"]\n'
  if [ -n "${LOAD_WORKERS:-}" ]; then
    printf 'workers = %s\n' "$LOAD_WORKERS"
  fi
  printf '[providers.sink]\ntype = "postmark"\nserver_token = "load"\n'
  printf 'endpoint = "http://127.0.0.1:%s"\n' "$sink_port"
  printf '[cleanup]\nkeep_expired = "168h"\n'
  printf '[log]\nlevel = "%s"\n' "$log_level"
} >"$scratch/authcode.toml"

key() { printf '%s:%s' "$1" "$(head -c 32 /dev/urandom | base64 -w0)"; }
say "starting the server on 127.0.0.1:$grpc_port, sink on $sink_port"
# A clean environment, as the tests run it: no proxy settings that could
# send the sink's traffic elsewhere.
env -i PATH=/usr/bin:/bin AUTHCODE_DATABASE_URL="$db_url" \
  AUTHCODE_HASHING_KEYS="$(key h1)" AUTHCODE_OUTBOX_KEYS="$(key o1)" \
  AUTHCODE_LISTEN="127.0.0.1:$grpc_port" \
  "$build/server/authcode" --config "$scratch/authcode.toml" \
  >"$scratch/server.out" 2>"$scratch/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$scratch/server.log" >&2
    echo "load.sh: the server did not start" >&2
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null; then break; fi
  sleep 0.1
done

tables() { /usr/bin/python3 "$root/bench/load/results_table.py" "$@"; }

run_load() {  # NAME [authcode_load options]
  local name=$1 rss_at
  shift
  # VmRSS at the server's LOAD_RSS_FIRST-th call, in whichever run
  # reaches it.
  rss_at=$(tables --rss-at "$scratch" "$rss_first")
  if [ "$name" != long ] && [ -n "$rss_at" ]; then
    set -- "$@" --rss-at "$rss_at"
  fi
  say "service $name: authcode_load $*"
  # Every measured run, the reference's too, starts from a checkpoint, so
  # that none pays for the writes of the one before.
  case "$name" in *-prefill) ;; *) sql -c CHECKPOINT ;; esac
  "$build/bench/authcode_load" --target "127.0.0.1:$grpc_port" \
    --sink-port "$sink_port" --pool-file "$scratch/pool" \
    --server-pid "$server_pid" --concurrency "$concurrency" \
    --recipients "$recipients" \
    --right-share "$(awk "BEGIN { print $right_percent / 100 }")" \
    --json "$scratch/$name.json" "$@" | tee "$scratch/$name.txt" ||
    echo "service $name: authcode_load exited $?" | tee -a "$scratch/failures"
  sql -c "SELECT count(*) FROM delivery_jobs
          WHERE state IN ('queued', 'sending')" >"$scratch/$name.outbox"
}

# Codes a verify run needs known when it starts (results_table.py says
# how many): those the issue runs did not provide are issued first, in a
# run of their own.
prefill() {  # NAME
  run_load "$1" --mode verify --prefill-only --min-pool "$(tables \
    --verify-pool "$scratch" "$warmup" "$seconds" "$right_percent" \
    "$concurrency")"
}

run_load issue --mode issue --seconds "$seconds" --warmup "$warmup"
prefill verify-prefill
run_load verify --mode verify --seconds "$seconds" --warmup "$warmup"

# --- 3. History. ---
say "history: $history_rows rows (expired codes, sent jobs)"
history_started=$(date +%s)
half=$((history_rows / 2))
# Random ids, inserted in their order so that each index is built from
# the left; the recipients are made from the ids, so they interleave with
# the load's in the primary key as real ones would. All expired 1-3 days
# ago, every job sent.
sql -v rows="$half" <<'SQL' &
INSERT INTO codes (tenant, purpose, recipient, id, key_id, code_hash,
                   attempts_left, created_at, expires_at)
SELECT 'default', 'login',
       'u' || replace(u::text, '-', '') || '@history.example', u, 'h0',
       sha256(uuid_send(u)), 0, t - interval '10 minutes', t
FROM (SELECT u, now() - interval '3 days' +
                row_number() OVER (ORDER BY u) * interval '20 ms' AS t
      FROM (SELECT gen_random_uuid() AS u
            FROM generate_series(1, :rows)) AS g) AS s
ORDER BY u;
SQL
codes_pid=$!
sql -v rows="$half" <<'SQL' &
INSERT INTO delivery_jobs (code_id, tenant, purpose, state, attempts,
                           max_attempts, next_attempt_at, expires_at,
                           provider, provider_message_id, created_at,
                           updated_at)
SELECT u, 'default', 'login', 'sent', 1, 5, t, t + interval '10 minutes',
       'sink', 'history-' || n, t, t + interval '1 second'
FROM (SELECT u, n, now() - interval '3 days' + n * interval '20 ms' AS t
      FROM (SELECT u, row_number() OVER (ORDER BY u) AS n
            FROM (SELECT gen_random_uuid() AS u
                  FROM generate_series(1, :rows)) AS g) AS r) AS s
ORDER BY u;
SQL
jobs_pid=$!
# Not a bare `wait`: the server is a child of this shell too.
wait "$codes_pid"
wait "$jobs_pid"
# What a database that grew over months would have had done to it by
# autovacuum: otherwise that work lands in the measured runs.
sql -c "VACUUM (FREEZE, ANALYZE) codes" &
codes_pid=$!
sql -c "VACUUM (FREEZE, ANALYZE) delivery_jobs" &
jobs_pid=$!
wait "$codes_pid"
wait "$jobs_pid"
sql -F ' ' -c "SELECT (SELECT count(*) FROM codes),
                      (SELECT count(*) FROM delivery_jobs),
                      pg_size_pretty(pg_database_size(current_database())),
                      $(($(date +%s) - history_started))" >"$scratch/history"
say "history: $(cat "$scratch/history") (codes, jobs, size, seconds)"

run_load issue-history --mode issue --seconds "$seconds" --warmup "$warmup"
prefill verify-history-prefill
run_load verify-history --mode verify --seconds "$seconds" \
  --warmup "$warmup"

# --- 4. The long run. ---
read -r long_calls long_rss_at < <(tables --long-run "$scratch" \
  "$rss_first" "$long_requests")
# What is left of the budget, less what stopping and the table take.
long_limit=$((time_budget - ($(date +%s) - started) - 30))
if [ "$long_limit" -lt 30 ]; then long_limit=30; fi
run_load long --mode mixed --issue-share "$issue_share" --warmup 0 \
  --requests "$long_calls" --time-limit "$long_limit" \
  --rss-at "$long_rss_at"

stop_server
sql -c "SELECT state, count(*) FROM delivery_jobs GROUP BY state ORDER BY 1" \
  -F ' ' >"$scratch/outbox-final"
now=$(date +%s)
echo "$((now - script_started)) $((started - script_started))" \
  >"$scratch/elapsed"

tables --table "$scratch" \
  "$seconds" "$warmup" "$concurrency" "$recipients" "$right_percent" \
  "$history_rows" "$rss_first" "$long_requests" | tee "$scratch/results.md"
say "results: $scratch/results.md"
