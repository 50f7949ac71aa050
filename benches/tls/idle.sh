#!/usr/bin/env bash
# Resident memory per idle keep-alive TLS connection: coreloop (rustls) against nginx
# (OpenSSL), one worker each, the same ECDSA P-256 (or RSA 2048) certificate, N connections
# that each completed one request and then stay open, quiet. Prints KiB per connection
# ((RSS with N open - RSS with 1 open) / N), for each server, `ROUNDS` times.
# Usage: benches/tls/idle.sh [N=10000] [ROUNDS=3] [ecdsa|rsa]
# Needs: openssl, nginx (Debian's; not started as a service: run here on loopback only),
# python3. Bounded: every wait has a deadline; connections close when the client exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000}
rounds=${2:-3}
kind=${3:-ecdsa}
# N client sockets in one process and N server sockets in another: each needs N fds.
ulimit -n "$(ulimit -Hn)"
. benches/tls/common.sh
make_cert "$kind"

cat > "$dir/coreloop.toml" <<TOML
[server]
shards = 1
max_connections = $((n + 1000))
[timeouts]
idle = "600s"
[[listener]]
name = "web"
address = "127.0.0.1:18443"
tls = { cert = "$dir/cert.pem", key = "$dir/key.pem" }
[[listener.route]]
path = "/plaintext"
static = { body = "Hello, World!" }
TOML

cat > "$dir/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections $((n + 1000)); }
http {
    access_log off;
    keepalive_timeout 600s;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:18444 ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location /plaintext { return 200 "Hello, World!"; }
    }
}
NGINX

# Opens N TLS connections, one request each, then holds them until stdin closes; prints
# "ready" after the first connection and "held N" after all of them.
cat > "$dir/hold.py" <<'PY'
import socket, ssl, sys
port, n, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
held = []
def one():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                        server_hostname="localhost")
    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = b""
    while not got.endswith(b"Hello, World!"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("closed early")
        got += chunk
    held.append(s)
one()
print("ready", flush=True)
sys.stdin.readline()
for _ in range(n - 1):
    one()
print("held", len(held), flush=True)
sys.stdin.readline()
PY

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# measure NAME PORT PID: prints KiB per idle connection.
measure() {
    local name=$1 port=$2 pid=$3
    coproc HOLD { timeout 600 python3 "$dir/hold.py" "$port" "$n" "$dir/cert.pem"; }
    read -r -t 60 line <&"${HOLD[0]}"
    [ "$line" = ready ] || { echo "$name: no first connection" >&2; return 1; }
    sleep 0.5
    local before; before=$(rss_kib "$pid")
    echo go >&"${HOLD[1]}"
    read -r -t 600 line <&"${HOLD[0]}"
    sleep 1
    local after; after=$(rss_kib "$pid")
    echo done >&"${HOLD[1]}"
    wait "$HOLD_PID" 2>/dev/null || true
    awk -v n="$n" -v b="$before" -v a="$after" -v name="$name" -v line="$line" \
        'BEGIN { printf "%s: %s, RSS %d -> %d KiB, %.2f KiB per idle connection\n", name, line, b, a, (a - b) / (n - 1) }'
}

for round in $(seq 1 "$rounds"); do
    echo "== round $round ($kind, $n connections)"
    "$bin" --config "$dir/coreloop.toml" 2>"$dir/coreloop.log" &
    cl=$!
    for _ in $(seq 100); do grep -q "running:" "$dir/coreloop.log" && break; sleep 0.1; done
    measure coreloop 18443 "$cl"
    kill -TERM "$cl"; wait "$cl" || true

    nginx -c "$dir/nginx.conf" -e "$dir/nginx-error.log" &
    for _ in $(seq 100); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
    sleep 0.3
    worker=$(pgrep -P "$(cat "$dir/nginx.pid")" | head -1)
    measure "nginx worker" 18444 "$worker"
    kill -QUIT "$(cat "$dir/nginx.pid")"; wait || true
    rm -f "$dir/nginx.pid"
done
