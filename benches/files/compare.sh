#!/usr/bin/env bash
# One 20 MiB file download over loopback, coreloop (1 shard, files route) versus nginx
# (1 worker, `sendfile on`), side by side: MB per server CPU-second and MB/s of wall time.
# Servers pinned to CPU 1, curl to CPU 0; rounds alternate nginx, coreloop; medians, and the
# ratio to nginx. Server CPU is every thread's time on CPU from /proc/PID/task/*/schedstat
# (nanoseconds; clock ticks are too coarse for a few hundred MB), read before and after each
# round's downloads. Also loopback packets per download (both directions, from
# /sys/class/net/lo/statistics/tx_packets: the whole machine's, so read it on an idle box),
# a figure the box's noise does not move: short packets cost per-packet kernel work on the
# server's core.
#
# Usage: [CORELOOP_BIN=path] benches/files/compare.sh [ROUNDS] [DOWNLOADS]
#        (defaults: 5 rounds of 10 downloads; the release build of this tree)
set -euo pipefail

ROUNDS=${1:-5}
DOWNLOADS=${2:-10}
MIB=20
NGINX_PORT=18091
CORELOOP_PORT=18092
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/coreloop-files.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
# CORELOOP_BIN: a prebuilt binary (e.g. an older commit's, for a before/after run).
# BALANCE: coreloop's `server.balance` (default least-loaded, through the acceptor thread;
# reuseport: the shard accepts, as nginx's worker does).
if [ -n "${CORELOOP_BIN:-}" ]; then
    CORELOOP=$CORELOOP_BIN
else
    (cd "$ROOT" && cargo build --release --bin coreloop >&2)
    CORELOOP=${CARGO_TARGET_DIR:-$ROOT/target}/release/coreloop
fi

mkdir -p "$WORK/www"
# nginx's worker runs unprivileged: it must be able to read the file.
chmod 755 "$WORK" "$WORK/www"
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/big.bin"
# Page-cache resident for both servers: the comparison is of the send path, not the disk.
chmod 644 "$WORK/www/big.bin"
cat "$WORK/www/big.bin" >/dev/null

wait_up() {
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/big.bin" && return
        sleep 0.1
    done
    echo "server on port $1 never came up" >&2
    exit 1
}

cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log crit;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
    }
}
CONF
taskset -c 1 nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
NGINX_MASTER=$!
wait_up $NGINX_PORT

"$CORELOOP" print-config >"$WORK/coreloop.toml"
python3 - "$WORK/coreloop.toml" "$CORELOOP_PORT" "$WORK/www" "${BALANCE:-least-loaded}" <<'PY'
import sys
path, port, root, balance = sys.argv[1:]
text = open(path).read()
text = text.replace('balance = "least-loaded"', f'balance = "{balance}"')
text = text.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("127.0.0.1:9000", "127.0.0.1:0")
text = text.replace('shards = "auto"', "shards = 1")
route = f'[[listener.route]]\npath = "/*"\nfiles = {{ root = "{root}" }}\n\n[[listener.route]]\npath = "/delay"'
text = text.replace('[[listener.route]]\npath = "/delay"', route, 1)
open(path, "w").write(text)
PY
taskset -c 1 "$CORELOOP" --config "$WORK/coreloop.toml" 2>"$WORK/coreloop.log" &
PIDS+=($!)
CORELOOP_PID=$!
wait_up $CORELOOP_PORT

# Nanoseconds on CPU of every thread of the given processes.
cpu_ns() {
    local total=0 pid task
    for pid in "$@"; do
        for task in /proc/"$pid"/task/*/schedstat; do
            total=$((total + $(cut -d' ' -f1 "$task")))
        done
    done
    echo "$total"
}

nginx_pids() { echo "$NGINX_MASTER" $(pgrep -P "$NGINX_MASTER"); }

lo_packets() { cat /sys/class/net/lo/statistics/tx_packets; }

# One round against one server: prints "MB_per_cpu_s MB_per_s packets_per_download".
measure() {
    local port=$1
    shift
    local before after start end packets
    before=$(cpu_ns "$@")
    packets=$(lo_packets)
    start=$(date +%s%N)
    for _ in $(seq "$DOWNLOADS"); do
        taskset -c 0 curl -sf -o /dev/null "http://127.0.0.1:$port/big.bin"
    done
    end=$(date +%s%N)
    after=$(cpu_ns "$@")
    packets=$(( ($(lo_packets) - packets) / DOWNLOADS ))
    awk -v mb=$((MIB * DOWNLOADS * 1048576)) -v cpu=$((after - before)) -v wall=$((end - start)) \
        -v packets="$packets" \
        'BEGIN { printf "%.0f %.0f %d\n", mb / 1e6 / (cpu / 1e9), mb / 1e6 / (wall / 1e9), packets }'
}

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

n_cpu=() n_wall=() n_pk=() c_cpu=() c_wall=() c_pk=() ratios=()
for round in $(seq "$ROUNDS"); do
    read -r cpu wall packets < <(measure $NGINX_PORT $(nginx_pids))
    echo "round $round nginx: $cpu MB/CPU-s, $wall MB/s, $packets packets per download" >&2
    n_cpu+=("$cpu") n_wall+=("$wall") n_pk+=("$packets")
    nginx_cpu=$cpu
    read -r cpu wall packets < <(measure $CORELOOP_PORT "$CORELOOP_PID")
    echo "round $round coreloop: $cpu MB/CPU-s, $wall MB/s, $packets packets per download" >&2
    c_cpu+=("$cpu") c_wall+=("$wall") c_pk+=("$packets")
    ratios+=("$(awk -v c="$cpu" -v n="$nginx_cpu" 'BEGIN { printf "%.3f", c / n }')")
done

nc=$(median "${n_cpu[@]}") nw=$(median "${n_wall[@]}") np=$(median "${n_pk[@]}")
cc=$(median "${c_cpu[@]}") cw=$(median "${c_wall[@]}") cp=$(median "${c_pk[@]}")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2), coreloop: $($CORELOOP --version)"
echo "$ROUNDS rounds x $DOWNLOADS downloads of $MIB MiB, medians"
echo "| server | MB per server CPU-s | ratio to nginx | MB/s wall | ratio to nginx | loopback packets per download |"
echo "|---|---|---|---|---|---|"
echo "| nginx (sendfile on) | $nc | 1.00 | $nw | 1.00 | $np |"
awk -v cc="$cc" -v nc="$nc" -v cw="$cw" -v nw="$nw" -v cp="$cp" \
    'BEGIN { printf "| coreloop | %s | %.2f | %s | %.2f | %s |\n", cc, cc / nc, cw, cw / nw, cp }'
echo "median of the per-round ratios (coreloop / nginx, MB per server CPU-s): $(median "${ratios[@]}")"
