#!/usr/bin/env bash
# Machine-noise-free costs per request (issue 16): user-space instructions (callgrind) and
# syscalls (`strace -c -f`) per request, for coreloop (1 shard), may_minihttp (1 worker) and the
# epoll floor, on S1 (keep-alive, one request in flight per connection) and S2 (pipelined x16).
#
# Each server runs twice per scenario under the tool, once for N and once for 2N requests from
# coreloop-load (same connections, no warm-up); the difference divided by N is the cost of one
# request, with start-up, connection set-up and shutdown cancelled out. Loopback only, every run
# bounded by `timeout`.
#
# Usage: benches/compare/instructions.sh [N]   (default 20000)
# Env: SERVERS (default "coreloop may floor"), SCENARIOS (default "S1 S2"), CONNS (default 64).
set -euo pipefail

N=${1:-20000}
SERVERS=${SERVERS:-coreloop may floor}
SCENARIOS=${SCENARIOS:-S1 S2}
CONNS=${CONNS:-64}
PORT=18095
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/coreloop-instructions.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v valgrind >/dev/null && command -v strace >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind strace >/dev/null
}

target=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --release --bin coreloop --bin coreloop-load >&2)
# Only the peers asked for: a coreloop-only run (SERVERS=coreloop) builds neither.
mkdir -p "$target/peers"
if [[ " $SERVERS " == *" may "* ]]; then
    (cd "$HERE/may_minihttp" && CARGO_TARGET_DIR=$target/peers cargo build --release -q >&2)
fi
if [[ " $SERVERS " == *" floor "* ]]; then
    cc -O2 -g -o "$target/peers/floor" "$HERE/floor.c"
fi
LOAD=$target/release/coreloop-load

cat >"$WORK/coreloop.toml" <<CONF
[server]
shards = 1
balance = "reuseport"
offload_threads = 1

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

server_cmd() {  # $1 server
    case $1 in
        coreloop) echo "$target/release/coreloop --config $WORK/coreloop.toml" ;;
        may) echo "$target/peers/release/coreloop-peer-may-minihttp $PORT" ;;
        floor) echo "$target/peers/floor $PORT" ;;
    esac
}

wait_up() {
    for _ in $(seq 600); do
        curl -fs "http://127.0.0.1:$PORT/plaintext" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server did not come up" >&2
    exit 1
}

# Runs the server under a tool, sends $3 requests (plus the one wait_up sent), stops it with
# SIGINT (coreloop drains; the peers die) and leaves the tool's output in $WORK/out.
run_once() {  # $1 tool (callgrind|strace), $2 server, $3 requests, $4 pipeline
    rm -f "$WORK"/out*
    local cmd
    cmd=$(server_cmd "$2")
    if [[ $1 == callgrind ]]; then
        timeout 600 taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$WORK/out.%p" \
            --trace-children=no $cmd 2>"$WORK/tool.log" &
    else
        timeout 600 taskset -c 1 strace -c -f -o "$WORK/out" $cmd 2>"$WORK/tool.log" &
    fi
    local pid=$!
    wait_up
    timeout 600 taskset -c 0 "$LOAD" -t 1 -c "$CONNS" --pipeline "$4" --warmup 0s -d 300s \
        --requests "$3" --no-progress "http://127.0.0.1:$PORT/plaintext" >"$WORK/load.txt" 2>&1
    # The server itself, not a wrapper: under `timeout`, valgrind runs the server in its own
    # process, strace forks it as its child (and writes its summary once the child is gone).
    local server
    server=$(pgrep -P "$pid" | head -1)
    [[ $1 == strace ]] && server=$(pgrep -P "$server" | head -1)
    kill -INT "$server"
    wait "$pid" 2>/dev/null || true
}

instructions() {  # prints the Ir total of the dump in $WORK
    callgrind_annotate "$WORK"/out.* 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

syscalls() {  # prints the total syscall count strace -c counted
    awk '$NF == "total" { print ($4 ~ /^[0-9]+$/ ? $4 : $3); exit }' "$WORK/out"
}

per_request() {  # $1 tool, $2 server, $3 pipeline
    local a b
    local measure=syscalls
    [[ $1 == callgrind ]] && measure=instructions
    run_once "$1" "$2" "$N" "$3"
    a=$($measure)
    run_once "$1" "$2" $((2 * N)) "$3"
    b=$($measure)
    awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }'
}

echo "N=$N requests (and 2N) over $CONNS connections; coreloop $("$target/release/coreloop" --version)"
echo
echo "| scenario | server | instructions per request | syscalls per request |"
echo "|---|---|---|---|"
for scenario in $SCENARIOS; do
    pipeline=1
    [[ $scenario == S2 ]] && pipeline=16
    for server in $SERVERS; do
        ir=$(per_request callgrind "$server" "$pipeline")
        sc=$(per_request strace "$server" "$pipeline")
        echo "| $scenario (pipeline $pipeline) | $server | $ir | $sc |"
    done
done
