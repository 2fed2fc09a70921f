#!/usr/bin/env bash
# Runs every benchmark scenario in one go and prints one table:
#   bench/run.sh            full run (publish 20,000 items, 100,000 subscriptions, ...)
#   bench/run.sh --smoke    seconds-long run with small counts: checks that it runs, not speed
# Builds in Release (build-release/), starts a private Prosody and the gateway on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
mode=${1:-}
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j "$(nproc)" --target pubsubgw pubsubgw_bench >/dev/null
work=$(mktemp -d)
cleanup() {
    [ -n "${gw_pid:-}" ] && kill -TERM "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
    scripts/prosody.sh stop "$work/prosody" || true
    rm -rf "$work"
}
trap cleanup EXIT
xport=$(scripts/prosody.sh start "$work/prosody")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PUBSUBGW_XMPP_PASSWORD=gw build-release/pubsubgw --jid gw@localhost --xmpp-server "127.0.0.1:$xport" \
    --tls off --listen "127.0.0.1:$port" --data-dir "$work/data" --callback-allow 127.0.0.0/8 \
    --max-host-connections 32 --max-connections 800 --log-level warn 2>"${BENCH_GWLOG:-$work/gateway.log}" &
gw_pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done
prosody_pid=$(cat "$work/prosody/prosody.pid")
echo "pubsubgw $(build-release/pubsubgw --version | cut -d' ' -f2), Prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null), $(nproc) cores, $(date -u +%F)"
echo
build-release/bench/pubsubgw_bench "http://127.0.0.1:$port" "$xport" "$gw_pid" "$prosody_pid" $mode
if grep -qiE "error|warn" "${BENCH_GWLOG:-$work/gateway.log}"; then
    echo; echo "gateway log:"; grep -iE "error|warn" "$work/gateway.log" | tail -n 5
fi
