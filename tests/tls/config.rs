//! `check-config` loads the TLS files and says what is wrong with them, where.

use super::{make_cert, tls_table, KeyType};
use crate::support::{run, TempDir};

/// Runs `check-config` on the test config with `tls` on its TLS listeners; (ok, output).
fn check(dir: &TempDir, tls: &str) -> (bool, String) {
    let path = dir.write("coreloop.toml", &super::tls_config(tls, &[]));
    let out = run(&["check-config", path.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
pub fn check_config_locates_every_bad_tls_file() {
    let dir = TempDir::new();
    let (cert, key) = make_cert(&dir.0, "good", "localhost", KeyType::EcdsaP256, 2);
    let (_, other_key) = make_cert(&dir.0, "other", "localhost", KeyType::EcdsaP256, 2);
    let (old_cert, old_key) = make_cert(&dir.0, "old", "localhost", KeyType::Rsa2048, 0);
    let garbage = dir.write("garbage.pem", "not a pem file\n");
    let missing = dir.0.join("missing.pem");
    // The web-tls listener is listener[2]; its tls line is line 3 of its table.
    let cases: Vec<(String, &str)> = vec![
        (tls_table(&missing, &key, ""), "listener[2].tls.cert: tls: "),
        (tls_table(&garbage, &key, ""), "no PEM CERTIFICATE"),
        (tls_table(&cert, &garbage, ""), "listener[2].tls.key: tls: "),
        (
            tls_table(&cert, &other_key, ""),
            "does not match the certificate",
        ),
        (
            tls_table(&cert, &key, ", min_version = \"1.1\""),
            "min_version is \"1.2\" or \"1.3\"",
        ),
        (
            tls_table(&cert, &key, ", alpn = \"h2\""),
            "listener[2].tls.alpn",
        ),
        (
            tls_table(&cert, &key, ", handshake_timeout = \"soon\""),
            "bad duration",
        ),
        (tls_table(&cert, &key, ", ciphers = []"), "unknown key"),
        (
            tls_table(
                &cert,
                &key,
                ", certs = [{ server_name = \"a b\", cert = \"x\", key = \"y\" }]",
            ),
            "server_name must be a DNS name",
        ),
    ];
    for (tls, wanted) in &cases {
        let (ok, out) = check(&dir, tls);
        assert!(!ok, "accepted {tls}: {out}");
        assert!(out.contains(wanted), "{tls}: wanted {wanted:?} in {out}");
        assert!(
            out.contains("coreloop.toml:"),
            "{tls}: no location in {out}"
        );
    }
    let (ok, out) = check(&dir, &tls_table(&cert, &key, ", min_version = \"1.3\""));
    assert!(ok, "{out}");
    let (ok, out) = check(&dir, &tls_table(&old_cert, &old_key, ""));
    assert!(ok, "an expired certificate is a warning only: {out}");
    assert!(
        out.contains("warning: ") && out.contains("expired at 946771200"),
        "{out}"
    );
}
