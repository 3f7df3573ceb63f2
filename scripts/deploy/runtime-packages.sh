#!/usr/bin/env bash
# Prints, one per line, the Debian packages that hold the shared libraries
# the given binaries link (ldd, then dpkg -S): what the image's runtime
# stage must install. Fails naming a library no package holds.
#
#   runtime-packages.sh BINARY...
set -euo pipefail

# The package owning `lib`, asked under each name usrmerge gives it
# (/lib/x/libfoo.so.1 and /usr/lib/x/libfoo.so.1, and the file a symlink
# points at).
owner() {
  local lib=$1 real candidate
  real=$(readlink -f "$lib")
  for candidate in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" \
      "${real#/usr}"; do
    if dpkg -S "$candidate" 2>/dev/null; then return 0; fi
  done
  echo "runtime-packages: no Debian package holds $lib" >&2
  return 1
}

linked=$(ldd "$@")
if grep -q 'not found' <<<"$linked"; then
  echo "runtime-packages: a library is missing:" >&2
  grep 'not found' <<<"$linked" >&2
  exit 1
fi
awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$linked" | sort -u |
  while read -r lib; do owner "$lib"; done |
  sed 's/: .*//; s/, /\n/g' | sed 's/:.*//' | sort -u
