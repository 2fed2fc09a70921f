#!/usr/bin/env bash
# Checks the monitoring files with Prometheus' own validator (promtool, Debian's prometheus
# package): the alert rules; every query of the Grafana dashboard (as recording rules, so each
# expression is parsed); and the /metrics of a running gateway (exposition format and naming
# conventions), scraped after some traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool is needed (apt-get install prometheus)" >&2; exit 1; }
work=$(mktemp -d)
trap 'scripts/prosody.sh stop "$work/prosody" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
echo "== alert rules"
promtool check rules contrib/prometheus/pubsubgw.rules.yml
echo "== dashboard queries"
python3 - "$work/dashboard.rules.yml" <<'PY'
import json, sys
d = json.load(open("contrib/grafana/pubsubgw-dashboard.json"))
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
assert exprs, "no queries in the dashboard"
with open(sys.argv[1], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write("      - record: dashboard:query_%d\n        expr: %s\n" % (i, json.dumps(e)))
print("%d queries" % len(exprs))
PY
promtool check rules "$work/dashboard.rules.yml"
echo "== /metrics of a running gateway"
cmake -S . -B build >/dev/null && cmake --build build --target pubsubgw >/dev/null
port=$(scripts/prosody.sh start "$work/prosody")
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PUBSUBGW_XMPP_PASSWORD=gw16 build/pubsubgw --jid gw16@localhost --xmpp-server "127.0.0.1:$port" \
    --tls off --listen "127.0.0.1:$http" --data-dir "$work/data" >"$work/gw.log" 2>&1 &
gw=$!
for _ in $(seq 1 50); do curl -sf "127.0.0.1:$http/v1/health" >/dev/null && break; sleep 0.1; done
curl -s -X POST "127.0.0.1:$http/v1/nodes" -H 'Content-Type: application/json' -d '{"node":"obs"}' >/dev/null
curl -s -X POST "127.0.0.1:$http/v1/nodes/obs/items" -H 'Content-Type: application/json' -d '{}' >/dev/null
curl -s "127.0.0.1:$http/v1/nodes/nothere" >/dev/null
curl -s "127.0.0.1:$http/metrics" >"$work/metrics.txt"
kill "$gw"
wait "$gw" || true
promtool check metrics <"$work/metrics.txt"
echo "metrics: $(grep -c '^pubsubgw_' "$work/metrics.txt") samples pass promtool check metrics"
