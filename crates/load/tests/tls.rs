//! `https://` targets against a real TLS server (Python's `ssl` over
//! OpenSSL, tests/tls_server.py), with certificates made by `openssl req`
//! for each test: what the server saw must match what the report counts.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::run_bin;

const BOUND: Duration = Duration::from_secs(60);

/// A CA, a certificate it signed for localhost and 127.0.0.1, and a second
/// CA that signed nothing here. Removed on drop.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    #[rustfmt::skip]
    fn make() -> Certs {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "coreloop-load-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Certs { dir };
        c.ca("ca");
        c.ca("other-ca");
        std::fs::write(
            c.path("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        c.openssl(&[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
        ]);
        c.openssl(&[
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
        ]);
        c
    }

    #[rustfmt::skip]
    fn ca(&self, name: &str) {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN=coreloop-load test {name}"),
        );
        self.openssl(&[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl (the tests need the openssl command)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tests/tls_server.py, running; killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
    control: u16,
}

impl TlsServer {
    fn start(certs: &Certs, extra: &[&str]) -> TlsServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(certs.path("server.pem"))
            .arg(certs.path("server.key"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 tests/tls_server.py");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tls_server.py printed its ports");
        let ports: Vec<u16> = line
            .split_whitespace()
            .map(|p| p.parse().expect("a port"))
            .collect();
        assert_eq!(ports.len(), 2, "tls_server.py said {line:?}");
        TlsServer {
            child,
            port: ports[0],
            control: ports[1],
        }
    }

    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/", self.port)
    }

    /// What the server counted so far.
    fn seen(&self) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.control)).expect("control port");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).expect("control line");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"))
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn load(args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["--warmup", "0s", "--no-progress", "--json", "-"];
    if !args.contains(&"-d") {
        all.extend(["-d", "30s"]);
    }
    all.extend_from_slice(args);
    let out = run_bin(&all, BOUND);
    let json = if out.stdout.trim().is_empty() {
        Value::Null
    } else {
        out.json()
    };
    (out.code, json, out.stderr)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Keep-alive over verified TLS: every request the report counts reached
/// the server, one handshake per connection (plus the probe before the
/// run), each with SNI `localhost`, ALPN http/1.1 and TLS 1.3.
#[test]
fn cacert_keep_alive_counts_match_the_server() {
    let certs = Certs::make();
    let server = TlsServer::start(&certs, &[]);
    let ca = certs.arg("ca.pem");
    let url = server.url("localhost");
    let (code, r, _) = load(&[
        "-c",
        "3",
        "-t",
        "2",
        "--requests",
        "300",
        "--cacert",
        &ca,
        &url,
    ]);
    assert_eq!(code, Some(0));
    let seen = server.seen();
    assert_eq!(n(&r["requests"]["completed"]), 300);
    assert_eq!(n(&seen["requests"]), 300);
    let tls = &r["tls"];
    let handshakes = n(&tls["handshakes"]);
    assert_eq!(handshakes, n(&r["connections"]["opened"]));
    assert!((1..=3).contains(&handshakes), "{tls}");
    assert_eq!(
        n(&seen["handshakes"]),
        handshakes + 1,
        "the probe's handshake too"
    );
    assert_eq!(n(&seen["sni"]["localhost"]), handshakes + 1, "{seen}");
    assert_eq!(n(&seen["alpn"]["http/1.1"]), handshakes + 1, "{seen}");
    assert_eq!(n(&tls["alpn_http11"]), handshakes);
    assert_eq!(n(&tls["tls13"]), handshakes);
    assert_eq!(n(&tls["handshake_time"]["count"]), handshakes);
    assert_eq!(n(&tls["failures"]["certificate"]), 0);
    assert_eq!(r["settings"]["tls"]["verify"], "cacert");
    assert!(r["target"]
        .as_str()
        .unwrap()
        .starts_with("https://localhost:"));
}

/// `Connection: close`: one full handshake per request, none resumed, on
/// the client's count and the server's.
#[test]
fn connection_close_makes_a_full_handshake_per_request() {
    let certs = Certs::make();
    let server = TlsServer::start(&certs, &[]);
    let ca = certs.arg("ca.pem");
    let url = server.url("localhost");
    let args = [
        "-c",
        "1",
        "-t",
        "1",
        "--requests",
        "40",
        "-H",
        "Connection: close",
    ];
    let (code, r, _) = load(&[&args[..], &["--cacert", &ca, &url]].concat());
    assert_eq!(code, Some(0));
    let (tls, seen) = (&r["tls"], server.seen());
    assert_eq!(n(&r["requests"]["completed"]), 40);
    assert_eq!(n(&tls["handshakes"]), 40, "{tls}");
    assert_eq!(n(&tls["full"]), 40);
    assert_eq!(n(&tls["resumed"]), 0);
    assert_eq!(n(&tls["measured_handshakes"]), 40);
    assert!(tls["handshakes_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(n(&seen["handshakes"]), 41, "{seen}");
    assert_eq!(n(&seen["resumed"]), 0, "{seen}");
    assert_eq!(n(&seen["requests"]), 40);
}

/// `--tls-resume`: after the first full handshake, each reconnect resumes.
#[test]
fn tls_resume_resumes_sessions_on_reconnect() {
    let certs = Certs::make();
    let server = TlsServer::start(&certs, &[]);
    let ca = certs.arg("ca.pem");
    let url = server.url("localhost");
    let args = [
        "-c",
        "1",
        "-t",
        "1",
        "--requests",
        "20",
        "-H",
        "Connection: close",
    ];
    let (code, r, _) = load(&[&args[..], &["--tls-resume", "--cacert", &ca, &url]].concat());
    assert_eq!(code, Some(0));
    let (tls, seen) = (&r["tls"], server.seen());
    assert_eq!(n(&tls["handshakes"]), 20);
    assert_eq!(n(&tls["full"]), 1, "{tls}");
    assert_eq!(n(&tls["resumed"]), 19);
    assert_eq!(n(&seen["resumed"]), 19, "{seen}");
    assert_eq!(r["settings"]["tls"]["resume"], true);
}

/// A certificate the client cannot verify stops the run before it starts,
/// saying what to do; `--insecure` accepts it.
#[test]
fn wrong_ca_is_refused_and_insecure_accepts() {
    let certs = Certs::make();
    let server = TlsServer::start(&certs, &[]);
    let url = server.url("localhost");
    let other = certs.arg("other-ca.pem");
    let cases: [(&str, &[&str]); 2] = [
        ("--cacert of another CA", &["--cacert", &other]),
        ("the built-in roots", &[]),
    ];
    for (what, flags) in cases {
        let (code, _, stderr) = load(&[flags, &["--requests", "5", &url]].concat());
        assert_eq!(code, Some(3), "{what}: {stderr}");
        assert!(stderr.contains("certificate"), "{what}: {stderr}");
        assert!(stderr.contains("--cacert FILE"), "{what}: {stderr}");
    }
    assert_eq!(n(&server.seen()["handshakes"]), 0);
    let (code, r, _) = load(&["--insecure", "--requests", "5", "-c", "1", &url]);
    assert_eq!(code, Some(0));
    assert_eq!(n(&r["requests"]["completed"]), 5);
    assert_eq!(r["settings"]["tls"]["verify"], "insecure");
}

/// Handshakes that fail during the run are counted by cause, explained in
/// a note, and a run where none succeeded exits 3 (no connection made).
#[test]
fn handshake_failures_during_the_run_are_counted_by_cause() {
    let certs = Certs::make();
    let ca = certs.arg("ca.pem");
    let causes = [
        ("garbage", "protocol"),
        ("close", "closed"),
        ("stall", "timeout"),
        ("alert", "alert"),
    ];
    for (then, cause) in causes {
        // The first connection (the probe before the run) is served.
        let server = TlsServer::start(&certs, &["--after", "1", "--then", then]);
        let url = server.url("localhost");
        let args = ["-c", "2", "-t", "1", "-d", "1s", "--timeout", "300ms"];
        let (code, r, _) = load(&[&args[..], &["--cacert", &ca, &url]].concat());
        assert_eq!(code, Some(3), "{then}");
        let failures = &r["tls"]["failures"];
        assert!(n(&failures[cause]) > 0, "{then}: {failures}");
        let total: u64 = failures.as_object().unwrap().values().map(n).sum();
        assert_eq!(
            total,
            n(&failures[cause]),
            "{then}: one cause only: {failures}"
        );
        assert_eq!(n(&r["errors"]["tls"]), total, "{then}");
        assert_eq!(n(&r["tls"]["handshakes"]), 0);
        assert_eq!(n(&r["connections"]["opened"]), 0);
        let notes = r["notes"].to_string();
        assert!(notes.contains("TLS handshakes failed"), "{then}: {notes}");
        assert!(
            n(&server.seen()["connections"]) > 1,
            "{then}: the run's connections reached the server"
        );
    }
}

/// An `https://` target that is plain TCP (no TLS) fails at the probe.
#[test]
fn plain_http_server_on_an_https_url_is_refused() {
    let server = crate::support::Server::start(crate::support::Behaviour::ok());
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let (code, _, stderr) = load(&["--insecure", "--timeout", "1s", "--requests", "5", &url]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("TLS handshake failed: no answer within --timeout"),
        "{stderr}"
    );
}

/// `--processes`: the workers' TLS figures come back through their JSON
/// reports and merge exactly (counts and the handshake histogram).
#[test]
fn tls_figures_merge_over_processes() {
    let certs = Certs::make();
    let server = TlsServer::start(&certs, &[]);
    let ca = certs.arg("ca.pem");
    let url = server.url("localhost");
    let args = ["--processes", "2", "-c", "2", "-t", "1", "--requests", "60"];
    let (code, r, _) = load(
        &[
            &args[..],
            &["-H", "Connection: close", "--cacert", &ca, &url],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0));
    let tls = &r["tls"];
    assert_eq!(n(&r["requests"]["completed"]), 60);
    assert_eq!(n(&server.seen()["requests"]), 60);
    assert_eq!(n(&tls["handshakes"]), 60, "{tls}");
    assert_eq!(n(&tls["handshake_time"]["count"]), 60);
    assert_eq!(n(&tls["full"]), 60);
}

/// `openssl s_server -www` for TLS 1.2 and then 1.3: a close-delimited
/// HTTP/1.0 answer, the server's close_notify read with its last bytes
/// (which once left requests waiting for an edge that never came), one
/// full handshake per request, the version and ALPN agreed; and with
/// `--tls-resume`, resumption in both versions.
#[test]
fn openssl_s_server_each_version() {
    let certs = Certs::make();
    let ca = certs.arg("ca.pem");
    for (flag, version) in [("-tls1_2", "tls12"), ("-tls1_3", "tls13")] {
        let server = SServer::start(&certs, flag);
        let url = format!("https://localhost:{}/", server.port);
        let (code, r, _) = load(&[
            "-c",
            "1",
            "-t",
            "1",
            "--requests",
            "20",
            "--cacert",
            &ca,
            &url,
        ]);
        assert_eq!(code, Some(0), "{flag}");
        let tls = &r["tls"];
        assert_eq!(n(&r["requests"]["completed"]), 20, "{flag}");
        assert_eq!(n(&r["requests"]["failed"]), 0, "{flag}");
        assert_eq!(n(&tls["handshakes"]), 20, "{flag}: {tls}");
        assert_eq!(n(&tls[version]), 20, "{flag}: {tls}");
        assert_eq!(n(&tls["alpn_http11"]), 20, "{flag}: {tls}");
        assert_eq!(n(&tls["resumed"]), 0, "{flag}: {tls}");
        // Session IDs or tickets (1.2), tickets (1.3): every reconnect resumes.
        let resume = ["-c", "1", "-t", "1", "--requests", "10", "--tls-resume"];
        let (code, r, _) = load(&[&resume[..], &["--cacert", &ca, &url]].concat());
        assert_eq!(code, Some(0), "{flag} --tls-resume");
        let tls = &r["tls"];
        assert_eq!(
            (n(&tls["full"]), n(&tls["resumed"])),
            (1, 9),
            "{flag}: {tls}"
        );
        assert_eq!(n(&tls[version]), 10, "{flag}: {tls}");
    }
}

/// `openssl s_server -www` on 127.0.0.1, port chosen by the kernel; killed on drop.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(certs: &Certs, version: &str) -> SServer {
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                "127.0.0.1:0",
                "-www",
                "-alpn",
                "http/1.1",
            ])
            .arg("-cert")
            .arg(certs.path("server.pem"))
            .arg("-key")
            .arg(certs.path("server.key"))
            .arg(version)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // "ACCEPT 127.0.0.1:PORT" once it listens.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .strip_prefix("ACCEPT ")
                    .and_then(|a| a.rsplit(':').next())
                {
                    let _ = tx.send(port.parse::<u16>().ok());
                    return;
                }
            }
            let _ = tx.send(None);
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .flatten()
            .expect("s_server printed ACCEPT with its port");
        SServer { child, port }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
