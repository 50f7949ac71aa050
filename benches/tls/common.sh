# Sourced by the benches/tls/ scripts: the release binary, a scratch directory removed at exit
# (with every background job), and a certificate for localhost made by `openssl req` now.
# Sets: bin, dir; writes $dir/cert.pem and $dir/key.pem.

bin=${CARGO_TARGET_DIR:-target}/release/coreloop
[ -x "$bin" ] || cargo build -q --release -p coreloop
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

# A self-signed leaf for localhost, ECDSA P-256 or RSA 2048 ($1).
make_cert() {
    local newkey
    case $1 in
        ecdsa) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
        rsa) newkey=(-newkey rsa:2048) ;;
        *) echo "key kind must be ecdsa or rsa, not $1" >&2; exit 2 ;;
    esac
    openssl req -x509 -nodes "${newkey[@]}" -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -addext basicConstraints=critical,CA:FALSE 2>/dev/null
}
