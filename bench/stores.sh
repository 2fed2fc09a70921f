#!/usr/bin/env bash
# The stores side by side, in one run, with the direct XMPP client as the yardstick:
#   1. one gateway on SQLite vs one on PostgreSQL: publish throughput, latency, fan-out;
#   2. 1 vs 3 replicas on PostgreSQL behind HAProxy (scripts/cluster.sh): latency, fan-out;
#   3. cost against work, for both stores: start-up time and memory at 10k, 100k and 1M
#      registered subscriptions, and at 100k pending events.
#   bench/stores.sh           full run
#   bench/stores.sh --smoke   small counts: checks that it runs and reports, not speed
# BENCH_SECTIONS="stores replicas cost" picks parts (default: all three).
# Builds in Release (build-release/); every server is private and on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
smoke=${1:-}
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j "$(nproc)" --target pubsubgw pubsubgw_bench >/dev/null
bin=$PWD/build-release/pubsubgw
drv=$PWD/build-release/bench/pubsubgw_bench
work=$(mktemp -d)
chmod 755 "$work"
gw_pid=""
cleanup() {
    [ -n "$gw_pid" ] && kill -TERM "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
    PUBSUBGW_BIN=$bin scripts/cluster.sh stop "$work/cluster" >/dev/null 2>&1 || true
    scripts/prosody.sh stop "$work/prosody" || true
    scripts/postgres.sh remove "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT
xport=$(scripts/prosody.sh start "$work/prosody")
prosody_pid=$(cat "$work/prosody/prosody.pid")
scripts/postgres.sh fresh "$work/pg" >/dev/null
pg_url=$(cat "$work/pg/url")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a gateway on store $1 against XMPP port $2 (unreachable for the cost runs); sets gw_pid,
# gw_url and gw_ms (from exec to its first HTTP answer: the registry and outbox are loaded by
# then).
start_gw() {
    local store=$1 xp=$2 port
    port=$(free_port)
    local t0
    t0=$(date +%s%N)
    PUBSUBGW_XMPP_PASSWORD=gw "$bin" --jid gw@localhost --xmpp-server "127.0.0.1:$xp" --tls off \
        --listen "127.0.0.1:$port" --data-dir "$work/data" --store "$store" \
        --callback-allow 127.0.0.0/8 --max-host-connections 32 --max-connections 800 \
        --log-level warn 2>>"$work/gateway.log" &
    gw_pid=$!
    for _ in $(seq 1 3000); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v1/health" && break
        sleep 0.01
    done
    gw_ms=$((($(date +%s%N) - t0) / 1000000))
    gw_url="http://127.0.0.1:$port"
}
wait_xmpp() {
    for _ in $(seq 1 100); do
        curl -fs "$gw_url/v1/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "gateway not ready" >&2
    return 1
}
stop_gw() {
    kill -TERM "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
    gw_pid=""
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# One driver scenario against $1 (gateway URL) with XMPP port $2, gateway pid $3, Prosody pid $4.
scenario() {
    local url=$1 xp=$2 gp=$3 pp=$4
    shift 4
    env "$@" "$drv" "$url" "$xp" "$gp" "$pp" $smoke 2>>"$work/driver.log"
}

# Latency and the two fan-outs against one setup, into res[KEY.lat] ("p50 p99 direct-p50
# direct-p99"), res[KEY.fan] and res[KEY.fan2]. Arguments: KEY, then as for scenario.
measure() {
    local key=$1
    shift
    res[$key.lat]=$(scenario "$@" BENCH_ONLY_LATENCY=$lat_rate | sed -n 's/.*gateway p50 \([0-9.]*\) p99 \([0-9.]*\) max [0-9.]*; direct p50 \([0-9.]*\) p99 \([0-9.]*\)/\1 \2 \3 \4/p')
    res[$key.fan]=$(scenario "$@" BENCH_ONLY_FANOUT=$fan_k | sed -n 's/.*: \([0-9]*\) deliveries\/s/\1/p')
    res[$key.fan2]=$(scenario "$@" BENCH_ONLY_FANOUT=$fan_k2 | sed -n 's/.*: \([0-9]*\) deliveries\/s/\1/p')
}

lat_rate=500
fan_k=100
fan_k2=1000
[ "$smoke" != --smoke ] || { lat_rate=100; fan_k2=20; }

echo "pubsubgw $("$bin" --version | cut -d' ' -f2), Prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null), PostgreSQL $(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null | cut -d- -f1), $(nproc) cores, $(date -u +%F)"
echo

sections=${BENCH_SECTIONS:-stores replicas cost}
has() { [[ " $sections " == *" $1 "* ]]; }
declare -A res
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
diffms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f ms", a - b }'; }

# ---- 1. SQLite vs PostgreSQL, one gateway each, the same Prosody
if has stores; then
for store in sqlite pg; do
    rm -rf "$work/data"
    if [ "$store" = sqlite ]; then s="sqlite:$work/data/pubsubgw.db"; else s=$pg_url; fi
    start_gw "$s" "$xport"
    wait_xmpp
    out=$(scenario "$gw_url" "$xport" "$gw_pid" "$prosody_pid" BENCH_ONLY_PUBLISH=1)
    # the median of the runs' gateway rates, and of their ratios to the direct client
    res[$store.pub]=$(echo "$out" | sed -n 's/^publish: gateway \([0-9]*\)\/s, direct \([0-9]*\)\/s (\([0-9.]*\)x).*/\1 \2 \3/p' |
        sort -k3 -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
    measure "$store" "$gw_url" "$xport" "$gw_pid" "$prosody_pid"
    stop_gw
done
read -r sp sd sr <<<"${res[sqlite.pub]}"
read -r pp pd pr <<<"${res[pg.pub]}"
read -r sl50 sl99 sd50 sd99 <<<"${res[sqlite.lat]}"
read -r pl50 pl99 pd50 pd99 <<<"${res[pg.lat]}"
echo "### One gateway: SQLite vs PostgreSQL (same Prosody, same run)"
echo
echo "| scenario | SQLite | PostgreSQL | PostgreSQL vs SQLite |"
echo "| --- | ---: | ---: | ---: |"
echo "| publish throughput, items/s (median of 3; vs the direct client in the same minute) | $sp ($sr of direct) | $pp ($pr of direct) | $(ratio "$pr" "$sr") |"
echo "| latency p50 at $lat_rate/s, publish -> webhook (ms; direct XMPP $sd50 / $pd50) | $sl50 | $pl50 | $(diffms "$pl50" "$sl50") |"
echo "| latency p99 (ms; direct XMPP $sd99 / $pd99) | $sl99 | $pl99 | $(diffms "$pl99" "$sl99") |"
echo "| fan-out to $fan_k callbacks (deliveries/s) | ${res[sqlite.fan]} | ${res[pg.fan]} | $(ratio "${res[pg.fan]}" "${res[sqlite.fan]}") |"
echo "| fan-out to $fan_k2 callbacks (deliveries/s) | ${res[sqlite.fan2]} | ${res[pg.fan2]} | $(ratio "${res[pg.fan2]}" "${res[sqlite.fan2]}") |"
echo
fi

# ---- 2. 1 vs 3 replicas behind HAProxy, on PostgreSQL
if has replicas; then
for n in 1 3; do
    PUBSUBGW_BIN=$bin PUBSUBGW_ARGS="--callback-allow 127.0.0.0/8 --max-host-connections 32 --log-level warn" \
        scripts/cluster.sh start "$work/cluster" "$n" >/dev/null
    curl_url=$(cat "$work/cluster/url")
    cxp=$(cat "$work/cluster/prosody/port")
    cpp=$(cat "$work/cluster/prosody/prosody.pid")
    rp=$(cat "$work/cluster/replica-1/pid")
    measure "c$n" "$curl_url" "$cxp" "$rp" "$cpp"
    PUBSUBGW_BIN=$bin scripts/cluster.sh stop "$work/cluster" >/dev/null
done
read -r a50 a99 ad50 ad99 <<<"${res[c1.lat]}"
read -r b50 b99 bd50 bd99 <<<"${res[c3.lat]}"
echo "### Replicas on PostgreSQL behind HAProxy: 1 vs 3 ($(nproc) cores: the point is the overhead, not a speed-up)"
echo
echo "| scenario | 1 replica | 3 replicas | 3 vs 1 |"
echo "| --- | ---: | ---: | ---: |"
echo "| latency p50 at $lat_rate/s, publish -> webhook (ms; direct XMPP $ad50 / $bd50) | $a50 | $b50 | $(diffms "$b50" "$a50") |"
echo "| latency p99 (ms; direct XMPP $ad99 / $bd99) | $a99 | $b99 | $(diffms "$b99" "$a99") |"
echo "| fan-out to $fan_k callbacks (deliveries/s) | ${res[c1.fan]} | ${res[c3.fan]} | $(ratio "${res[c3.fan]}" "${res[c1.fan]}") |"
echo "| fan-out to $fan_k2 callbacks (deliveries/s) | ${res[c1.fan2]} | ${res[c3.fan2]} | $(ratio "${res[c3.fan2]}" "${res[c1.fan2]}") |"
echo
fi

# ---- 3. cost against work: start-up time and memory, both stores
has cost || exit 0
sizes="10000 100000 1000000"
pending=100000
[ "$smoke" != --smoke ] || { sizes="1000 5000"; pending=2000; }
dead_port=$(free_port) # no XMPP server: start-up is the store's work alone
secret=whsec_$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
fill() { # store kind, subscriptions, pending events (for the first subscription)
    local kind=$1 n=$2 p=$3
    if [ "$kind" = sqlite ]; then
        python3 - "$work/data/pubsubgw.db" "$n" "$p" "$secret" <<'PY'
import sqlite3, sys
db, n, p, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
M = (1 << 64) - 1
def sub_key(sid):  # the gateway's subscription key (gateway/store_sqlite.c, sub_key)
    h = 0xcbf29ce484222325
    for b in sid.encode():
        h = ((h ^ b) * 0x100000001b3) & M
    h ^= h >> 30; h = (h * 0xbf58476d1ce4e5b9) & M
    h ^= h >> 27; h = (h * 0x94d049bb133111eb) & M
    h ^= h >> 31
    return h - (1 << 64) if h >> 63 else h
c = sqlite3.connect(db)
c.execute("DELETE FROM subscriptions"); c.execute("DELETE FROM deliveries"); c.execute("DELETE FROM events")
c.executemany("INSERT INTO subscriptions(id, service, node, callback, secret, events, created_ms, key) "
              "VALUES (?, 'pubsub.localhost', ?, 'http://127.0.0.1:9/hook', ?, 1, ?, ?)",
              ((f"sub_{i:07d}", f"node{i % 1000}", secret, 1700000000000 + i, sub_key(f"sub_{i:07d}"))
               for i in range(n)))
c.executemany("INSERT INTO events(event_id, service, node, body, created_ms) VALUES (?, 'pubsub.localhost', 'node0', ?, 1700000000000)",
              ((f"msg_{i}", '{"type":"item.published","service":"pubsub.localhost","node":"node0","item":{"id":"i%d","payload":{"n":%d}}}' % (i, i)) for i in range(p)))
c.execute("INSERT INTO deliveries(sub_key, event, next_at) SELECT ?, id, 4102444800000 FROM events",
          (sub_key("sub_0000000"),))
c.commit()
PY
    else
        psql -q "$pg_url" -v ON_ERROR_STOP=1 <<SQL
ALTER TABLE subscriptions DISABLE TRIGGER subscriptions_changed;
TRUNCATE subscriptions, deliveries, events;
INSERT INTO subscriptions(id, service, node, callback, secret, events, created_ms) SELECT 'sub_' || lpad(i::text, 7, '0'), 'pubsub.localhost', 'node' || (i % 1000),
  'http://127.0.0.1:9/hook', '$secret', 1, 1700000000000 + i FROM generate_series(0, $n - 1) i;
INSERT INTO events(event_id, service, node, body, created_ms) SELECT 'msg_' || i, 'pubsub.localhost', 'node0',
  '{"type":"item.published","service":"pubsub.localhost","node":"node0","item":{"id":"i' || i || '","payload":{"n":' || i || '}}}',
  1700000000000 FROM generate_series(0, $p - 1) i;
INSERT INTO deliveries(sub_id, event, next_at) SELECT 'sub_0000000', id, 4102444800000 FROM events;
ALTER TABLE subscriptions ENABLE TRIGGER subscriptions_changed;
VACUUM ANALYZE;
SQL
    fi
}
echo "### Cost against work (no XMPP server: the store's share alone; start-up = exec to first HTTP answer)"
echo
echo "| registered subscriptions | pending events | SQLite start-up | SQLite memory (RSS) | PostgreSQL start-up | PostgreSQL memory (RSS) |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
declare -A cost
for kind in sqlite pg; do
    rm -rf "$work/data"
    if [ "$kind" = sqlite ]; then s="sqlite:$work/data/pubsubgw.db"; else s=$pg_url; fi
    start_gw "$s" "$dead_port" # creates the schema
    stop_gw
    for row in 0:0 $(for n in $sizes; do echo "$n:0"; done) "1:$pending"; do
        n=${row%%:*}
        p=${row##*:}
        fill "$kind" "$n" "$p"
        start_gw "$s" "$dead_port"
        sleep 0.5
        cost[$kind.$row]="$gw_ms ms|$(($(rss_kb "$gw_pid") / 1024)) MB"
        stop_gw
    done
done
for row in 0:0 $(for n in $sizes; do echo "$n:0"; done) "1:$pending"; do
    n=${row%%:*}
    p=${row##*:}
    IFS='|' read -r st sm <<<"${cost[sqlite.$row]}"
    IFS='|' read -r pt pm <<<"${cost[pg.$row]}"
    echo "| $n | $p | $st | $sm | $pt | $pm |"
done
if grep -qiE "error" "$work/gateway.log" "$work/driver.log" 2>/dev/null; then
    echo
    echo "logs:"
    grep -iE "error" "$work/gateway.log" "$work/driver.log" | grep -v "127.0.0.1:9" | tail -n 5
fi
