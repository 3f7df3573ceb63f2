#!/usr/bin/env bash
# Installs the Debian 12 packages authcode builds, runs and tests with.
# Idempotent: packages already present are left alone, and apt is not
# touched at all when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  golang-github-gogo-googleapis-dev grpc-proto
  libabsl-dev libssl-dev libcurl4-openssl-dev libpqxx-dev libidn2-dev
  libmicrohttpd-dev
  postgresql-15 postgresql-client-15
  nlohmann-json3-dev libspdlog-dev libkainjow-mustache-dev
  libtomlplusplus-dev libcli11-dev
  libc-ares-dev dnsmasq-base
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev openssl
  python3 python3-aiosmtpd python3-cryptography python3-dkim python3-jsonschema
  python3-grpcio python3-protobuf python3-yaml postgresql-client-15
  golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev
  golang-google-protobuf-dev golang-google-genproto-dev
  golang-github-golang-protobuf-1-5-dev
  nodejs
)
# Debian's nodejs ships npm as a package of its own; other builds of
# nodejs (NodeSource's) bundle it and conflict with Debian's.
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
      grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
