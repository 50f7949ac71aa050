#!/usr/bin/env bash
# The adversary scenarios of tests/adversarial/, run as the test suite runs them, printing the
# figures (each test prints one line to stderr) quoted in docs/BENCHMARKS.md "Adversaries".
# Usage: benches/adversaries.sh [ROUNDS]   (default 3; each round is about 10 s on 2 cores)
# For larger scales, raise the constants at the top of each tests/adversarial/*.rs file
# (SLOW, SLOW_READERS, LIMIT/EXTRA, FDS) and run again.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q -p coreloop --tests --bins
for round in $(seq 1 "$rounds"); do
    echo "== round $round"
    nice cargo test -q -p coreloop --test main adversarial -- --nocapture --test-threads 1 2>&1 |
        grep -oE '(slowloris x|slow body x|slow readers|churn:|hold:|fd limit|offload:).*' || true
done
