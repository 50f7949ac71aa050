#!/usr/bin/env bash
# Instructions per head parse (callgrind, user space, deterministic): benches/head_count.rs
# run for N and 2N parses of each head; the difference over N is one parse, start-up
# cancelled. Usage: crates/http/benches/head_count.sh [N]   (default 20000)
set -euo pipefail
N=${1:-20000}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
command -v valgrind >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
}
bin=$(cargo bench -p coreloop-http --bench head_count --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*head_count[^"]*\)".*/\1/p' | tail -1)
WORK=$(mktemp -d /tmp/head-count.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
total() {  # $1 parses, $2 head
    valgrind --tool=callgrind --callgrind-out-file="$WORK/out" "$bin" "$1" "$2" >/dev/null 2>&1
    callgrind_annotate "$WORK/out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}
for head in load browser; do
    a=$(total "$N" "$head")
    b=$(total $((2 * N)) "$head")
    echo "$head: $(( (b - a) / N )) instructions per parse"
done
