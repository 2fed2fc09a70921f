#!/usr/bin/env bash
# Quick start: installs what is missing, builds, starts a private Prosody on loopback (state in
# .run/) and runs the gateway in the foreground against it on http://127.0.0.1:8080.
# Ctrl-C stops both. Extra arguments go to pubsubgw (e.g. --listen 127.0.0.1:9090). Callbacks on
# this machine (127.0.0.0/8) are allowed, for local receivers; by default a gateway allows none.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target pubsubgw
mkdir -p .run
port=$(scripts/prosody.sh start .run/prosody "${PROSODY_PORT:-0}")
trap 'scripts/prosody.sh stop .run/prosody' EXIT
echo "Prosody listening on 127.0.0.1:$port (accounts gw, alice, bob; password = name)" >&2
PUBSUBGW_XMPP_PASSWORD=gw build/pubsubgw --jid gw@localhost --xmpp-server "127.0.0.1:$port" \
    --tls off --service pubsub.localhost --data-dir .run/data \
    --callback-allow 127.0.0.0/8 "$@" &
gw=$!
trap 'kill -TERM $gw 2>/dev/null; wait $gw; scripts/prosody.sh stop .run/prosody' EXIT INT TERM
wait $gw
