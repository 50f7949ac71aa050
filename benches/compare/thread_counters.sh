#!/usr/bin/env bash
# Per-thread page faults, CPU ticks and context switches of a running server over one wrk run,
# per thousand requests. It answers whether a server's extra kernel time per request comes from
# faults or sleeps rather than from its syscalls: all of these are invisible to `strace -c`.
# The server must already be up (pinned as plaintext.sh pins it); the load is pinned to CPU 0,
# loopback only, bounded by `timeout`.
#
# Usage: benches/compare/thread_counters.sh PID PORT [SECONDS] [CONNS] [PIPELINE]
#        (defaults: 3 s, 256 connections, 16 pipelined requests: S2)
set -euo pipefail

PID=$1
PORT=$2
SECS=${3:-3}
CONNS=${4:-256}
DEPTH=${5:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/coreloop-counters.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# One line per thread: tid minflt majflt utime stime voluntary nonvoluntary.
snapshot() {
    local task
    for task in /proc/"$PID"/task/*; do
        # Fields after the ")" that closes the command name: minflt is the 8th, utime the 12th.
        printf '%s %s %s\n' "${task##*/}" \
            "$(sed 's/.*) //' "$task/stat" | awk '{print $8, $10, $12, $13}')" \
            "$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {printf "%s ", $2}' "$task/status")"
    done | sort
}

load() {
    local script=()
    [[ $DEPTH -gt 1 ]] && script=(-s "$HERE/../load/pipeline.lua")
    timeout $(($1 + 30)) taskset -c 0 wrk -t1 -c"$CONNS" -d"$1s" "${script[@]}" \
        "http://127.0.0.1:$PORT/plaintext" -- "$DEPTH"
}

load 1 >/dev/null # warm the connections and the server's buffers
snapshot >"$WORK/before"
load "$SECS" >"$WORK/wrk.txt"
snapshot >"$WORK/after"
requests=$(grep -oP '^\s*\K[0-9]+(?= requests in)' "$WORK/wrk.txt")
echo "requests: $requests"
join "$WORK/before" "$WORK/after" | awk -v r="$requests" '
    { printf "tid %s: minflt %d majflt %d utime %d stime %d ticks, voluntary %d involuntary %d switches;",
             $1, $8 - $2, $9 - $3, $10 - $4, $11 - $5, $12 - $6, $13 - $7
      printf " per 1k requests: minflt %.3f voluntary %.3f involuntary %.3f\n",
             ($8 - $2) * 1000 / r, ($12 - $6) * 1000 / r, ($13 - $7) * 1000 / r }'
