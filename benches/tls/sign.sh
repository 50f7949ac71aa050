#!/usr/bin/env bash
# The signature of a full handshake alone: ring (through rustls, as the listeners sign) against
# OpenSSL (`openssl speed`, what nginx signs with), both pinned to CPU 1, alternating which runs
# first round by round. Both divide by CPU time (openssl speed by user time, the criterion bench
# by thread CPU time), which a shared machine disturbs far less than wall time.
# Prints signatures per CPU-second per round and the medians.
#   benches/tls/sign.sh [ROUNDS]
set -euo pipefail
rounds=${1:-3}
cd "$(dirname "$0")/../.."
cargo bench -q -p coreloop-reactor --bench tls_sign --no-run 2>/dev/null

# Criterion's middle estimate of one signature, as signatures per second.
ring_rate() {
    taskset -c 1 cargo bench -q -p coreloop-reactor --bench tls_sign -- \
        --warm-up-time 1 --measurement-time 4 "$1" 2>/dev/null |
        awk '/time:/ { v = $4; u = $5;
            s = (u ~ /^ms/) ? v / 1e3 : (u ~ /^µs|^us/) ? v / 1e6 : v / 1e9;
            printf "%.0f\n", 1 / s; exit }'
}
# openssl speed's sign/s column for one algorithm.
openssl_rate() {
    taskset -c 1 openssl speed -seconds 4 "$1" 2>/dev/null |
        awk -v want="$2" '$0 ~ want { print int($(NF - 1)); exit }'
}

declare -a ring_rsa ossl_rsa ring_ec ossl_ec
for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then order="ring openssl"; else order="openssl ring"; fi
    for who in $order; do
        if [ "$who" = ring ]; then
            ring_rsa+=("$(ring_rate rsa2048)"); ring_ec+=("$(ring_rate ecdsa_p256)")
        else
            ossl_rsa+=("$(openssl_rate rsa2048 '^rsa 2048')"); ossl_ec+=("$(openssl_rate ecdsap256 'nistp256')")
        fi
    done
    echo "round $round: rsa2048 ring ${ring_rsa[-1]}/s openssl ${ossl_rsa[-1]}/s;" \
        "p256 ring ${ring_ec[-1]}/s openssl ${ossl_ec[-1]}/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mr=$(median "${ring_rsa[@]}"); mo=$(median "${ossl_rsa[@]}")
er=$(median "${ring_ec[@]}"); eo=$(median "${ossl_ec[@]}")
echo "median rsa2048: ring $mr/s, openssl $mo/s, ring/openssl $(awk -v a="$mr" -v b="$mo" 'BEGIN { printf "%.2f", a / b }')"
echo "median p256:    ring $er/s, openssl $eo/s, ring/openssl $(awk -v a="$er" -v b="$eo" 'BEGIN { printf "%.2f", a / b }')"
