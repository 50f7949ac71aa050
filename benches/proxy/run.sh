#!/usr/bin/env bash
# TCP proxies side by side in front of the same echo upstream (examples/echo): a direct
# connection, examples/tcp_proxy (issue 13), the coreloop binary's `protocol = "tcp-proxy"`
# listener (issue 14) and, when installed, HAProxy in TCP mode; each proxy one worker/shard.
# CONNS connections each round-trip MIB MiB; ROUNDS rounds, the targets alternating; prints per
# round the wall throughput and, for a proxy, payload bytes per proxy CPU-second
# (utime+stime from /proc). Short by default (shared box).
#
#   cargo build --release -p coreloop-reactor --example tcp_proxy --example echo
#   cargo build --release --bin coreloop
#   benches/proxy/run.sh            # CONNS=8 MIB=64 ROUNDS=3 SHARDS=1
#   TARGETS="direct coreloop haproxy" benches/proxy/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${CONNS:-8} MIB=${MIB:-64} ROUNDS=${ROUNDS:-3} SHARDS=${SHARDS:-1}
TARGETS=${TARGETS:-"direct proxy coreloop haproxy"}
# The coreloop listener's read size and high-water mark: by default those of examples/tcp_proxy
# (the reactor's defaults), not the config file's HTTP-minded 4KiB / 64KiB.
CL_READ=${CL_READ:-16KiB} CL_HWM=${CL_HWM:-256KiB}
bin=target/release/examples
tmp=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
pids=()
trap cleanup EXIT

addr_of() { # waits (bounded) for the `listening address=` line of $1 (a name: that listener's)
  for _ in $(seq 100); do
    a=$(sed -n "s/.*listening ${2:+name=$2 .*}address=\([^ ]*\).*/\1/p" "$1" | tail -1)
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.05
  done
  echo "no address in $1" >&2; exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { # bounded wait until 127.0.0.1:$1 accepts
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

"$bin/echo" --addr 127.0.0.1:0 --shards "$SHARDS" >"$tmp/echo" 2>/dev/null & pids+=($!)
up=$(addr_of "$tmp/echo")
declare -A via pid
via[direct]=$up

for target in $TARGETS; do
  case $target in
    proxy)
      "$bin/tcp_proxy" --addr 127.0.0.1:0 --upstream "$up" --shards "$SHARDS" >"$tmp/proxy" 2>/dev/null &
      pid[proxy]=$!; pids+=($!)
      via[proxy]=$(addr_of "$tmp/proxy") ;;
    coreloop)
      cat >"$tmp/coreloop.toml" <<TOML
[server]
shards = $SHARDS
[[upstream]]
name = "echo"
servers = ["$up"]
[[listener]]
name = "tcp"
address = "127.0.0.1:0"
protocol = "tcp-proxy"
upstream = "echo"
[listener.limits]
read_buffer = "$CL_READ"
write_high_water = "$CL_HWM"
TOML
      target/release/coreloop --config "$tmp/coreloop.toml" >/dev/null 2>"$tmp/coreloop" &
      pid[coreloop]=$!; pids+=($!)
      via[coreloop]=$(addr_of "$tmp/coreloop" tcp) ;;
    haproxy)
      command -v haproxy >/dev/null || { echo "haproxy not installed (.ci/setup installs it); skipped" >&2; continue; }
      port=$(free_port)
      cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread $SHARDS
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen echo
  bind 127.0.0.1:$port
  server echo $up
CFG
      haproxy -f "$tmp/haproxy.cfg" -db >/dev/null 2>"$tmp/haproxy" &
      pid[haproxy]=$!; pids+=($!)
      wait_port "$port"
      via[haproxy]=127.0.0.1:$port ;;
  esac
done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)

for round in $(seq "$ROUNDS"); do
  for target in $TARGETS; do
    [ -n "${via[$target]:-}" ] || continue
    p=${pid[$target]:-}
    before=0; [ -n "$p" ] && before=$(cpu "$p")
    secs=$(python3 benches/proxy/client.py "${via[$target]}" "$CONNS" "$MIB")
    after=0; [ -n "$p" ] && after=$(cpu "$p")
    bytes=$((CONNS * MIB * 1048576))
    awk -v t="$target" -v r="$round" -v b="$bytes" -v s="$secs" -v c=$((after - before)) -v k="$tck" -v p="$p" 'BEGIN {
      line = sprintf("round=%d target=%s bytes=%d wall_s=%.3f MiB_per_s=%.0f", r, t, b, s, b / s / 1048576)
      if (p != "") line = line sprintf(" proxy_cpu_s=%.2f MiB_per_proxy_cpu_s=%.0f", c / k, (c > 0 ? b / (c / k) / 1048576 : 0))
      print line }'
  done
done
