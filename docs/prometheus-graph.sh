#!/usr/bin/env bash
# Makes docs/prometheus-graph.png: Prometheus' graph page (headless Chromium) showing p99
# latency by route while coreloop-load sends /plaintext at 2,000/s and /delay?ms=5 at 100/s.
# Loopback only; everything stops on exit; about a minute.
# Needs: prometheus and its web templates (.ci/setup), chromium, and the JavaScript the
# Debian UI links to: apt-get install libjs-bootstrap4 libjs-jquery libjs-jquery-hotkeys
#   libjs-moment libjs-moment-timezone libjs-mustache libjs-popper.js libjs-rickshaw libjs-d3
#   libjs-eonasdan-bootstrap-datetimepicker fonts-glyphicons-halflings
# Usage: docs/prometheus-graph.sh CORELOOP_BIN LOAD_BIN
set -euo pipefail
CORELOOP=$1
LOAD=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/coreloop-graph.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
PORT=18097
PROM=18098
sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/" -e 's/127.0.0.1:9000/127.0.0.1:18099/' \
    "$ROOT/config/coreloop.toml" >"$WORK/coreloop.toml"
"$CORELOOP" serve --config "$WORK/coreloop.toml" 2>"$WORK/coreloop.log" &
PIDS+=($!)
cat >"$WORK/prometheus.yml" <<CONF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$ROOT/config/prometheus/rules.yml"]
scrape_configs:
  - job_name: coreloop
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
CONF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
    --web.listen-address="127.0.0.1:$PROM" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
sleep 2
timeout 60 "$LOAD" -t 1 -c 16 -d 45s --rate 2000 --warmup 0s --no-progress \
    "http://127.0.0.1:$PORT/plaintext" >/dev/null 2>&1 &
PIDS+=($!)
timeout 60 "$LOAD" -t 1 -c 4 -d 45s --rate 100 --warmup 0s --no-progress \
    "http://127.0.0.1:$PORT/delay?ms=5" >/dev/null 2>&1 &
PIDS+=($!)
sleep 47
expr='histogram_quantile(0.99, sum by (route, le) (rate(coreloop_http_request_duration_seconds_bucket[10s])))'
url="http://127.0.0.1:$PROM/graph?g0.expr=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$expr")&g0.tab=0&g0.range_input=1m"
timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1400,900 --virtual-time-budget=5000 \
    --screenshot="$ROOT/docs/prometheus-graph.png" "$url" 2>/dev/null
echo "wrote docs/prometheus-graph.png"
