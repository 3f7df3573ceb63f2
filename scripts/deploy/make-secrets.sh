#!/usr/bin/env bash
# Writes the secrets compose.yaml mounts into DIR (made if missing): a
# PostgreSQL password, the database URL that uses it, and the two key
# rings. The SMTP password is yours to add as DIR/smtp_password. Existing
# files are kept, so running it again changes nothing.
#
#   make-secrets.sh DIR
#
# DIR is made readable by its owner only; the files in it are
# world-readable so that the container's non-root user can read them
# where compose mounts them (the folder keeps other local users out).
set -euo pipefail

dir=${1:?usage: make-secrets.sh DIR}
mkdir -p "$dir"
chmod 700 "$dir"

# Writes `value` to DIR/NAME unless that file exists.
put() {
  local name=$1 value=$2
  [ -e "$dir/$name" ] && return 0
  printf '%s\n' "$value" >"$dir/$name"
  chmod 644 "$dir/$name"
}

random() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }

put postgres_password "$(random 24 | tr '+/' '-_')"
put database_url "postgresql://authcode:$(cat "$dir/postgres_password")@db:5432/authcode"
put hashing_keys "k1:$(random 32)"
put outbox_keys "k1:$(random 32)"
echo "make-secrets: secrets in $dir; add the SMTP password as $dir/smtp_password" >&2
