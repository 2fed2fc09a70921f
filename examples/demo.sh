#!/usr/bin/env bash
# The classic pub/sub demo, over HTTP: a publisher posts an item every few seconds; two webhook
# subscribers (signature-checking receivers) and one Server-Sent Events client all receive it.
#
#   examples/demo.sh [ROUNDS] [INTERVAL_SECONDS]      (defaults: 5 rounds, every 2 seconds)
#
# Uses a gateway on $PUBSUBGW (default http://127.0.0.1:8080); when none answers there, it starts
# one with scripts/run-local.sh first. Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
gw=${PUBSUBGW:-http://127.0.0.1:8080}
rounds=${1:-5}
interval=${2:-2}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! curl -fs "$gw/v1/health" >/dev/null 2>&1; then
    echo "starting a local gateway (scripts/run-local.sh)" >&2
    scripts/run-local.sh >"$work/gateway.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 300); do
        curl -fs "$gw/v1/health" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fs "$gw/v1/health" >/dev/null || { cat "$work/gateway.log" >&2; exit 1; }
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
node="demo-$$"
curl -fs -X POST "$gw/v1/nodes" -H 'Content-Type: application/json' -d "{\"node\":\"$node\"}" >/dev/null

for name in alpha beta; do
    port=$(free_port)
    python3 examples/webhook_receiver.py "$port" "$secret" >"$work/$name.log" 2>&1 &
    pids+=($!)
    sleep 0.3
    curl -fs -X POST "$gw/v1/subscriptions" -H 'Content-Type: application/json' -d "{
        \"node\":\"$node\",\"callback\":\"http://127.0.0.1:$port/$name\",\"secret\":\"$secret\",\"verify\":true}" \
        >"$work/$name.sub"
    echo "webhook subscriber $name on port $port: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/$name.sub")"
done
curl -sN "$gw/v1/nodes/$node/events" >"$work/sse.log" &
pids+=($!)
sleep 0.5

for i in $(seq 1 "$rounds"); do
    answer=$(curl -fs -X POST "$gw/v1/nodes/$node/items" -H 'Content-Type: application/json' \
        -d "{\"round\":$i,\"message\":\"hello number $i\",\"sent\":\"$(date -u +%FT%TZ)\"}")
    echo "published round $i: $answer"
    sleep "$interval"
done

echo
echo "== webhook subscriber alpha received"; cat "$work/alpha.log"
echo "== webhook subscriber beta received"; cat "$work/beta.log"
echo "== event stream client received"; grep '^data:' "$work/sse.log" || true
ok=1
for f in alpha beta; do
    [ "$(grep -c '^item.published' "$work/$f.log")" -eq "$rounds" ] || ok=0
done
[ "$(grep -c '^event: item.published' "$work/sse.log")" -eq "$rounds" ] || ok=0
for f in alpha beta; do
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/$f.sub")
    curl -fs -X DELETE "$gw/v1/subscriptions/$id" >/dev/null
done
curl -fs -X DELETE "$gw/v1/nodes/$node" >/dev/null
if [ $ok = 1 ]; then echo "all three subscribers received all $rounds items"; else echo "some items are missing" >&2; exit 1; fi
