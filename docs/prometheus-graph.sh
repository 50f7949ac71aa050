#!/usr/bin/env bash
# Makes docs/prometheus-graph.png: Prometheus' graph page (headless Chromium) showing p99
# latency by route while coreloop-load sends /plaintext at 2,000/s and /delay?ms=5 at 100/s;
# and docs/prometheus-graph-tls-upstream.png: TLS handshakes by kind, and upstream connect
# errors by server and cause with the retries they caused, while coreloop-load sends https
# at 100/s (Connection: close, sessions resumed) and 100/s through a tcp-proxy listener
# whose upstream is a unix path nobody listens on and the web listener itself. Grafana is
# not packaged where this project installs from, so its dashboard cannot be rendered here.
# (The committed prometheus-graph.png predates the https and proxy loads of the same run.)
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
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
cat >>"$WORK/coreloop.toml" <<CONF

[[upstream]]
name = "app"
servers = ["unix:$WORK/nobody.sock", "127.0.0.1:$PORT"]
max_fails = 1
fail_timeout = "1s"

[[listener]]
name = "db"
address = "127.0.0.1:18100"
protocol = "tcp-proxy"
upstream = "app"

[[listener]]
name = "web-tls"
address = "127.0.0.1:18101"
protocol = "http"
tls = { cert = "$WORK/tls.pem", key = "$WORK/tls.key" }
[[listener.route]]
path = "/plaintext"
static = { body = "Hello, TLS!" }
CONF
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
timeout 60 "$LOAD" -t 1 -c 2 -d 45s --rate 100 --warmup 0s --no-progress \
    -H "Connection: close" --tls-resume --cacert "$WORK/tls.pem" \
    "https://localhost:18101/plaintext" >/dev/null 2>&1 &
PIDS+=($!)
timeout 60 "$LOAD" -t 1 -c 2 -d 45s --rate 100 --warmup 0s --no-progress \
    -H "Connection: close" "http://127.0.0.1:18100/plaintext" >/dev/null 2>&1 &
PIDS+=($!)
sleep 47
expr='histogram_quantile(0.99, sum by (route, le) (rate(coreloop_http_request_duration_seconds_bucket[10s])))'
url="http://127.0.0.1:$PROM/graph?g0.expr=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$expr")&g0.tab=0&g0.range_input=1m"
timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1400,900 --virtual-time-budget=5000 \
    --screenshot="$ROOT/docs/prometheus-graph.png" "$url" 2>/dev/null
echo "wrote docs/prometheus-graph.png"
q() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
g0='sum by (kind) (rate(coreloop_tls_handshakes_total[10s]))'
g1='sum by (server, cause) (rate(coreloop_upstream_connect_errors_total[10s])) or sum by (server) (rate(coreloop_upstream_retries_total[10s]))'
url="http://127.0.0.1:$PROM/graph?g0.expr=$(q "$g0")&g0.tab=0&g0.range_input=1m&g1.expr=$(q "$g1")&g1.tab=0&g1.range_input=1m"
timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1400,1500 --virtual-time-budget=5000 \
    --screenshot="$ROOT/docs/prometheus-graph-tls-upstream.png" "$url" 2>/dev/null
echo "wrote docs/prometheus-graph-tls-upstream.png"
