#!/usr/bin/env bash
# Bytes per server CPU-second for a 20 MB file over TLS, coreloop (files route) against nginx
# (static file), one shard / one worker pinned to CPU 0, curl on CPU 1 fetching the file
# COUNT times over one keep-alive connection. Prints one line per server per round.
# Usage: benches/tls/download.sh [COUNT=20] [ROUNDS=3] [ecdsa|rsa]
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-20}
rounds=${2:-3}
kind=${3:-ecdsa}
. benches/tls/common.sh
make_cert "$kind"
mkdir "$dir/www"
head -c 20000000 /dev/urandom > "$dir/www/big.bin"
# nginx workers run as nobody: they must be able to read the file and its directories.
chmod 755 "$dir" "$dir/www"; chmod 644 "$dir/www/big.bin"
cat > "$dir/coreloop.toml" <<TOML
[server]
shards = 1
[[listener]]
name = "web"
address = "127.0.0.1:18443"
tls = { cert = "$dir/cert.pem", key = "$dir/key.pem" }
[[listener.route]]
path = "/f/*"
files = { root = "$dir/www" }
TOML
cat > "$dir/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    server {
        listen 127.0.0.1:18444 ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location /f/ { alias $dir/www/; }
    }
}
NGINX
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
    local name=$1 port=$2 pid=$3
    local urls=()
    for _ in $(seq "$count"); do urls+=("https://localhost:$port/f/big.bin" -o /dev/null); done
    local before; before=$(cpu_ticks "$pid")
    local bytes
    bytes=$(taskset -c 1 curl -sS --max-time 120 --cacert "$dir/cert.pem" -w '%{size_download}\n' "${urls[@]}" | awk '{s += $1} END {print s}')
    local after; after=$(cpu_ticks "$pid")
    awk -v b="$bytes" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v name="$name" \
        'BEGIN { printf "%s: %d bytes, %.2f CPU-s, %.0f MB per CPU-second\n", name, b, t / hz, b / 1e6 / (t / hz) }'
}
for round in $(seq 1 "$rounds"); do
    echo "== round $round ($kind, ${count} x 20 MB)"
    taskset -c 0 "$bin" --config "$dir/coreloop.toml" 2>"$dir/coreloop.log" &
    cl=$!
    for _ in $(seq 100); do grep -q "running:" "$dir/coreloop.log" && break; sleep 0.1; done
    run coreloop 18443 "$cl"
    kill -TERM "$cl"; wait "$cl" || true
    taskset -c 0 nginx -c "$dir/nginx.conf" -e "$dir/nginx-error.log" &
    for _ in $(seq 100); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
    sleep 0.3
    worker=$(pgrep -P "$(cat "$dir/nginx.pid")" | head -1)
    run "nginx worker" 18444 "$worker"
    kill -QUIT "$(cat "$dir/nginx.pid")"; wait || true
    rm -f "$dir/nginx.pid"
done
