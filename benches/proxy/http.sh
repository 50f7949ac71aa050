#!/usr/bin/env bash
# HTTP reverse proxies side by side in front of the same upstream (the coreloop binary serving
# /plaintext, 1 shard): coreloop's `proxy` route, nginx `proxy_pass` with upstream keepalive,
# HAProxy `mode http`; each proxy one worker, pinned to CPU 0 (the upstream and the client share
# CPU 1). The client is wrk (CONNS connections, SECS seconds per run); ROUNDS rounds, the
# targets alternating. Prints requests per second and requests per proxy CPU-second
# (utime+stime of the proxy's processes from /proc). Short by default (shared box).
#
# MODE=latency: coreloop-load in open loop instead (the same client, CONNS connections, RATE
# requests per second for every target, SECS seconds after 1 s of warm-up): p50 and p99 per
# round, and the p99 each proxy adds over `direct` (the upstream itself) in the same round.
# MODE=body: coreloop-load in closed loop over BODY_CONNS connections fetching a BODY_MB MB
# file from the upstream (its `files` route): bytes per proxy CPU-second.
#
#   cargo build --release --bin coreloop --bin coreloop-load
#   benches/proxy/http.sh            # CONNS=32 SECS=5 ROUNDS=3
#   MODE=latency RATE=5000 benches/proxy/http.sh
#   MODE=body BODY_CONNS=4 BODY_MB=20 benches/proxy/http.sh
#   READ_BUFFER=16KiB: the coreloop proxy's `[limits] read_buffer` (its read size)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${CONNS:-32} SECS=${SECS:-5} ROUNDS=${ROUNDS:-3}
MODE=${MODE:-rps} RATE=${RATE:-5000} BODY_CONNS=${BODY_CONNS:-4} BODY_MB=${BODY_MB:-20}
TARGETS=${TARGETS:-"direct coreloop nginx haproxy"}
bin=${BIN:-target/release/coreloop}
load=${LOAD:-target/release/coreloop-load}
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # bounded wait until 127.0.0.1:$1 accepts
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}
cpu_ticks() { # utime+stime of the given pids and their children
  local total=0 p
  for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

up_port=$(free_port)
mkdir -p "$tmp/files"
[ "$MODE" = body ] && head -c $((BODY_MB * 1000000)) /dev/urandom >"$tmp/files/big"
cat >"$tmp/upstream.toml" <<TOML
[server]
shards = 1
[[listener]]
name = "web"
address = "127.0.0.1:$up_port"
[[listener.route]]
path = "/plaintext"
static = { status = 200, body = "Hello, World!", content_type = "text/plain" }
[[listener.route]]
path = "/files/*"
files = { root = "$tmp/files" }
TOML
taskset -c 1 "$bin" -c "$tmp/upstream.toml" 2>/dev/null & pids+=($!)
wait_port "$up_port"

declare -A port pid
port[direct]=$up_port
for target in $TARGETS; do
  p=$(free_port)
  case $target in
    direct) continue ;;
    coreloop)
      cat >"$tmp/coreloop.toml" <<TOML
[server]
shards = 1
[[listener]]
name = "web"
address = "127.0.0.1:$p"
[[listener.route]]
path = "/*"
proxy = { upstream = "app" }
[[upstream]]
name = "app"
servers = ["127.0.0.1:$up_port"]
TOML
      # READ_BUFFER: the coreloop proxy's `[limits] read_buffer` (default 4KiB).
      [ -n "${READ_BUFFER:-}" ] && printf '[limits]\nread_buffer = "%s"\n' "$READ_BUFFER" >>"$tmp/coreloop.toml"
      taskset -c 0 "$bin" -c "$tmp/coreloop.toml" 2>/dev/null & pid[coreloop]=$!; pids+=($!) ;;
    nginx)
      mkdir -p "$tmp/nginx"
      cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $tmp/nginx/error.log;
pid $tmp/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$up_port; keepalive 32; }
  server {
    listen 127.0.0.1:$p;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
      taskset -c 0 nginx -p "$tmp/nginx" -c "$tmp/nginx.conf" 2>/dev/null & pid[nginx]=$!; pids+=($!) ;;
    haproxy)
      cat >"$tmp/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend web
  bind 127.0.0.1:$p
  default_backend app
backend app
  server s1 127.0.0.1:$up_port
CONF
      taskset -c 0 haproxy -f "$tmp/haproxy.cfg" 2>/dev/null & pid[haproxy]=$!; pids+=($!) ;;
  esac
  port[$target]=$p
  wait_port "$p"
done

json() { # $1 file, $2 python expression over the report `r`
  python3 -c "import json,sys; r=json.load(open('$1')); print($2)"
}

latency_round() { # one round of MODE=latency
  local round=$1 target direct_p99=""
  for target in $TARGETS; do
    taskset -c 1 "$load" -t 1 -c "$CONNS" --rate "$RATE" --warmup 1s -d "${SECS}s" --no-progress \
      --json "$tmp/lat.json" "http://127.0.0.1:${port[$target]}/plaintext" >/dev/null 2>&1 || true
    local p50 p99 errs
    p50=$(json "$tmp/lat.json" "r['latency']['p50_us']")
    p99=$(json "$tmp/lat.json" "r['latency']['p99_us']")
    errs=$(json "$tmp/lat.json" "r['requests']['failed']")
    [ "$target" = direct ] && direct_p99=$p99
    local added=""
    [ -n "$direct_p99" ] && [ "$target" != direct ] && added=", p99 added $((p99 - direct_p99)) us"
    echo "round $round $target: $RATE req/s, p50 $p50 us, p99 $p99 us$added, failed $errs"
  done
}

body_round() { # one round of MODE=body
  local round=$1 target
  for target in $TARGETS; do
    local before=0
    [ "$target" != direct ] && before=$(cpu_ticks "${pid[$target]}")
    taskset -c 1 "$load" -t 1 -c "$BODY_CONNS" --warmup 0s -d "${SECS}s" --no-progress \
      --json "$tmp/body.json" "http://127.0.0.1:${port[$target]}/files/big" >/dev/null 2>&1 || true
    local bytes ok failed
    bytes=$(json "$tmp/body.json" "r['bytes_read']")
    ok=$(json "$tmp/body.json" "r['requests']['ok']")
    failed=$(json "$tmp/body.json" "r['requests']['failed']")
    if [ "$target" = direct ]; then
      echo "round $round $target: $ok bodies, $((bytes / SECS / 1000000)) MB/s, failed $failed"
    else
      local ticks hz per
      ticks=$(( $(cpu_ticks "${pid[$target]}") - before ))
      hz=$(getconf CLK_TCK)
      per=$(python3 -c "print(round($bytes / 1e6 / max($ticks / $hz, 0.001)))")
      echo "round $round $target: $ok bodies, $((bytes / SECS / 1000000)) MB/s, $per MB per proxy CPU-second, failed $failed"
    fi
  done
}

for round in $(seq "$ROUNDS"); do
  if [ "$MODE" = latency ]; then latency_round "$round"; continue; fi
  if [ "$MODE" = body ]; then body_round "$round"; continue; fi
  for target in $TARGETS; do
    before=0
    [ "$target" != direct ] && before=$(cpu_ticks "${pid[$target]}")
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:${port[$target]}/plaintext")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    if [ "$target" = direct ]; then
      echo "round $round $target: $rps req/s $errors"
    else
      ticks=$(( $(cpu_ticks "${pid[$target]}") - before ))
      hz=$(getconf CLK_TCK)
      per=$(python3 -c "print(round($reqs / max($ticks / $hz, 0.001)))")
      echo "round $round $target: $rps req/s, $per requests per proxy CPU-second $errors"
    fi
  done
done
