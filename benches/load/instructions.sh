#!/usr/bin/env bash
# Client cost per request that a shared machine cannot disturb: user-space
# instructions per request (valgrind callgrind) and syscalls per request
# (strace -c -f), for coreloop-load binaries and wrk against one server.
#
# Instructions are the difference between two runs of N1 and N2 requests
# divided by N2 - N1, so start-up and the report's encoding drop out (wrk runs
# for two durations instead: the difference of its instruction counts over the
# difference of its request counts). Syscalls are counted over one run of N2
# requests (wrk: one run of D2 seconds) and divided by its requests. Note
# that strace slows the client and so changes how many responses each read
# finds: the syscall figures are for that slowed run, for both clients alike.
#
# Usage: benches/load/instructions.sh URL BIN...   (BIN = coreloop-load binaries)
# Env: N1 (20000), N2 (60000), D1 (3), D2 (9) seconds for wrk, CONNS (64), DEPTH (16),
#      WRK=0 to skip wrk.
set -euo pipefail

URL=$1
shift
N1=${N1:-20000}
N2=${N2:-60000}
D1=${D1:-3}
D2=${D2:-9}
CONNS=${CONNS:-64}
DEPTH=${DEPTH:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/coreloop-instr.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

irefs() { grep "I   refs" "$1" | awk '{gsub(",", "", $NF); print $NF}'; }

load_ir() { # BIN N MODE... -> instructions
    local bin=$1 n=$2
    shift 2
    timeout 600 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg" "$bin" -t 1 -c "$CONNS" \
        "$@" --requests "$n" --warmup 0s -d 600s --no-progress "$URL" >/dev/null 2>"$WORK/vg"
    irefs "$WORK/vg"
}

load_sys() { # BIN MODE... -> "syscall count" lines for one run of N2 requests
    local bin=$1
    shift
    timeout 600 strace -c -f -o "$WORK/st" "$bin" -t 1 -c "$CONNS" "$@" --requests "$N2" \
        --warmup 0s -d 600s --no-progress "$URL" >/dev/null 2>&1
    awk -v n="$N2" 'NR > 2 && $NF != "total" && $4 + 0 > 0 {printf "%s %.3f\n", $NF, $4 / n}' "$WORK/st" |
        sort -k2 -rn | head -5 | tr '\n' ' '
}

wrk_run() { # D SCRIPT-ARGS... -> "requests instructions"
    local d=$1
    shift
    timeout 600 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg" wrk -t1 -c"$CONNS" -d"${d}s" \
        "$@" >"$WORK/out" 2>"$WORK/vg"
    echo "$(awk '/requests in/ {print $1}' "$WORK/out") $(irefs "$WORK/vg")"
}

wrk_sys() {
    timeout 600 strace -c -f -o "$WORK/st" wrk -t1 -c"$CONNS" -d"${D2}s" "$@" >"$WORK/out" 2>&1
    local n
    n=$(awk '/requests in/ {print $1}' "$WORK/out")
    awk -v n="$n" 'NR > 2 && $NF != "total" && $4 + 0 > 0 {printf "%s %.3f\n", $NF, $4 / n}' "$WORK/st" |
        sort -k2 -rn | head -5 | tr '\n' ' '
}

modes=("keep-alive:" "window:--pipeline $DEPTH --pipeline-mode window" "batch:--pipeline $DEPTH --pipeline-mode batch")
for bin in "$@"; do
    for m in "${modes[@]}"; do
        name=${m%%:*}
        # shellcheck disable=SC2206
        args=(${m#*:})
        a=$(load_ir "$bin" "$N1" "${args[@]}")
        b=$(load_ir "$bin" "$N2" "${args[@]}")
        per=$(( (b - a) / (N2 - N1) ))
        echo "$bin $name: $per instructions/request; syscalls/request: $(load_sys "$bin" "${args[@]}")"
    done
done

if [[ ${WRK:-1} != 0 ]]; then
    for m in "keep-alive" "pipelined"; do
        extra=()
        [[ $m == pipelined ]] && extra=(-s "$HERE/pipeline.lua")
        read -r r1 i1 < <(wrk_run "$D1" "${extra[@]}" "$URL" ${extra:+-- $DEPTH})
        read -r r2 i2 < <(wrk_run "$D2" "${extra[@]}" "$URL" ${extra:+-- $DEPTH})
        per=$(( (i2 - i1) / (r2 - r1) ))
        echo "wrk $m: $per instructions/request; syscalls/request: $(wrk_sys "${extra[@]}" "$URL" ${extra:+-- $DEPTH})"
    done
fi
