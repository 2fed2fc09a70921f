#!/usr/bin/env bash
# Quick start: installs what is missing, builds, starts a private Prosody on loopback (state in
# .run/) and runs the gateway in the foreground against it on http://127.0.0.1:8080.
# Ctrl-C stops both; so does the gateway exiting on its own (its exit status is this script's,
# e.g. 2 for a bad option). Extra arguments go to pubsubgw (e.g. --listen 127.0.0.1:9090).
# Callbacks on this machine (127.0.0.0/8) are allowed, for local receivers; by default a gateway
# allows none. Prosody keeps pubsub nodes in memory here: a restart of it loses them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .run/prosody/prosody.pid ] && kill -0 "$(cat .run/prosody/prosody.pid)" 2>/dev/null; then
    echo "run-local.sh is already running in this checkout (Prosody pid" \
        "$(cat .run/prosody/prosody.pid)); stop it first, or use another checkout" >&2
    exit 1
fi
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target pubsubgw
args=(--jid gw@localhost --tls off --service pubsub.localhost --data-dir .run/data
      --callback-allow 127.0.0.0/8)
# A bad option is reported (exit 2) before anything is started.
PUBSUBGW_XMPP_PASSWORD=gw build/pubsubgw "${args[@]}" --xmpp-server 127.0.0.1:5222 "$@" \
    --check-config >/dev/null || exit $?
mkdir -p .run
port=$(scripts/prosody.sh start .run/prosody "${PROSODY_PORT:-0}")
gw=""
cleanup() {
    if [ -n "$gw" ]; then
        kill -TERM "$gw" 2>/dev/null || true
        wait "$gw" 2>/dev/null || true
    fi
    scripts/prosody.sh stop .run/prosody || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "Prosody listening on 127.0.0.1:$port (accounts gw, alice, bob; password = name)" >&2
echo "Console: http://127.0.0.1:8080/ui/ (unless --listen says otherwise)" >&2
PUBSUBGW_XMPP_PASSWORD=gw build/pubsubgw "${args[@]}" --xmpp-server "127.0.0.1:$port" "$@" &
gw=$!
rc=0
wait "$gw" || rc=$?
gw=""
exit "$rc"
