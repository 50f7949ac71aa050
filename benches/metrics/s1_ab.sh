#!/usr/bin/env bash
# S1 (keep-alive /plaintext, 256 connections, coreloop-load) against two coreloop binaries,
# side by side: 1 shard pinned to CPU 1, the client to CPU 0, rounds alternating A B A B,
# medians of requests/s and of requests per server CPU-second. For a change whose cost is
# expected to be small (e.g. two clock reads per request). Loopback only; runs bounded.
#
# Usage: benches/metrics/s1_ab.sh BIN_A BIN_B LOAD_BIN [ROUNDS] [SECONDS]   (5 rounds of 5 s)
set -euo pipefail

A=$1
B=$2
LOAD=$3
ROUNDS=${4:-5}
SECS=${5:-5}
PORT=${PORT:-18095}
WORK=$(mktemp -d /tmp/coreloop-s1ab.XXXXXX)
SERVER=""
cleanup() {
    [[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/coreloop.toml" <<CONF
[server]
shards = 1
balance = "reuseport"
offload_threads = 1
[timeouts]
idle = "300s"
[limits]
max_requests_per_connection = 0
[log]
level = "warn"
[[listener]]
name = "web"
address = "127.0.0.1:$PORT"
protocol = "http"
[[listener.route]]
path = "/plaintext"
static = { status = 200, body = "Hello, World!", content_type = "text/plain" }
CONF

cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

run() {  # prints "req/s req/CPU-s"
    taskset -c 1 "$1" serve --config "$WORK/coreloop.toml" 2>"$WORK/server.log" &
    SERVER=$!
    for _ in $(seq 100); do grep -q "running:" "$WORK/server.log" && break; sleep 0.1; done
    local before after rps
    before=$(cpu_s "$SERVER")
    timeout $((SECS + 30)) taskset -c 0 "$LOAD" -t 1 -c 256 -d "${SECS}s" --warmup 1s \
        --no-progress --json "$WORK/out.json" "http://127.0.0.1:$PORT/plaintext" >/dev/null 2>&1 || true
    after=$(cpu_s "$SERVER")
    rps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_s"])' "$WORK/out.json")
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
    SERVER=""
    # The warm-up second also burns server CPU: count it in the window.
    awk -v r="$rps" -v c="$(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }')" -v s="$SECS" \
        'BEGIN { printf "%.0f %.0f\n", r, (c > 0 ? r * (s + 1) / c : 0) }'
}

a_rps=() b_rps=() a_cpu=() b_cpu=()
for r in $(seq "$ROUNDS"); do
    read -r x y < <(run "$A"); a_rps+=("$x"); a_cpu+=("$y"); echo "round $r A: $x req/s, $y req/CPU-s"
    read -r x y < <(run "$B"); b_rps+=("$x"); b_cpu+=("$y"); echo "round $r B: $x req/s, $y req/CPU-s"
done
ar=$(printf '%s\n' "${a_rps[@]}" | median); br=$(printf '%s\n' "${b_rps[@]}" | median)
ac=$(printf '%s\n' "${a_cpu[@]}" | median); bc=$(printf '%s\n' "${b_cpu[@]}" | median)
awk -v ar="$ar" -v br="$br" -v ac="$ac" -v bc="$bc" 'BEGIN {
    printf "median req/s: A %.0f, B %.0f, B/A %.3f; median req/CPU-s: A %.0f, B %.0f, B/A %.3f\n",
        ar, br, br / ar, ac, bc, bc / ac }'
