#!/usr/bin/env bash
# coreloop (1 shard) versus nginx (1 worker) on /plaintext, side by side on this machine.
# Servers pinned to CPU 1, load pinned to CPU 0; rounds alternate A B A B; medians; every
# figure also as a ratio to nginx from the same round. The servers' CPU seconds over each
# measured window come from /proc, so requests per server CPU-second stay honest when the
# client saturates its core first. Loopback only, every run bounded by `timeout`.
#
# Usage: benches/compare/plaintext.sh [ROUNDS] [SECONDS]   (defaults: 3 rounds of 5 s)
# Env: SCENARIOS (default "S1 S2 S3 S4 S5"), CLIENTS (default "wrk load").
set -euo pipefail

ROUNDS=${1:-3}
SECS=${2:-5}
SCENARIOS=${SCENARIOS:-S1 S2 S3 S4 S5}
CLIENTS=${CLIENTS:-wrk load}
NGINX_PORT=18081
CORELOOP_PORT=18082
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/coreloop-plaintext.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

install_peers() {
    command -v wrk >/dev/null && command -v nginx >/dev/null && return
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
}

build() {
    (cd "$ROOT" && cargo build --release --bin coreloop --bin coreloop-load >&2)
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    CORELOOP=$target/release/coreloop
    LOAD=$target/release/coreloop-load
}

start_nginx() {
    cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log crit;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=16384;
        location /plaintext { default_type text/plain; return 200 'Hello, World!'; }
    }
}
CONF
    taskset -c 1 nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
    PIDS+=($!)
    # nginx forks its worker; the worker is the process that serves.
    wait_up $NGINX_PORT
    NGINX_PID=$(pgrep -P "${PIDS[-1]}" | head -1)
}

start_coreloop() {
    cat >"$WORK/coreloop.toml" <<CONF
[server]
shards = 1
balance = "reuseport"
max_connections = 19500
offload_threads = 1

[timeouts]
idle = "300s"

[limits]
max_requests_per_connection = 0

[log]
level = "warn"

[[listener]]
name = "web"
address = "127.0.0.1:$CORELOOP_PORT"
protocol = "http"
backlog = 16384

[[listener.route]]
path = "/plaintext"
static = { status = 200, body = "Hello, World!", content_type = "text/plain" }
CONF
    taskset -c 1 "$CORELOOP" --config "$WORK/coreloop.toml" 2>"$WORK/coreloop.log" &
    PIDS+=($!)
    CORELOOP_PID=${PIDS[-1]}
    wait_up $CORELOOP_PORT
}

restart_servers() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
    start_nginx
    start_coreloop
}

wait_up() {
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$1/plaintext" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server on port $1 did not come up" >&2
    exit 1
}

# utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15, clock ticks).
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

# One measured client run against one server; prints "rps server_cpu_s p99_us".
measure() {  # $1 client, $2 server pid, $3 port, $4 connections, $5 pipeline, $6 rate (or "")
    local url="http://127.0.0.1:$3/plaintext" before after rps p99
    before=$(cpu_s "$2")
    if [[ $1 == wrk ]]; then
        local script=()
        [[ $5 -gt 1 ]] && script=(-s "$ROOT/benches/load/pipeline.lua")
        timeout $((SECS + 30)) taskset -c 0 wrk -t1 -c"$4" -d"${SECS}s" --latency "${script[@]}" "$url" -- "$5" \
            >"$WORK/out.txt" 2>&1 || true
        rps=$(grep -oP 'Requests/sec:\s*\K[0-9.]+' "$WORK/out.txt" || echo 0)
        grep -E 'Socket errors|Non-2xx' "$WORK/out.txt" >&2 || true
        p99=$(awk '$1 == "99%" { v = $2; u = v; gsub(/[0-9.]/, "", u); gsub(/[a-z]/, "", v);
              print v * (u == "ms" ? 1000 : (u == "s" ? 1000000 : 1)) }' "$WORK/out.txt")
    else
        local rate=()
        [[ -n $6 ]] && rate=(--rate "$6")
        timeout $((SECS + 30)) taskset -c 0 "$LOAD" -t 1 -c "$4" -d "${SECS}s" --warmup 1s --pipeline "$5" \
            "${rate[@]}" --no-progress --json "$WORK/out.json" "$url" >/dev/null 2>&1 || true
        read -r rps p99 < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]));
print(r["requests_per_s"], r["latency"]["p99_us"], r["errors"]["connect"] + r["errors"]["read"] + r["errors"]["write"] + r["errors"]["timeout"])' \
            "$WORK/out.json" | awk '{ print $1, $2; if ($3 > 0) print "socket errors: " $3 > "/dev/stderr" }')
    fi
    after=$(cpu_s "$2")
    echo "$rps $(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }') ${p99:-0}"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# Alternating rounds of one scenario with one client; prints one table row per server.
scenario() {  # $1 label, $2 client, $3 connections, $4 pipeline, $5 rate
    local c_rps=() c_per=() c_p99=() n_rps=() n_per=() n_p99=()
    for round in $(seq "$ROUNDS"); do
        for server in nginx coreloop; do
            local pid port
            if [[ $server == nginx ]]; then pid=$NGINX_PID; port=$NGINX_PORT; else pid=$CORELOOP_PID; port=$CORELOOP_PORT; fi
            read -r rps cpu p99 < <(measure "$2" "$pid" "$port" "$3" "$4" "$5")
            local per
            per=$(awk -v r="$rps" -v c="$cpu" -v s="$SECS" 'BEGIN { print (c > 0 ? r * s / c : 0) }')
            echo "  $1 $2 round $round $server: $rps req/s, server CPU ${cpu}s, $per req/CPU-s, p99 ${p99}us" >&2
            if [[ $server == nginx ]]; then n_rps+=("$rps"); n_per+=("$per"); n_p99+=("$p99")
            else c_rps+=("$rps"); c_per+=("$per"); c_p99+=("$p99"); fi
        done
    done
    local cr cp cl nr np nl
    cr=$(printf '%s\n' "${c_rps[@]}" | median); cp=$(printf '%s\n' "${c_per[@]}" | median); cl=$(printf '%s\n' "${c_p99[@]}" | median)
    nr=$(printf '%s\n' "${n_rps[@]}" | median); np=$(printf '%s\n' "${n_per[@]}" | median); nl=$(printf '%s\n' "${n_p99[@]}" | median)
    awk -v l="$1" -v c="$2" -v cr="$cr" -v cp="$cp" -v cl="$cl" -v nr="$nr" -v np="$np" -v nl="$nl" 'BEGIN {
        printf "| %s | %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.0f | %.0f |\n",
            l, c, cr, nr, (nr > 0 ? cr / nr : 0), cp, np, (np > 0 ? cp / np : 0), cl, nl }'
}

# Server RSS growth per idle keep-alive connection (each sent one request and read it).
idle_memory() {  # $1 connections
    for server in nginx coreloop; do
        local pid port
        if [[ $server == nginx ]]; then pid=$NGINX_PID; port=$NGINX_PORT; else pid=$CORELOOP_PID; port=$CORELOOP_PORT; fi
        local before after
        before=$(rss_kib "$pid")
        coproc HOLD { ulimit -n 20000; exec taskset -c 0 timeout 300 python3 "$HERE/hold_idle.py" 127.0.0.1 "$port" "$1"; }
        read -r -t 240 ready <&"${HOLD[0]}" || { echo "holding $1 connections failed" >&2; exit 1; }
        after=$(rss_kib "$pid")
        echo done >&"${HOLD[1]}"
        wait "$HOLD_PID" 2>/dev/null || true
        awk -v s="$server" -v n="$1" -v b="$before" -v a="$after" 'BEGIN {
            printf "| %s | %d | %d | %d | %.0f |\n", s, n, b, a, (a - b) * 1024 / n }'
    done
}

install_peers
build
ulimit -n 20000
start_nginx
start_coreloop
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2), wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}'), coreloop: $($CORELOOP --version)"
echo
echo "| scenario | client | coreloop req/s | nginx req/s | ratio | coreloop req/server-CPU-s | nginx req/server-CPU-s | ratio | coreloop p99 us | nginx p99 us |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for s in $SCENARIOS; do
    for client in $CLIENTS; do
        case $s in
            S1) scenario "S1 keep-alive, 256 conns" "$client" 256 1 "" ;;
            S2) scenario "S2 pipelined x16, 256 conns" "$client" 256 16 "" ;;
            S3) scenario "S3 C10K, 10000 conns" "$client" 10000 1 "" ;;
        esac
    done
done
if [[ " $SCENARIOS " == *" S5 "* ]]; then
    # Half of what coreloop-load reached on S1 against nginx, the same rate for both servers.
    read -r full _ _ < <(measure load "$NGINX_PID" $NGINX_PORT 256 1 "")
    rate=$(awk -v r="$full" 'BEGIN { printf "%d", r / 2 }')
    echo
    echo "S5: open loop at $rate req/s (50% of coreloop-load's S1 rate against nginx), 256 conns, coreloop-load:"
    echo "| server | p50 us | p99 us | p99.9 us | achieved req/s |"
    echo "|---|---|---|---|---|"
    for server in nginx coreloop; do
        port=$NGINX_PORT; [[ $server == coreloop ]] && port=$CORELOOP_PORT
        timeout $((SECS + 30)) taskset -c 0 "$LOAD" -t 1 -c 256 -d "${SECS}s" --warmup 1s --rate "$rate" \
            --no-progress --json "$WORK/s5.json" "http://127.0.0.1:$port/plaintext" >/dev/null 2>&1 || true
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency"]
print("| %s | %s | %s | %s | %.0f |" % (sys.argv[2], l["p50_us"], l["p99_us"], l["p99_9_us"], r["requests_per_s"]))' "$WORK/s5.json" "$server"
    done
fi
if [[ " $SCENARIOS " == *" S4 "* ]]; then
    # Fresh servers: memory the earlier scenarios' 10,000 connections left in pools and
    # slabs would otherwise be counted as the baseline.
    restart_servers
    echo
    echo "S4: idle keep-alive connections, server RSS:"
    echo "| server | connections | RSS before KiB | RSS after KiB | bytes per connection |"
    echo "|---|---|---|---|---|"
    idle_memory 10000
    # Fresh again: what the 10,000 left in the allocator's free lists would be reused and
    # understate the 19,000 figure.
    restart_servers
    idle_memory 19000
fi
