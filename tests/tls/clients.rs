//! Real clients over TLS: curl, `openssl s_client` (versions, ALPN, SNI), Python's `ssl`.

use super::{make_cert, python, s_client, tls_table, KeyType, TlsServer};
use crate::support::{Server, TempDir};

fn curl(args: &[&str]) -> String {
    let out = super::run_with_input("curl", args, b"");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl checks the chain against `--cacert`, for both key types, and keeps the connection.
#[test]
pub fn curl_verifies_ecdsa_and_rsa_certificates_with_cacert() {
    for kind in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        let dir = TempDir::new();
        let (cert, key) = make_cert(&dir.0, "localhost", "localhost", kind, 2);
        let text = super::tls_config(&tls_table(&cert, &key, ""), &[]);
        let server = Server::start(&text);
        let url = format!(
            "https://localhost:{}/plaintext",
            server.addr("web-tls").port()
        );
        let resolve = format!("localhost:{}:127.0.0.1", server.addr("web-tls").port());
        let cacert = cert.to_str().unwrap();
        let body = curl(&[
            "-sS",
            "--max-time",
            "10",
            "--resolve",
            &resolve,
            "--cacert",
            cacert,
            &url,
            &url,
        ]);
        assert_eq!(body, "Hello, TLS!Hello, TLS!");
    }
}

/// TLS 1.0 and 1.1 are refused, 1.2 and 1.3 spoken; `min_version = "1.3"` refuses 1.2 too.
#[test]
pub fn only_tls_1_2_and_1_3_are_spoken() {
    let tls = TlsServer::start("", &[]);
    // OpenSSL 3 will not even offer 1.0/1.1 at its default security level.
    let old = ["-cipher", "DEFAULT@SECLEVEL=0"];
    for version in ["-tls1", "-tls1_1"] {
        let out = s_client(tls.web(), &[version, old[0], old[1]]);
        assert!(
            out.contains("Cipher is (NONE)"),
            "{version} was accepted: {out}"
        );
    }
    for (version, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = s_client(tls.web(), &[version]);
        assert!(out.contains(&format!("New, {name}")), "{version}: {out}");
    }
    let refused = tls.metric(
        "coreloop_tls_handshake_errors_total",
        &[("listener", "web-tls"), ("reason", "incompatible")],
    );
    assert_eq!(refused, 2.0, "both old versions counted as incompatible");

    let only13 = TlsServer::start(", min_version = \"1.3\"", &[]);
    let out = s_client(only13.web(), &["-tls1_2"]);
    assert!(
        out.contains("Cipher is (NONE)"),
        "1.2 accepted under min 1.3: {out}"
    );
    assert!(s_client(only13.web(), &["-tls1_3"]).contains("New, TLSv1.3"));
}

/// http listeners offer `http/1.1` by default and refuse a client that offers only others;
/// `alpn` replaces the list; other listeners offer none.
#[test]
pub fn alpn_defaults_to_http_1_1_on_http_listeners_only() {
    let tls = TlsServer::start("", &[]);
    let out = s_client(tls.web(), &["-alpn", "h2,http/1.1"]);
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    let out = s_client(tls.web(), &["-alpn", "h2"]);
    assert!(out.contains("no application protocol"), "{out}");
    let out = s_client(tls.echo(), &["-alpn", "h2"]);
    assert!(
        out.contains("No ALPN negotiated") && out.contains("New, TLS"),
        "{out}"
    );
    let counted = tls.metric(
        "coreloop_tls_handshake_errors_total",
        &[("reason", "no_application_protocol")],
    );
    assert_eq!(counted, 1.0);

    let custom = TlsServer::start(", alpn = [\"x-custom\"]", &[]);
    let out = s_client(custom.echo(), &["-alpn", "x-custom"]);
    assert!(out.contains("ALPN protocol: x-custom"), "{out}");
}

/// `certs` picks a certificate by the SNI name; no name or another one gets the default.
#[test]
pub fn sni_picks_the_certificate() {
    let dir = TempDir::new();
    let (cert, key) = make_cert(&dir.0, "default", "localhost", KeyType::EcdsaP256, 2);
    let (b_cert, b_key) = make_cert(&dir.0, "b", "b.example", KeyType::Rsa2048, 2);
    let certs = format!(
        ", certs = [{{ server_name = \"B.example\", cert = \"{}\", key = \"{}\" }}]",
        b_cert.display(),
        b_key.display()
    );
    let server = Server::start(&super::tls_config(&tls_table(&cert, &key, &certs), &[]));
    let web = server.addr("web-tls");
    let subject = |args: &[&str]| {
        let out = s_client(web, args);
        out.lines()
            .find(|l| l.starts_with("subject="))
            .unwrap_or_else(|| panic!("no subject: {out}"))
            .to_owned()
    };
    assert!(subject(&["-servername", "b.example"]).contains("CN = b.example"));
    assert!(subject(&["-servername", "other.example"]).contains("CN = localhost"));
    assert!(subject(&["-noservername"]).contains("CN = localhost"));
}

const PY_GET: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def get(session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session,
                        suppress_ragged_eofs=False)
    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)  # raises SSLEOFError on a close without close_notify
        if not chunk:
            break
        data += chunk
    reused = s.session_reused
    session = s.session
    s.close()
    return data, reused, session
data, reused, session = get()
print(data.endswith(b"Hello, TLS!"), reused, session is not None)
for _ in range(4):
    data, reused, _ = get(session)
    print(data.endswith(b"Hello, TLS!"), reused)
"#;

/// Python's `ssl` verifies, reads to a clean close_notify EOF (a ragged EOF would raise),
/// and resumes its session on every later connection, whichever shard takes it: round-robin
/// balancing puts consecutive connections on alternate shards.
#[test]
pub fn python_resumes_sessions_across_shards_and_sees_close_notify() {
    for version in ["1.2", "1.3"] {
        let round_robin = ("balance = \"least-loaded\"", "balance = \"round-robin\"");
        let extra = format!(", min_version = \"{version}\"");
        let tls = TlsServer::start(&extra, &[round_robin]);
        let script = if version == "1.2" {
            PY_GET.replace(
                "ssl.create_default_context(cafile=ca)",
                "ssl.create_default_context(cafile=ca); ctx.maximum_version = ssl.TLSVersion.TLSv1_2",
            )
        } else {
            PY_GET.to_owned()
        };
        let port = tls.web().port().to_string();
        let out = python(&script, &[&port, tls.cert.to_str().unwrap()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "True False True", "TLS {version}: {out}");
        assert_eq!(
            lines[1..],
            ["True True"; 4],
            "TLS {version}: every reconnect resumed"
        );
        let on = |shard| {
            tls.metric(
                "coreloop_connections_accepted_total",
                &[("listener", "web-tls"), ("shard", shard)],
            )
        };
        assert!(on("0") >= 2.0 && on("1") >= 2.0, "both shards served");
        let kind = |kind| tls.metric("coreloop_tls_handshakes_total", &[("kind", kind)]);
        assert_eq!((kind("full"), kind("resumed")), (1.0, 4.0), "TLS {version}");
    }
}

/// openssl's own session file resumes too (`-sess_out`, `-sess_in`).
#[test]
pub fn openssl_resumes_a_saved_session() {
    let tls = TlsServer::start("", &[]);
    let sess = tls.dir.0.join("session.pem");
    let sess = sess.to_str().unwrap();
    // A request with `Connection: close` keeps s_client (-ign_eof) until the server closes,
    // so the TLS 1.3 tickets, sent after the handshake, are in the saved session.
    let request = b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let connect = tls.web().to_string();
    let first = super::run_with_input(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-ign_eof",
            "-sess_out",
            sess,
        ],
        request,
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("New, TLS"));
    let again = super::run_with_input(
        "openssl",
        &[
            "s_client", "-connect", &connect, "-ign_eof", "-sess_in", sess,
        ],
        request,
    );
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("Reused, TLS"), "{again}");
    assert!(again.contains("Hello, TLS!"));
}

/// The echo listener speaks TLS unchanged.
#[test]
pub fn echo_over_tls() {
    let tls = TlsServer::start("", &[]);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
                    server_hostname="localhost")
payload = bytes(range(256)) * 300
s.sendall(payload)
got = b""
while len(got) < len(payload):
    got += s.recv(65536)
print(got == payload, s.version())
"#;
    let port = tls.echo().port().to_string();
    let out = python(script, &[&port, tls.cert.to_str().unwrap()]);
    assert!(out.starts_with("True TLSv1.3"), "{out}");
}
