# Shell functions shared by the scripts that start private servers (sourced, not run).

# Prints a free TCP port on 127.0.0.1.
free_port() {
    python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# Exits with a message when something already listens on 127.0.0.1:$1 (a port picked as free
# may have been taken since by a server started at the same time).
port_unused() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "port $1 is already in use" >&2
        exit 1
    fi
}

# 0 when process $2 (or one of its children) listens on TCP port $1.
listens_on() {
    local pids
    pids=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2)
    for p in $pids; do
        [ "$p" = "$2" ] && return 0
        [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = "$2" ] && return 0
    done
    return 1
}

# Sends signal $2 (default TERM) to process $1, waits up to $3 seconds (default 5) for it to go,
# then kills it. Nothing when it is not running.
stop_pid() {
    local pid=$1 sig=${2:-TERM} secs=${3:-5}
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}
