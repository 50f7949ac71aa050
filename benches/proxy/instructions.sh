#!/usr/bin/env bash
# Machine-noise-free cost of one proxied request (issue 14): user-space instructions of the
# proxy process (callgrind), for coreloop's `proxy` route (pooled upstream connections) and
# nginx `proxy_pass` with upstream keepalive (one worker, master_process off), in front of the
# same upstream (the coreloop binary serving /plaintext, not measured). Each proxy runs twice
# under callgrind, for N and 2N requests from coreloop-load over CONNS keep-alive connections;
# (2N - N) / N cancels start-up, connection set-up and shutdown. Loopback only, bounded by
# `timeout`.
#
#   cargo build --release --bin coreloop --bin coreloop-load
#   benches/proxy/instructions.sh [N]     # default N=5000; PROXIES="coreloop nginx", CONNS=32
#   KEEP=dir: keeps each 2N run's callgrind output (one process) as dir/<proxy>.out, and its per-function
#   breakdown as dir/<proxy>.txt (`callgrind_annotate`, exclusive), to compare profiles.
set -euo pipefail
N=${1:-5000}
PROXIES=${PROXIES:-coreloop nginx}
CONNS=${CONNS:-32}
cd "$(dirname "$0")/../.."
bin=target/release/coreloop
load=target/release/coreloop-load
work=$(mktemp -d /tmp/coreloop-proxy-ir.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
up=18196 px=18197

wait_port() { # bounded wait until 127.0.0.1:$1 accepts
  for _ in $(seq 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

cat >"$work/up.toml" <<TOML
[server]
shards = 1
[log]
level = "warn"
[[listener]]
name = "web"
address = "127.0.0.1:$up"
[[listener.route]]
path = "/plaintext"
static = { status = 200, body = "Hello, World!", content_type = "text/plain" }
TOML
cat >"$work/proxy.toml" <<TOML
[server]
shards = 1
[log]
level = "warn"
[[listener]]
name = "web"
address = "127.0.0.1:$px"
[[listener.route]]
path = "/*"
proxy = { upstream = "app" }
[[upstream]]
name = "app"
servers = ["127.0.0.1:$up"]
TOML
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$up; keepalive 32; }
  server {
    listen 127.0.0.1:$px;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF

taskset -c 1 "$bin" -c "$work/up.toml" 2>/dev/null &
wait_port "$up"

proxy_cmd() {
  case $1 in
    coreloop) echo "$bin -c $work/proxy.toml" ;;
    nginx) echo "nginx -p $work/nginx -c $work/nginx.conf" ;;
  esac
}

run_once() { # $1 proxy, $2 requests: prints the proxy's instruction total
  rm -f "$work"/out.*
  timeout 600 taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$work/out.%p" \
    $(proxy_cmd "$1") 2>"$work/tool.log" &
  local pid=$!
  wait_port "$px"
  timeout 600 taskset -c 1 "$load" -t 1 -c "$CONNS" --warmup 0s -d 300s --requests "$2" \
    --no-progress "http://127.0.0.1:$px/plaintext" >"$work/load.txt" 2>&1
  local proxy
  proxy=$(pgrep -P "$pid" | head -1)
  kill -INT "$proxy" 2>/dev/null || kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  if [ -n "${KEEP:-}" ] && [ "$2" -gt "$N" ]; then
    mkdir -p "$KEEP"
    for f in "$work"/out.*; do cp "$f" "$KEEP/$1.out"; done
    callgrind_annotate --threshold=99 "$KEEP/$1.out" >"$KEEP/$1.txt" 2>/dev/null || true
  fi
  callgrind_annotate "$work"/out.* 2>/dev/null |
    awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

echo "N=$N requests (and 2N) over $CONNS connections"
echo "| proxy | instructions per proxied request |"
echo "|---|---|"
for proxy in $PROXIES; do
  a=$(run_once "$proxy" "$N")
  b=$(run_once "$proxy" $((2 * N)))
  awk -v p="$proxy" -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "| %s | %.0f |\n", p, (b - a) / n }'
done
