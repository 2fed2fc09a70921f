#!/usr/bin/env bash
# Installs the Debian packages pubsubgw needs to build, test and run, when any is missing.
# As root it runs apt-get itself; otherwise it uses sudo when available.
set -euo pipefail
packages=(build-essential cmake pkg-config libmicrohttpd-dev libstrophe-dev libjansson-dev
          libcurl4-openssl-dev libsqlite3-dev libexpat1-dev libssl-dev prosody python3 curl
          valgrind ejabberd openssl python3-jsonschema iproute2 libpq-dev postgresql haproxy)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
