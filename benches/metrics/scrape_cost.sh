#!/usr/bin/env bash
# The cost of one /metrics scrape while 9,000 idle keep-alive connections are open, for two
# coreloop binaries side by side (before/after a change). Rounds alternate A B A B; each
# round starts the server, parks the idle connections (benches/compare/hold_idle.py), then
# times SCRAPES sequential scrapes on one keep-alive connection: wall time per scrape as the
# client sees it (median, p99) and server CPU per scrape (utime+stime over the window / N).
# Loopback only; every process is under `timeout` and stopped on exit.
#
# Usage: benches/metrics/scrape_cost.sh BIN_A BIN_B [ROUNDS] [SCRAPES] [IDLE]
#        (defaults: 2 rounds, 300 scrapes, 9000 idle connections)
set -euo pipefail

A=$1
B=$2
ROUNDS=${3:-2}
SCRAPES=${4:-300}
IDLE=${5:-9000}
PORT=${PORT:-18093}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/coreloop-scrape.XXXXXX)
SERVER=""

cleanup() {
    [[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/" -e 's/^shards = "auto"/shards = 2/' \
    -e 's/^idle = "60s"/idle = "300s"/' "$ROOT/config/coreloop.toml" >"$WORK/coreloop.toml"

# Prints "median_ms p99_ms cpu_ms_per_scrape".
measure() {
    python3 - "$PORT" "$SCRAPES" "$1" <<'PY'
import socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0
s = socket.create_connection(("127.0.0.1", port), timeout=10)
req = b"GET /metrics HTTP/1.1\r\nHost: b\r\n\r\n"
def scrape():
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
for _ in range(20):
    scrape()
times, c0 = [], cpu()
for _ in range(n):
    t = time.perf_counter(); scrape(); times.append(time.perf_counter() - t)
c1 = cpu()
times.sort()
print(f"{times[n // 2] * 1e3:.3f} {times[int(n * 0.99)] * 1e3:.3f} {(c1 - c0) / n * 1e3:.3f}")
PY
}

run() {
    local bin=$1
    ulimit -n 20000
    timeout 300 "$bin" serve --config "$WORK/coreloop.toml" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do grep -q "running:" "$WORK/server.log" && break; sleep 0.1; done
    coproc HOLD { exec timeout 300 python3 "$ROOT/benches/compare/hold_idle.py" 127.0.0.1 "$PORT" "$IDLE"; }
    read -r ready <&"${HOLD[0]}"
    [[ "$ready" == ready ]] || { echo "idle connections not held" >&2; exit 1; }
    # `timeout` is the parent; the server is its child.
    measure "$(cat "/proc/$SERVER/task/$SERVER/children" | tr -d ' ')"
    echo done >&"${HOLD[1]}"
    wait "$HOLD_PID" 2>/dev/null || true
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
    SERVER=""
}

echo "scrape cost at $IDLE idle connections, $SCRAPES scrapes per round (median_ms p99_ms cpu_ms/scrape)"
for r in $(seq "$ROUNDS"); do
    echo "round $r A: $(run "$A")"
    echo "round $r B: $(run "$B")"
done
