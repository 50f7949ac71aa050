//! TLS on listeners, black-box: certificates made at test time by `openssl req`, the real
//! binary on port 0, and real clients: curl, `openssl s_client`, Python's `ssl`, and rustls
//! for the cases that need a client driven step by step.

pub mod clients;
mod config;
mod files;
pub mod handshake;
mod proxy;
pub mod reload;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::support::{config as base_config, Server, TempDir, WAIT};

/// A key type `openssl req` makes a self-signed certificate for.
#[derive(Clone, Copy)]
pub enum KeyType {
    EcdsaP256,
    Rsa2048,
}

/// Makes `<name>.pem` and `<name>.key` in `dir` for `cn` (also its DNS SAN, with 127.0.0.1),
/// valid for `days`; 0 makes one that expired on 2000-01-02.
pub fn make_cert(dir: &Path, name: &str, cn: &str, kind: KeyType, days: u32) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let mut cmd = Command::new("openssl");
    cmd.arg("req").arg("-nodes");
    match kind {
        KeyType::EcdsaP256 => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        KeyType::Rsa2048 => cmd.args(["-newkey", "rsa:2048"]),
    };
    cmd.arg("-keyout").arg(&key);
    cmd.args(["-subj", &format!("/CN={cn}")]);
    if days == 0 {
        let csr = dir.join(format!("{name}.csr"));
        cmd.arg("-new").arg("-out").arg(&csr);
        succeed(&mut cmd);
        return (expired(dir, &csr, &key, &cert), key);
    }
    cmd.args(["-x509", "-days", &days.to_string()]);
    cmd.args(["-addext", &format!("subjectAltName=DNS:{cn},IP:127.0.0.1")]);
    // webpki refuses a CA certificate as the server's own (openssl's default is CA:TRUE).
    cmd.args(["-addext", "basicConstraints=critical,CA:FALSE"]);
    cmd.arg("-out").arg(&cert);
    succeed(&mut cmd);
    (cert, key)
}

/// `openssl req` in 3.0 cannot backdate; `openssl ca` can, with a minimal database.
fn expired(dir: &Path, csr: &Path, key: &Path, cert: &Path) -> PathBuf {
    let ca = dir.join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::write(ca.join("index.txt"), "").unwrap();
    std::fs::write(ca.join("serial"), "01\n").unwrap();
    let cnf = ca.join("ca.cnf");
    let text = format!(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = {0}/index.txt\nnew_certs_dir = {0}\n\
         serial = {0}/serial\ndefault_md = sha256\npolicy = p\nx509_extensions = ext\n\
         [p]\ncommonName = supplied\n[ext]\nbasicConstraints = CA:FALSE\n\
         subjectAltName = DNS:localhost\n",
        ca.display()
    );
    std::fs::write(&cnf, text).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args(["ca", "-batch", "-selfsign", "-config"]).arg(&cnf);
    cmd.arg("-keyfile")
        .arg(key)
        .arg("-in")
        .arg(csr)
        .arg("-out")
        .arg(cert);
    cmd.args([
        "-startdate",
        "20000101000000Z",
        "-enddate",
        "20000102000000Z",
    ]);
    succeed(&mut cmd);
    cert.to_owned()
}

fn succeed(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tls = { ... }` naming `cert` and `key`, with `extra` (`, alpn = [...]`) inside.
pub fn tls_table(cert: &Path, key: &Path, extra: &str) -> String {
    format!(
        "tls = {{ cert = \"{}\", key = \"{}\"{extra} }}",
        cert.display(),
        key.display()
    )
}

/// The default test config plus `web-tls` (http, with /plaintext) and `echo-tls` listeners
/// speaking TLS with `tls` (a `tls = {...}` line), after `edits` to the base.
pub fn tls_config(tls: &str, edits: &[(&str, &str)]) -> String {
    let mut text = base_config(edits);
    text.push_str(&format!(
        "\n[[listener]]\nname = \"web-tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"http\"\n{tls}\n\
         [[listener.route]]\npath = \"/plaintext\"\nstatic = {{ body = \"Hello, TLS!\" }}\n\
         [[listener]]\nname = \"echo-tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"echo\"\n{tls}\n"
    ));
    text
}

/// A server with an ECDSA certificate for `localhost` on its TLS listeners.
pub struct TlsServer {
    pub server: Server,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Holds the certificates.
    pub dir: TempDir,
}

impl TlsServer {
    pub fn start(extra: &str, edits: &[(&str, &str)]) -> TlsServer {
        let dir = TempDir::new();
        let (cert, key) = make_cert(&dir.0, "localhost", "localhost", KeyType::EcdsaP256, 2);
        let server = Server::start(&tls_config(&tls_table(&cert, &key, extra), edits));
        TlsServer {
            server,
            cert,
            key,
            dir,
        }
    }

    pub fn web(&self) -> SocketAddr {
        self.server.addr("web-tls")
    }

    pub fn echo(&self) -> SocketAddr {
        self.server.addr("echo-tls")
    }

    /// A metric of the TLS listeners, summed over `with`, scraped over plaintext.
    pub fn metric(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        crate::support::scrape(self.server.addr("web")).sum(name, with)
    }
}

/// Runs `program` with `args`, `input` on stdin, killed after [`WAIT`].
pub fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new("timeout")
        .arg(WAIT.as_secs().to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// `openssl s_client` to `addr` with `args`, stdin closed at once; its stdout and stderr.
pub fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let connect = addr.to_string();
    let mut all = vec!["s_client", "-connect", &connect];
    all.extend_from_slice(args);
    let out = run_with_input("openssl", &all, b"");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a Python script (`python3 -c`) with `args`; its stdout, asserting success.
pub fn python(script: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run_with_input("python3", &all, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A rustls client trusting `ca`, offering `alpn`.
pub fn client_config(ca: &Path, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Arc::new(config)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` for `localhost`, handshake done.
pub fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(WAIT))?;
    tcp.set_write_timeout(Some(WAIT))?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// One `GET path` on a keep-alive TLS connection: the status and body.
pub fn tls_get(stream: &mut TlsStream, path: &str) -> std::io::Result<(u16, String)> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    stream.flush()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head[9..12].parse().unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Whether the server closed `conn` (EOF or reset) within [`WAIT`], whatever it sent first.
pub fn closed_by_server(conn: &mut TcpStream) -> bool {
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}
