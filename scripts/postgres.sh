#!/usr/bin/env bash
# Private PostgreSQL for development and tests: a cluster of its own (initdb), TCP on loopback
# only, trust authentication for the superuser "pubsubgw", a database "pubsubgw". No system
# service.
#   scripts/postgres.sh start DIR [PORT]   start (PORT 0 or absent: a free port), print the port;
#                                          DIR/url then holds the URL to pass to --store
#   scripts/postgres.sh stop DIR           stop it (the cluster stays: start again reuses it)
#   scripts/postgres.sh fresh DIR [PORT]   as start, on a new empty cluster (the tests' fixture)
#   scripts/postgres.sh restart DIR        stop and start on the same port (for fault tests)
#   scripts/postgres.sh remove DIR         stop it and delete the cluster (a scratch one's end)
# PostgreSQL refuses to run as root: as root the server runs as the "postgres" user, and when
# that user cannot reach DIR the cluster lives under /tmp, named in DIR/work.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|fresh|stop|restart|remove DIR [PORT]" >&2; exit 2; }

. "$(dirname "$0")/common.sh"

bin=""
for v in 17 16 15 14 13; do
    if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then
        bin=/usr/lib/postgresql/$v/bin
        break
    fi
done
[ -n "$bin" ] || bin=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
[ -x "$bin/pg_ctl" ] ||
    { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Runs a server command as the user the cluster belongs to.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cluster=$dir/cluster
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "the postgres user does not exist" >&2; exit 1; }
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
        work=$(cat "$dir/work" 2>/dev/null || true)
        if [ -z "$work" ] || [ ! -d "$work" ]; then
            if [ "$cmd" = stop ] || [ "$cmd" = remove ]; then exit 0; fi
            work=$(mktemp -d /tmp/pubsubgw-postgres-XXXXXX)
            chmod 755 "$work"
            chown postgres "$work"
            echo "$work" >"$dir/work"
        fi
        cluster=$work/cluster
    fi
fi

stop() {
    if [ -f "$cluster/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$cluster" -m fast -w -t 30 stop >/dev/null 2>&1 || {
            kill -9 "$(head -1 "$cluster/postmaster.pid")" 2>/dev/null || true
        }
    fi
}

start() {
    local port=$1
    if [ ! -f "$cluster/PG_VERSION" ]; then
        mkdir -p "$cluster"
        [ "$(id -u)" != 0 ] || chown postgres "$cluster"
        as_owner "$bin/initdb" -D "$cluster" -U pubsubgw --auth=trust -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    # Settings for a scratch server: loopback TCP only, no Unix socket to collide with a system
    # one, and durability traded for speed nowhere (fsync stays on: the tests kill things).
    cat >"$dir/postgresql.auto" <<CFG
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 200
shared_buffers = 64MB
logging_collector = off
CFG
    as_owner cp "$dir/postgresql.auto" "$cluster/postgresql.auto.conf" 2>/dev/null ||
        { cp "$dir/postgresql.auto" "$cluster/postgresql.auto.conf"; chown postgres "$cluster/postgresql.auto.conf"; }
    touch "$dir/postgres.log"
    [ "$(id -u)" != 0 ] || chown postgres "$dir/postgres.log" 2>/dev/null || true
    local log=$dir/postgres.log
    as_owner test -w "$log" || log=$cluster/postgres.log
    as_owner "$bin/pg_ctl" -D "$cluster" -l "$log" -w -t 60 start >/dev/null ||
        { tail -n 20 "$log" >&2; exit 1; }
    for _ in $(seq 1 100); do
        "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q && break
        sleep 0.1
    done
    "$bin/psql" -h 127.0.0.1 -p "$port" -U pubsubgw -d postgres -qAtc \
        "SELECT 1 FROM pg_database WHERE datname = 'pubsubgw'" | grep -q 1 ||
        "$bin/createdb" -h 127.0.0.1 -p "$port" -U pubsubgw pubsubgw
    echo "$port" >"$dir/port"
    echo "postgresql://pubsubgw@127.0.0.1:$port/pubsubgw" >"$dir/url"
    echo "$port"
}

case "$cmd" in
stop)
    stop
    rm -f "$dir/port"
    ;;
start | fresh)
    stop
    [ "$cmd" = start ] || rm -rf "$cluster"
    port=${3:-0}
    [ "$port" != 0 ] || port=$(free_port)
    port_unused "$port"
    start "$port"
    ;;
restart)
    port=$(cat "$dir/port")
    stop
    start "$port"
    ;;
remove)
    # A cluster kept under /tmp (root's case) would outlive DIR: it goes with its work directory.
    stop
    rm -rf "$cluster"
    if [ -n "${work:-}" ]; then
        rm -rf "$work"
        rm -f "$dir/work"
    fi
    rm -f "$dir/port" "$dir/url"
    ;;
*)
    echo "usage: $0 start|fresh|stop|restart|remove DIR [PORT]" >&2
    exit 2
    ;;
esac
