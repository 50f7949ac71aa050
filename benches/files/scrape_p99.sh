#!/usr/bin/env bash
# Issue 10 §6: does a /metrics scrape stall the shard it lands on? One shard (so every
# connection shares it with the scrape), 9,000 idle keep-alive connections (each scrape lists
# their fds), then /plaintext over 256 keep-alive connections with coreloop-load, without and
# with a scrape every 100 ms. Open loop at RATE requests/s (default 10000, well below what one
# shard serves), latency from the intended send time, so a stall shows as latency rather than
# as a slower closed loop. Rounds alternate; medians of p99 and p99.9.
#
# Usage: benches/files/scrape_p99.sh [ROUNDS] [SECONDS] [BINARY]
#   defaults: 3 rounds of 5 s, target/release/coreloop (pass another build to compare)
set -euo pipefail

ROUNDS=${1:-3}
SECS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --release --bin coreloop --bin coreloop-load >&2)
CORELOOP=${3:-$TARGET/release/coreloop}
LOAD=$TARGET/release/coreloop-load
PORT=18093
IDLE=9000
WORK=$(mktemp -d /tmp/coreloop-scrape.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ulimit -n 20000
"$CORELOOP" print-config \
    | sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/" -e 's/127.0.0.1:9000/127.0.0.1:0/' \
          -e 's/shards = "auto"/shards = 1/' >"$WORK/coreloop.toml"
taskset -c 1 "$CORELOOP" --config "$WORK/coreloop.toml" 2>"$WORK/coreloop.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/plaintext" && break; sleep 0.1; done

# Idle connections, held open by a helper until its stdin closes.
mkfifo "$WORK/hold"
python3 "$ROOT/benches/compare/hold_idle.py" 127.0.0.1 $PORT $IDLE <"$WORK/hold" >"$WORK/held" &
PIDS+=($!)
exec 3>"$WORK/hold"
for _ in $(seq 600); do grep -q ready "$WORK/held" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/held" || { echo "idle connections never came up" >&2; exit 1; }

scraper() {
    while :; do curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"; sleep 0.1; done
}

# One load run; prints "p99_us p999_us".
measure() {
    taskset -c 0 "$LOAD" -c 256 -t 1 -d "${SECS}s" --warmup 1s --rate "${RATE:-10000}" --no-progress \
        --json "$WORK/run.json" "http://127.0.0.1:$PORT/plaintext" >/dev/null
    python3 -c 'import json, sys; l = json.load(open(sys.argv[1]))["latency"]; print(l["p99_us"], l["p99_9_us"])' "$WORK/run.json"
}

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

quiet99=() quiet999=() busy99=() busy999=()
for round in $(seq "$ROUNDS"); do
    read -r p99 p999 < <(measure)
    echo "round $round no scrape: p99 ${p99}us p99.9 ${p999}us" >&2
    quiet99+=("$p99") quiet999+=("$p999")
    scraper &
    scraper_pid=$!
    read -r p99 p999 < <(measure)
    kill "$scraper_pid"
    wait "$scraper_pid" 2>/dev/null || true
    echo "round $round scrape/100ms: p99 ${p99}us p99.9 ${p999}us" >&2
    busy99+=("$p99") busy999+=("$p999")
done
exec 3>&-

echo "binary: $CORELOOP ($($CORELOOP --version)); 1 shard, $IDLE idle connections, 256 loaded at ${RATE:-10000}/s"
echo "| /plaintext, 256 conns | p99 us | p99.9 us |"
echo "|---|---|---|"
echo "| no scrape | $(median "${quiet99[@]}") | $(median "${quiet999[@]}") |"
echo "| scrape every 100 ms | $(median "${busy99[@]}") | $(median "${busy999[@]}") |"
