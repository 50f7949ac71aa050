#!/usr/bin/env bash
# Two coreloop-load binaries against the same nginx, alternating A B A B,
# to see whether a change moved the client's CPU per request. Clients pinned
# to core 0, nginx (1 worker) to core 1; every run bounded by `timeout`.
# Prints per-round figures and the medians of req/s and req per CPU-second.
# Usage: benches/load/ab.sh OLD_BIN NEW_BIN [ROUNDS] [SECONDS] [EXTRA coreloop-load ARGS...]
set -euo pipefail

A=$1; B=$2; ROUNDS=${3:-5}; SECS=${4:-5}; shift $(( $# < 4 ? $# : 4 ))
PORT=${PORT:-8189}
URL="http://127.0.0.1:$PORT/plaintext"
WORK=$(mktemp -d /tmp/coreloop-ab.XXXXXX)
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/error.log crit;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT backlog=16384;
        location /plaintext { return 200 'Hello, World!'; }
    }
}
CONF
taskset -c 1 nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
NGINX=$!
trap 'kill $NGINX 2>/dev/null; wait $NGINX 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -fs "$URL" >/dev/null 2>&1 && break; sleep 0.1; done

one() {  # $1 = binary; prints "rps cpu_s"
    python3 - "$1" "$SECS" "$URL" "$@" <<'PY'
import json, resource, subprocess, sys
binary, secs, url, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5:]
cmd = ["timeout", str(int(secs) + 20), "taskset", "-c", "0", binary, "-t", "1", "-c", "256",
       "-d", secs + "s", "--warmup", "0s", "--no-progress", "--json", "-", *extra, url]
out = subprocess.run(cmd, capture_output=True, text=True).stdout
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.loads(out)["requests_per_s"], r.ru_utime + r.ru_stime)
PY
}

for round in $(seq "$ROUNDS"); do
    for side in A B; do
        bin=$A; [[ $side == B ]] && bin=$B
        read -r rps cpu < <(one "$bin" "$@")
        echo "$side $rps $cpu" | tee -a "$WORK/rounds"
    done
done
python3 - "$WORK/rounds" "$SECS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
secs = float(sys.argv[2])
for side in "AB":
    rps = [float(r[1]) for r in rows if r[0] == side]
    per = [float(r[1]) * secs / float(r[2]) for r in rows if r[0] == side]
    print(f"{side}: median {statistics.median(rps):,.0f} req/s, median {statistics.median(per):,.0f} req per CPU-s")
PY
