//! A proxy route on a TLS listener tells the upstream the client's scheme.

use super::{make_cert, run_with_input, tls_table, KeyType};
use crate::http_proxy::PyUpstream;
use crate::support::{config as base_config, Server, TempDir};

#[test]
fn a_proxied_request_over_tls_is_forwarded_as_https() {
    let upstream = PyUpstream::start();
    let dir = TempDir::new();
    let (cert, key) = make_cert(&dir.0, "localhost", "localhost", KeyType::EcdsaP256, 2);
    let mut text = base_config(&[]);
    text.push_str(&format!(
        "\n[[listener]]\nname = \"web-tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"http\"\n{}\n\
         [[listener.route]]\npath = \"/app/*\"\nproxy = {{ upstream = \"app\" }}\n\n\
         [[upstream]]\nname = \"app\"\nservers = [\"{}\"]\n",
        tls_table(&cert, &key, ""),
        upstream.addr
    ));
    let server = Server::start(&text);
    let port = server.addr("web-tls").port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/app/headers");
    let out = run_with_input(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            "--resolve",
            &resolve,
            "--cacert",
            cert.to_str().unwrap(),
            &url,
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(seen.contains("x-forwarded-proto: https"), "{seen}");
    assert!(!seen.contains("x-forwarded-proto: http\r"), "{seen}");
}
