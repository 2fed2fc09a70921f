#!/usr/bin/env bash
# Installs the Debian packages pubsubgw needs to build, test and run, when any is missing.
# As root it runs apt-get itself; otherwise it uses sudo when available.
set -euo pipefail
packages=(build-essential cmake pkg-config libmicrohttpd-dev libstrophe-dev libjansson-dev
          libcurl4-openssl-dev libsqlite3-dev libexpat1-dev libssl-dev prosody python3 curl
          valgrind ejabberd openssl python3-jsonschema python3-feedparser iproute2 libpq-dev
          postgresql haproxy chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm drive the browser test (puppeteer-core, from npm): any installed ones will do.
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# PostgreSQL is for the tests' private clusters (scripts/postgres.sh): on a machine that has none
# yet, Debian's default cluster (a system service) is not created.
if ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q "install ok installed" &&
    [[ " ${missing[*]} " == *" postgresql "* ]]; then
    $sudo apt-get install -y -q --no-install-recommends postgresql-common
    $sudo sed -i 's/^#\? *create_main_cluster *=.*/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf
fi
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
