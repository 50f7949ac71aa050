#!/usr/bin/env bash
# HTTP reverse proxies side by side in front of the same upstream (the coreloop binary serving
# /plaintext, 1 shard): coreloop's `proxy` route, nginx `proxy_pass` with upstream keepalive,
# HAProxy `mode http`; each proxy one worker, pinned to CPU 0 (the upstream and the client share
# CPU 1). The client is wrk (CONNS connections, SECS seconds per run); ROUNDS rounds, the
# targets alternating. Prints requests per second and requests per proxy CPU-second
# (utime+stime of the proxy's processes from /proc). Short by default (shared box).
#
#   cargo build --release --bin coreloop
#   benches/proxy/http.sh            # CONNS=32 SECS=5 ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${CONNS:-32} SECS=${SECS:-5} ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-"direct coreloop nginx haproxy"}
bin=${BIN:-target/release/coreloop}
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
cat >"$tmp/upstream.toml" <<TOML
[server]
shards = 1
[[listener]]
name = "web"
address = "127.0.0.1:$up_port"
[[listener.route]]
path = "/plaintext"
static = { status = 200, body = "Hello, World!", content_type = "text/plain" }
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

for round in $(seq "$ROUNDS"); do
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
