#!/usr/bin/env bash
# coreloop-load versus wrk against nginx on loopback, both clients pinned to
# core 0 and nginx (1 worker) to core 1; alternating rounds A B A B, medians.
# Bounded: every client run is under `timeout`; nginx is stopped on exit.
# Usage: benches/load/compare.sh [ROUNDS] [SECONDS]
# Pipelined rows: coreloop-load --pipeline-mode window, then batch (wrk's pipeline.lua
# is a batch); RSS_TOOLS=" " skips the RSS part; ROWS="keepalive batch" runs only those rows.
# Env: LOAD_BIN (default: cargo build --release --bin coreloop-load), PORT (8089);
# TARGET_URL=http://... runs against a server you started (pinned yourself) instead of nginx.
set -euo pipefail

ROUNDS=${1:-3}
SECS=${2:-5}
PORT=${PORT:-8089}
CONNS=256
DEPTH=16
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/coreloop-compare.XXXXXX)
URL=${TARGET_URL:-"http://127.0.0.1:$PORT/plaintext"}

need() {
    command -v wrk >/dev/null && command -v nginx >/dev/null && return
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
}

load_bin() {
    if [[ -n "${LOAD_BIN:-}" ]]; then echo "$LOAD_BIN"; return; fi
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    (cd "$ROOT" && cargo build --release --bin coreloop-load >&2)
    echo "$target/release/coreloop-load"
}

start_nginx() {
    cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/error.log crit;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$PORT backlog=16384;
        location /plaintext { return 200 'Hello, World!'; }
    }
}
CONF
    taskset -c 1 nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
    NGINX=$!
    for _ in $(seq 50); do
        curl -fs "$URL" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "nginx did not come up" >&2
    exit 1
}

stop() {
    [[ -n "${NGINX:-}" ]] && kill "$NGINX" 2>/dev/null && wait "$NGINX" 2>/dev/null
    rm -rf "$WORK"
}
trap stop EXIT

# Runs a command and prints "<its stdout> CPU=<user+system of it and its children>".
cpu_of() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(out)
print("CPU=%.3f" % (r.ru_utime + r.ru_stime))
PY
}

run_wrk() {  # $1 = depth; prints "rps cpu"
    local script=()
    [[ $1 -gt 1 ]] && script=(-s "$HERE/pipeline.lua")
    local out
    out=$(cpu_of timeout $((SECS + 20)) taskset -c 0 wrk -t1 -c$CONNS -d${SECS}s "${script[@]}" "$URL" -- "$1")
    echo "$(grep -oP 'Requests/sec:\s*\K[0-9.]+' <<<"$out") $(grep -oP 'CPU=\K[0-9.]+' <<<"$out")"
}

run_load() {  # $1 = depth, $2 = pipeline mode; prints "rps cpu"
    local out
    out=$(cpu_of timeout $((SECS + 20)) taskset -c 0 "$BIN" -t 1 -c $CONNS -d ${SECS}s --warmup 0s \
        --pipeline "$1" --pipeline-mode "$2" --no-progress --json - "$URL")
    local rps
    rps=$(python3 -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t[:t.rindex("}")+1])["requests_per_s"])' <<<"${out%CPU=*}")
    echo "$rps $(grep -oP 'CPU=\K[0-9.]+' <<<"$out")"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

compare() {  # $1 = label, $2 = depth, $3 = coreloop-load pipeline mode (default window)
    local lr=() lc=() wr=() wc=()
    for round in $(seq "$ROUNDS"); do
        read -r r c < <(run_load "$2" "${3:-window}"); lr+=("$r"); lc+=("$c")
        echo "  round $round coreloop-load: $r req/s, $c CPU-s" >&2
        read -r r c < <(run_wrk "$2"); wr+=("$r"); wc+=("$c")
        echo "  round $round wrk:           $r req/s, $c CPU-s" >&2
    done
    local l w lcpu wcpu
    l=$(printf '%s\n' "${lr[@]}" | median); w=$(printf '%s\n' "${wr[@]}" | median)
    lcpu=$(printf '%s\n' "${lc[@]}" | median); wcpu=$(printf '%s\n' "${wc[@]}" | median)
    python3 - "$1" "$l" "$w" "$lcpu" "$wcpu" "$SECS" <<'PY'
import sys
label, l, w, lc, wc, secs = sys.argv[1], *map(float, sys.argv[2:])
lper, wper = l * secs / lc, w * secs / wc
print(f"| {label} | {l:,.0f} | {w:,.0f} | {l / w:.2f} | {lper:,.0f} | {wper:,.0f} | {lper / wper:.2f} |")
PY
}

rss_kib() { grep -oP 'VmRSS:\s*\K[0-9]+' "/proc/$1/status" 2>/dev/null || echo 0; }

# RSS of a client holding N connections, sampled mid-run; prints "rss_kib rps".
rss_run() {  # $1 = tool, $2 = connections
    ulimit -n 20000
    local secs=6 pid
    if [[ $1 == load ]]; then
        taskset -c 0 "$BIN" -t 1 -c "$2" -d ${secs}s --warmup 0s --no-progress --json "$WORK/big.json" "$URL" \
            >"$WORK/big.txt" 2>&1 &
    else
        taskset -c 0 wrk -t1 -c"$2" -d${secs}s "$URL" >"$WORK/big.txt" 2>&1 &
    fi
    pid=$!
    sleep 4
    local rss
    rss=$(rss_kib "$pid")
    timeout 30 tail --pid="$pid" -f /dev/null || kill "$pid"
    wait "$pid" || true
    echo "$rss $(grep -oP 'Requests/sec:\s*\K[0-9.]+|Requests/s\s+\K[0-9.]+' "$WORK/big.txt" | head -1)"
}

need
BIN=$(load_bin)
[[ -n ${TARGET_URL:-} ]] || start_nginx
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "client: $($BIN --version), $(wrk -v 2>&1 | head -1)"
echo "| scenario | coreloop-load req/s | wrk req/s | ratio | coreloop-load req per CPU-s | wrk req per CPU-s | ratio |"
echo "|---|---|---|---|---|---|---|"
for row in ${ROWS:-keepalive window batch}; do
    case $row in
        keepalive) compare "keep-alive, $CONNS conns" 1 ;;
        window) compare "pipelined x$DEPTH, $CONNS conns" "$DEPTH" ;;
        batch) compare "pipelined x$DEPTH batch, $CONNS conns" "$DEPTH" batch ;;
        *) echo "unknown row $row (keepalive, window, batch)" >&2; exit 2 ;;
    esac
done
echo
echo "| client | connections | RSS KiB | req/s |"
echo "|---|---|---|---|"
for tool in ${RSS_TOOLS:-load wrk}; do
    for n in 10 10000; do
        read -r rss rps < <(rss_run "$tool" "$n")
        echo "| $tool | $n | $rss | ${rps:-?} |"
    done
done
[[ -f "$WORK/big.json" ]] && python3 -c 'import json; r=json.load(open("'"$WORK/big.json"'")); print("coreloop-load at 10000: opened", r["connections"]["opened"], "errors", r["errors"], "connect p99 us", r["connections"]["connect_time"]["p99_us"])'
