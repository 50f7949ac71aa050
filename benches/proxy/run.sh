#!/usr/bin/env bash
# The TCP proxy (examples/tcp_proxy) against a direct connection to the same echo upstream
# (examples/echo), side by side: CONNS connections each round-trip MIB MiB; ROUNDS rounds,
# alternating direct and proxied; prints per round the wall throughput and, for the proxy,
# payload bytes per proxy CPU-second (utime+stime from /proc). Short by default (shared box).
#
#   cargo build --release -p coreloop-reactor --example tcp_proxy --example echo
#   benches/proxy/run.sh            # CONNS=8 MIB=64 ROUNDS=3 SHARDS=1
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${CONNS:-8} MIB=${MIB:-64} ROUNDS=${ROUNDS:-3} SHARDS=${SHARDS:-1}
bin=target/release/examples
tmp=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
pids=()
trap cleanup EXIT

addr_of() { # waits (bounded) for the `listening address=` line of $1
  for _ in $(seq 100); do
    a=$(sed -n 's/^listening address=//p' "$1")
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.05
  done
  echo "no address in $1" >&2; exit 1
}

"$bin/echo" --addr 127.0.0.1:0 --shards "$SHARDS" >"$tmp/echo" 2>/dev/null & pids+=($!)
up=$(addr_of "$tmp/echo")
"$bin/tcp_proxy" --addr 127.0.0.1:0 --upstream "$up" --shards "$SHARDS" >"$tmp/proxy" 2>/dev/null &
proxy_pid=$!; pids+=($proxy_pid)
via=$(addr_of "$tmp/proxy")

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)

for round in $(seq "$ROUNDS"); do
  for target in direct proxy; do
    addr=$up; [ "$target" = proxy ] && addr=$via
    before=$(cpu "$proxy_pid")
    secs=$(python3 benches/proxy/client.py "$addr" "$CONNS" "$MIB")
    after=$(cpu "$proxy_pid")
    bytes=$((CONNS * MIB * 1048576))
    awk -v t="$target" -v r="$round" -v b="$bytes" -v s="$secs" -v c=$((after - before)) -v k="$tck" 'BEGIN {
      line = sprintf("round=%d target=%s bytes=%d wall_s=%.3f MiB_per_s=%.0f", r, t, b, s, b / s / 1048576)
      if (t == "proxy") line = line sprintf(" proxy_cpu_s=%.2f MiB_per_proxy_cpu_s=%.0f", c / k, (c > 0 ? b / (c / k) / 1048576 : 0))
      print line }'
  done
done
