#!/usr/bin/env bash
# Syscalls of the whole coreloop process over DOWNLOADS downloads of a page-cached 20 MiB
# file (after one warm-up), by `strace -f`, one line per thread and syscall name with its count.
# 1 shard, a `files` route, the default config otherwise.
#
# Usage: benches/files/syscalls.sh [BINARY] [DOWNLOADS]   (defaults: this tree's release build, 10)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/release/coreloop}
DOWNLOADS=${2:-10}
PORT=18093
WORK=$(mktemp -d /tmp/coreloop-syscalls.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v strace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
mkdir -p "$WORK/www"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$WORK/www/big.bin"
cat "$WORK/www/big.bin" >/dev/null
"$BIN" print-config >"$WORK/c.toml"
python3 - "$WORK/c.toml" "$PORT" "$WORK/www" <<'PY'
import sys
path, port, root = sys.argv[1:]
text = open(path).read()
text = text.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("127.0.0.1:9000", "127.0.0.1:0")
text = text.replace('shards = "auto"', "shards = 1")
route = f'[[listener.route]]\npath = "/*"\nfiles = {{ root = "{root}" }}\n\n[[listener.route]]\npath = "/delay"'
text = text.replace('[[listener.route]]\npath = "/delay"', route, 1)
open(path, "w").write(text)
PY
"$BIN" --config "$WORK/c.toml" 2>/dev/null &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/big.bin" && break; sleep 0.1; done
strace -f -p "$SERVER" -o "$WORK/trace" 2>/dev/null &
TRACER=$!
sleep 0.5
for _ in $(seq "$DOWNLOADS"); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/big.bin"; done
sleep 0.2
kill -INT "$TRACER"
wait "$TRACER" 2>/dev/null || true
# "PID  syscall(" or "PID  <... syscall resumed>": count each call once, by its start.
grep -v 'resumed>' "$WORK/trace" | awk '{ split($2, a, "("); print a[1] }' | sort | uniq -c | sort -rn
