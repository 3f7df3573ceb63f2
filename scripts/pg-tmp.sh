#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster.
#
#   pg-tmp.sh start DIR   start a cluster on a free loopback port, print its
#                         URL and write it to DIR/url
#   pg-tmp.sh stop DIR    stop that cluster and remove it and DIR
#   pg-tmp.sh pause DIR   stop the server (as a crash would), keep its data
#   pg-tmp.sh resume DIR  start it again on the same port (tests of what
#                         the service does while the database is down)
#
# The cluster lives in a fresh folder under /tmp (named in DIR/cluster),
# since the PostgreSQL user may not be able to reach DIR. It listens on
# 127.0.0.1 only and needs a password made up at start. As root, the
# PostgreSQL binaries run as the unprivileged user `postgres`, since initdb
# refuses root. PG_TMP_FAST=1 turns fsync off, for tests only. With
# AUTHCODE_TEST_DATABASE_URL set, start only records that URL and stop does
# nothing.
set -euo pipefail

cmd=${1:?usage: pg-tmp.sh start|stop DIR}
dir=${2:?usage: pg-tmp.sh start|stop DIR}
bin=/usr/lib/postgresql/15/bin

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "pg-tmp: no free port found" >&2
  return 1
}

start() {
  mkdir -p "$dir"
  if [ -n "${AUTHCODE_TEST_DATABASE_URL:-}" ]; then
    printf '%s\n' "$AUTHCODE_TEST_DATABASE_URL" >"$dir/url"
    echo "$AUTHCODE_TEST_DATABASE_URL"
    return 0
  fi
  if [ -f "$dir/cluster" ]; then stop; mkdir -p "$dir"; fi

  local home password port url
  home=$(mktemp -d /tmp/authcode-pg.XXXXXX)
  printf '%s\n' "$home" >"$dir/cluster"
  mkdir -p "$home/data" "$home/sock"
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  printf '%s\n' "$password" >"$home/pwfile"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$home"; fi
  chmod 700 "$home"

  if ! as_pg "$bin/initdb" -D "$home/data" -U authcode \
      --pwfile="$home/pwfile" --auth=scram-sha-256 -E UTF8 \
      --locale=C.UTF-8 >"$home/initdb.log" 2>&1; then
    cat "$home/initdb.log" >&2
    return 1
  fi
  rm -f "$home/pwfile"

  local options="-c listen_addresses=127.0.0.1 -k $home/sock"
  options+=" -c max_connections=300"
  if [ "${PG_TMP_FAST:-0}" = 1 ]; then
    options+=" -c fsync=off -c synchronous_commit=off"
    options+=" -c full_page_writes=off"
  fi
  for _ in 1 2 3; do
    port=$(free_port)
    if as_pg "$bin/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 \
        -o "$options -p $port" start >/dev/null; then
      printf '%s\n' "$options -p $port" >"$home/options"
      url="postgresql://authcode:${password}@127.0.0.1:${port}/postgres"
      (umask 077 && printf '%s\n' "$url" >"$dir/url")
      echo "$url"
      return 0
    fi
  done
  cat "$home/server.log" >&2
  return 1
}

stop() {
  if [ -n "${AUTHCODE_TEST_DATABASE_URL:-}" ]; then return 0; fi
  if [ -f "$dir/cluster" ]; then
    local home
    home=$(cat "$dir/cluster")
    if [ -f "$home/data/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$home/data" -m immediate -w stop >/dev/null ||
        true
    fi
    case "$home" in /tmp/authcode-pg.*) rm -rf "$home" ;; esac
  fi
  rm -rf "$dir"
}

pause() {
  local home
  home=$(cat "$dir/cluster")
  as_pg "$bin/pg_ctl" -D "$home/data" -m immediate -w stop >/dev/null
}

resume() {
  local home
  home=$(cat "$dir/cluster")
  as_pg "$bin/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 \
    -o "$(cat "$home/options")" start >/dev/null
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  pause) pause ;;
  resume) resume ;;
  *)
    echo "usage: pg-tmp.sh start|stop|pause|resume DIR" >&2
    exit 2
    ;;
esac
