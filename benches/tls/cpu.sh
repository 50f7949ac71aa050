#!/usr/bin/env bash
# Requests per server CPU-second over TLS, coreloop against nginx, one shard / one worker
# each pinned to CPU 0, wrk pinned to CPU 1, the same certificate. Two modes:
#   keepalive  wrk's default keep-alive connections (S1 over TLS: GET /plaintext)
#   handshake  `Connection: close`: a new connection per request; wrk resumes its TLS
#              session, so these are resumed handshakes (the script prints the counts)
#   full       `openssl s_time -new`: one connection after the other, each a full handshake
#              and one GET (s_time never resumes with -new)
# CPU-seconds are the server's utime+stime over the run (/proc/PID/stat), so a shared box
# changes them less than it changes throughput. Prints one line per server per round.
# Usage: benches/tls/cpu.sh [keepalive|handshake] [SECONDS=10] [ROUNDS=3] [ecdsa|rsa]
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-keepalive}
secs=${2:-10}
rounds=${3:-3}
kind=${4:-ecdsa}
. benches/tls/common.sh
make_cert "$kind"
cat > "$dir/coreloop.toml" <<TOML
[server]
shards = 1
[[listener]]
name = "web"
address = "127.0.0.1:18443"
tls = { cert = "$dir/cert.pem", key = "$dir/key.pem" }
[[listener.route]]
path = "/plaintext"
static = { body = "Hello, World!" }
[[listener.route]]
path = "/metrics"
metrics = {}
TOML
cat > "$dir/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:18444 ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location /plaintext { return 200 "Hello, World!"; }
    }
}
NGINX
extra=()
[ "$mode" = handshake ] && extra=(-H "Connection: close")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
    local name=$1 port=$2 pid=$3
    local before; before=$(cpu_ticks "$pid")
    local out requests errors=""
    if [ "$mode" = full ]; then
        out=$(taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" -www /plaintext 2>&1)
        requests=$(awk '/connections in .* real seconds/ {print $1}' <<<"$out")
    else
        out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" "${extra[@]}" "https://localhost:$port/plaintext")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        errors=$(grep -E "Socket errors|Non-2xx" <<<"$out" | tr '\n' ' ' || true)
    fi
    local after; after=$(cpu_ticks "$pid")
    awk -v n="$requests" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v name="$name" -v e="$errors" \
        'BEGIN { printf "%s: %d requests, %.2f CPU-s, %.0f requests per CPU-second %s\n", name, n, t / hz, n / (t / hz), e }'
}
for round in $(seq 1 "$rounds"); do
    echo "== round $round ($mode, $kind, ${secs}s)"
    taskset -c 0 "$bin" --config "$dir/coreloop.toml" 2>"$dir/coreloop.log" &
    cl=$!
    for _ in $(seq 100); do grep -q "running:" "$dir/coreloop.log" && break; sleep 0.1; done
    run coreloop 18443 "$cl"
    # Whether the client resumed sessions (a handshake run must do full ones).
    curl -sk "https://localhost:18443/metrics" | grep '^coreloop_tls_handshakes_total' | tr '\n' ' '
    echo
    kill -TERM "$cl"; wait "$cl" || true
    taskset -c 0 nginx -c "$dir/nginx.conf" -e "$dir/nginx-error.log" &
    for _ in $(seq 100); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
    sleep 0.3
    worker=$(pgrep -P "$(cat "$dir/nginx.pid")" | head -1)
    run "nginx worker" 18444 "$worker"
    kill -QUIT "$(cat "$dir/nginx.pid")"; wait || true
    rm -f "$dir/nginx.pid"
done
