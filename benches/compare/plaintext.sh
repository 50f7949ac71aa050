#!/usr/bin/env bash
# coreloop (1 shard) side by side with its peers on /plaintext, on this machine: nginx (1
# worker), may_minihttp (1 worker, TechEmpower settings; benches/compare/may_minihttp) and the
# epoll floor (benches/compare/floor.c, the least work an epoll server can do per request).
# Servers pinned to CPU 1, load pinned to CPU 0; rounds alternate the servers (the order is
# reversed every other round); medians with min-max; every figure also as coreloop's ratio to
# each peer. The servers' CPU seconds over each measured window come from /proc, so requests
# per server CPU-second stay honest when the client saturates its core first. Loopback only,
# every run bounded by `timeout`.
#
# Usage: benches/compare/plaintext.sh [ROUNDS] [SECONDS]   (defaults: 3 rounds of 5 s)
# Env: SCENARIOS (default "S1 S2 S3 S4 S5"), CLIENTS (default "wrk load"),
#      SERVERS (default "coreloop nginx may floor"; coreloop first, ratios are against it).
set -euo pipefail

ROUNDS=${1:-3}
SECS=${2:-5}
SCENARIOS=${SCENARIOS:-S1 S2 S3 S4 S5}
CLIENTS=${CLIENTS:-wrk load}
SERVERS=${SERVERS:-coreloop nginx may floor}
declare -A PORT=([nginx]=18081 [coreloop]=18082 [may]=18083 [floor]=18084)
declare -A PID=()
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
    if [[ " $SERVERS " == *" may "* ]]; then
        (cd "$HERE/may_minihttp" && CARGO_TARGET_DIR=$target/peers cargo build --release -q >&2)
        MAY=$target/peers/release/coreloop-peer-may-minihttp
    fi
    if [[ " $SERVERS " == *" floor "* ]]; then
        mkdir -p "$target/peers"
        cc -O2 -o "$target/peers/floor" "$HERE/floor.c"
        FLOOR=$target/peers/floor
    fi
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
        listen 127.0.0.1:${PORT[nginx]} backlog=16384;
        location /plaintext { default_type text/plain; return 200 'Hello, World!'; }
    }
}
CONF
    taskset -c 1 nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
    PIDS+=($!)
    # nginx forks its worker; the worker is the process that serves.
    wait_up "${PORT[nginx]}"
    PID[nginx]=$(pgrep -P "${PIDS[-1]}" | head -1)
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
address = "127.0.0.1:${PORT[coreloop]}"
protocol = "http"
backlog = 16384

[[listener.route]]
path = "/plaintext"
static = { status = 200, body = "Hello, World!", content_type = "text/plain" }
CONF
    taskset -c 1 "$CORELOOP" --config "$WORK/coreloop.toml" 2>"$WORK/coreloop.log" &
    PIDS+=($!)
    PID[coreloop]=${PIDS[-1]}
    wait_up "${PORT[coreloop]}"
}

start_may() {
    taskset -c 1 "$MAY" "${PORT[may]}" 2>"$WORK/may.log" &
    PIDS+=($!)
    PID[may]=${PIDS[-1]}
    wait_up "${PORT[may]}"
}

start_floor() {
    taskset -c 1 "$FLOOR" "${PORT[floor]}" 2>"$WORK/floor.log" &
    PIDS+=($!)
    PID[floor]=${PIDS[-1]}
    wait_up "${PORT[floor]}"
}

start_servers() {
    for server in $SERVERS; do "start_$server"; done
}

restart_servers() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
    start_servers
}

wait_up() {
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$1/plaintext" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server on port $1 did not come up" >&2
    exit 1
}

# utime and stime of a process, in seconds (/proc/PID/stat fields 14 and 15, clock ticks):
# "user kernel". Kept apart because the kernel's share is most of every server's CPU here,
# and a change in user space moves it only indirectly (through the cache lines it leaves).
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print $12 / hz, $13 / hz }' "/proc/$1/stat"
}

rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

# One measured client run against one server; prints "rps server_cpu_s p99_us user_cpu_s".
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
        # The server's CPU is read when the warm-up ends, so that it covers the measured
        # window only, as the request count does.
        (sleep 1; cpu_s "$2" >"$WORK/cpu-before") &
        local sampler=$!
        timeout $((SECS + 30)) taskset -c 0 "$LOAD" -t 1 -c "$4" -d "${SECS}s" --warmup 1s --pipeline "$5" \
            "${rate[@]}" --no-progress --json "$WORK/out.json" "$url" >/dev/null 2>&1 || true
        read -r rps p99 < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]));
print(r["requests_per_s"], r["latency"]["p99_us"], r["errors"]["connect"] + r["errors"]["read"] + r["errors"]["write"] + r["errors"]["timeout"])' \
            "$WORK/out.json" | awk '{ print $1, $2; if ($3 > 0) print "socket errors: " $3 > "/dev/stderr" }')
        wait "$sampler" 2>/dev/null || true
        before=$(cat "$WORK/cpu-before")
    fi
    after=$(cpu_s "$2")
    awk -v r="$rps" -v a="$after" -v b="$before" -v l="${p99:-0}" 'BEGIN {
        split(a, x, " "); split(b, y, " "); print r, x[1] + x[2] - y[1] - y[2], l, x[1] - y[1] }'
}


# min, median and max of the numbers on stdin, as "MEDIAN MIN MAX".
spread() { sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); print m, a[1], a[NR] }'; }

# The servers in the order of one round: as listed on odd rounds, reversed on even ones, so
# that no server always runs right after the same neighbour.
round_order() {  # $1 round
    local list=($SERVERS)
    if (($1 % 2 == 0)); then
        for ((i = ${#list[@]} - 1; i >= 0; i--)); do printf '%s ' "${list[i]}"; done
    else
        printf '%s ' "${list[@]}"
    fi
}

# Alternating rounds of one scenario with one client; prints one table row per server.
scenario() {  # $1 label, $2 client, $3 connections, $4 pipeline, $5 rate
    declare -A rps=() per=() p99=() user=() kernel=()
    for round in $(seq "$ROUNDS"); do
        for server in $(round_order "$round"); do
            read -r r cpu l u < <(measure "$2" "${PID[$server]}" "${PORT[$server]}" "$3" "$4" "$5")
            local p us ks
            p=$(awk -v r="$r" -v c="$cpu" -v s="$SECS" 'BEGIN { print (c > 0 ? r * s / c : 0) }')
            # Server CPU per request, split: microseconds in user space and in the kernel.
            read -r us ks < <(awk -v r="$r" -v c="$cpu" -v u="$u" -v s="$SECS" 'BEGIN {
                n = r * s; print (n > 0 ? u * 1e6 / n : 0), (n > 0 ? (c - u) * 1e6 / n : 0) }')
            echo "  $1 $2 round $round $server: $r req/s, server CPU ${cpu}s (user ${u}s), $p req/CPU-s, p99 ${l}us" >&2
            rps[$server]+="$r "; per[$server]+="$p "
            # wrk prints a latency distribution of 0.00us for some pipelined runs (it records
            # once per batch): no latency is zero, so such a round has no p99.
            awk -v l="$l" 'BEGIN { exit !(l > 0) }' && p99[$server]+="$l "
            user[$server]+="$us "; kernel[$server]+="$ks "
        done
    done
    local base
    read -r base _ _ < <(printf '%s\n' ${per[coreloop]:-0} | spread)
    for server in $SERVERS; do
        local rm pm pmin pmax lm
        read -r rm _ _ < <(printf '%s\n' ${rps[$server]} | spread)
        read -r pm pmin pmax < <(printf '%s\n' ${per[$server]} | spread)
        read -r lm _ _ < <(printf '%s\n' ${p99[$server]:-} | spread)
        local um km
        read -r um _ _ < <(printf '%s\n' ${user[$server]} | spread)
        read -r km _ _ < <(printf '%s\n' ${kernel[$server]} | spread)
        awk -v l="$1" -v c="$2" -v s="$server" -v rm="$rm" -v pm="$pm" -v lo="$pmin" -v hi="$pmax" \
            -v lm="$lm" -v b="$base" -v um="$um" -v km="$km" 'BEGIN {
            printf "| %s | %s | %s | %.0f | %.0f (%.0f-%.0f) | %s | %s | %.2f / %.2f |\n", l, c, s, rm, pm, lo, hi,
                (s == "coreloop" ? "1.00" : (pm > 0 ? sprintf("%.2f", b / pm) : "-")),
                (lm > 0 ? sprintf("%.0f", lm) : "-"), um, km }'
    done
}

# Server RSS growth per idle keep-alive connection (each sent one request and read it).
idle_memory() {  # $1 connections
    for server in $SERVERS; do
        local pid=${PID[$server]} port=${PORT[$server]}
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
start_servers
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2), wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}'), coreloop: $($CORELOOP --version)"
echo "servers: $SERVERS; $ROUNDS rounds of ${SECS}s; medians (min-max); ratio = coreloop req/CPU-s / the server's"
echo
echo "| scenario | client | server | req/s | req/server-CPU-s | coreloop / server (per CPU) | p99 us | server us per request, user / kernel |"
echo "|---|---|---|---|---|---|---|---|"
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
    # Half of what coreloop-load reached on S1 against the first server, the same rate for all.
    first=${SERVERS%% *}
    read -r full _ _ < <(measure load "${PID[$first]}" "${PORT[$first]}" 256 1 "")
    rate=$(awk -v r="$full" 'BEGIN { printf "%d", r / 2 }')
    echo
    echo "S5: open loop at $rate req/s (50% of coreloop-load's S1 rate against $first), 256 conns, coreloop-load:"
    echo "| server | p50 us | p99 us | p99.9 us | achieved req/s |"
    echo "|---|---|---|---|---|"
    for server in $SERVERS; do
        timeout $((SECS + 30)) taskset -c 0 "$LOAD" -t 1 -c 256 -d "${SECS}s" --warmup 1s --rate "$rate" \
            --no-progress --json "$WORK/s5.json" "http://127.0.0.1:${PORT[$server]}/plaintext" >/dev/null 2>&1 || true
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
