#!/usr/bin/env bash
# A/B of two coreloop builds on S1 (keep-alive, 256 connections, the server with 1 shard on
# core 1, coreloop-load on core 0), alternating rounds A B A B ..., 5 s each; prints
# "round which req/s p99_us errors". Bounded: every client run is under `timeout`.
# Env: OLD, NEW (coreloop release binaries), LOAD (coreloop-load), ROUNDS (3).
set -u
OLD=${OLD:?path to the old coreloop}
NEW=${NEW:-target/release/coreloop}
LOAD=${LOAD:-target/release/coreloop-load}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d /tmp/coreloop-ab.XXXXXX)
"$NEW" print-config | sed 's/127.0.0.1:8080/127.0.0.1:18461/; s/127.0.0.1:9000/127.0.0.1:18462/;
    s/shards = "auto"/shards = 1/; s/max_connections = "auto"/max_connections = 5000/' >"$WORK/c.toml"
for round in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    bin=$OLD; [ $which = new ] && bin=$NEW
    taskset -c 1 "$bin" --config "$WORK/c.toml" 2>"$WORK/srv.log" & pid=$!
    for _ in $(seq 1 50); do grep -q "running" "$WORK/srv.log" && break; sleep 0.1; done
    out=$(timeout 30 taskset -c 0 "$LOAD" -t 1 -c 256 -d 5s --warmup 0s --no-progress --json - \
        http://127.0.0.1:18461/plaintext 2>/dev/null)
    kill -TERM $pid; wait $pid
    echo "$round $which $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["requests_per_s"]), d["latency"]["p99_us"], sum(d["errors"].values()))')"
  done
done
