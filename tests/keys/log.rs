//! `[log]`: level, format, access log.

use std::os::unix::net::UnixStream;

use crate::support::{config, get, Server, TempDir};

/// At `warn`, info lines (the `listening` announcements) are not written; an error line is.
#[test]
pub fn log_level_filters_lines() {
    let dir = TempDir::new();
    // A unix socket: no announcement to read the address from at this level, and no port
    // to pick in advance.
    let socket = dir.0.join("web.sock");
    let address = format!("address = \"unix:{}\"", socket.display());
    let text = config(&[
        ("level = \"info\"", "level = \"warn\""),
        ("address = \"127.0.0.1:0\"", &address),
    ]);
    let path = dir.write("coreloop.toml", &text);
    // Wait until the socket answers instead (the signal handlers are installed before any
    // listener is bound).
    let server = Server::spawn(&["--config", path.to_str().unwrap()], dir, path.clone(), 0);
    assert!(super::eventually(|| UnixStream::connect(&socket).is_ok()));
    std::fs::write(
        &path,
        text.replace("balance = \"least-loaded\"", "balance = \"x\""),
    )
    .unwrap();
    server.signal("HUP");
    server.wait_for("reload refused", 1);
    let log = server.stderr();
    assert!(
        !log.contains("listening name="),
        "info lines at level warn:\n{log}"
    );
}

#[test]
pub fn log_format_json() {
    let server = Server::start(&config(&[("format = \"text\"", "format = \"json\"")]));
    let line = server.stderr().lines().next().unwrap().to_owned();
    assert!(
        line.starts_with('{') && line.contains("\"message\":"),
        "{line}"
    );
}

#[test]
pub fn access_log_writes_a_line_per_response() {
    let edit = ("access_log = false", "access_log = \"stderr\"");
    let server = Server::start(&config(&[edit]));
    assert_eq!(get(server.addr("web"), "/nowhere").status, 404);
    server.wait_for(" GET /nowhere 404 ", 1);
}

/// A request with a query, a user agent and a referer, from a client port the test knows.
fn logged_request(web: std::net::SocketAddr, path: &str) -> u16 {
    let mut conn = crate::support::Conn::open(web);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1.0 (\"x\")\r\nReferer: http://r.example/\r\n\r\n"
    );
    conn.send(&request).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 404);
    conn.stream.local_addr().unwrap().port()
}

/// The lines of the access-log file once it holds `n`, bounded.
fn log_lines(file: &std::path::Path, n: usize) -> Vec<String> {
    let read = || std::fs::read_to_string(file).unwrap_or_default();
    assert!(
        crate::support::eventually(|| read().lines().count() >= n),
        "access log: {}",
        read()
    );
    read().lines().map(str::to_owned).collect()
}

fn logging_to(dir: &TempDir, format: &str, log_format: &str) -> (Server, std::path::PathBuf) {
    let file = dir.0.join("access.log");
    let target = format!("access_log = \"{}\"", file.display());
    let server = Server::start(&config(&[
        ("access_log = false", &target),
        ("access_format = \"auto\"", format),
        ("format = \"text\"", log_format),
    ]));
    (server, file)
}

/// `json`: one JSON object per line with the client's address and port, the listener, the
/// target with its query, the status, bytes, seconds with microseconds, agent and referer.
/// `auto` under `log.format = "json"` is the same; `combined` is read by GoAccess.
#[test]
pub fn access_format_writes_json_and_combined() {
    for (format, log_format) in [
        ("access_format = \"json\"", "format = \"text\""),
        ("access_format = \"auto\"", "format = \"json\""),
    ] {
        let dir = TempDir::new();
        let (server, file) = logging_to(&dir, format, log_format);
        let port = logged_request(server.addr("web"), "/nowhere?q=1");
        let line = log_lines(&file, 1).remove(0);
        let check = "import json,sys; r=json.loads(sys.argv[1]); \
                     print(r['client'], r['client_port'], r['listener'], r['method'], r['target'], \
                     r['protocol'], r['status'], r['bytes'] > 0, r['user_agent'], r['referer'], \
                     isinstance(r['duration'], float), r['upstream'])";
        let out = std::process::Command::new("python3")
            .args(["-c", check, &line])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!(
                "127.0.0.1 {port} web GET /nowhere?q=1 HTTP/1.1 404 True probe/1.0 (\"x\") \
                 http://r.example/ True None"
            ),
            "{format} {log_format}: {line}"
        );
    }
    let dir = TempDir::new();
    let (server, file) = logging_to(&dir, "access_format = \"combined\"", "format = \"text\"");
    for i in 0..5 {
        logged_request(server.addr("web"), &format!("/missing/{i}?a=b"));
    }
    let lines = log_lines(&file, 5);
    let fields = regex_free_combined(&lines[0]);
    assert_eq!(fields[0], "127.0.0.1");
    assert!(
        fields[1].starts_with("GET /missing/0?a=b HTTP/1.1"),
        "{}",
        lines[0]
    );
    goaccess_reads(&file, 5);
}

/// nginx `combined`: `addr - - [time] "request" status bytes "referer" "agent" seconds`;
/// returns `[addr, request, status, bytes, referer, agent, seconds]`.
fn regex_free_combined(line: &str) -> Vec<String> {
    let (addr, rest) = line.split_once(" - - [").unwrap();
    let (_time, rest) = rest.split_once("] \"").unwrap();
    let (request, rest) = rest.split_once("\" ").unwrap();
    let (status, rest) = rest.split_once(' ').unwrap();
    let (bytes, rest) = rest.split_once(" \"").unwrap();
    let (referer, rest) = rest.split_once("\" \"").unwrap();
    let (agent, seconds) = rest.rsplit_once("\" ").unwrap();
    assert!(
        seconds.contains('.') && seconds.parse::<f64>().is_ok(),
        "{line}"
    );
    assert!(
        status.parse::<u16>().is_ok() && bytes.parse::<u64>().is_ok(),
        "{line}"
    );
    [addr, request, status, bytes, referer, agent, seconds]
        .map(str::to_owned)
        .to_vec()
}

/// GoAccess (Debian `goaccess`, installed by .ci/setup) parses the file with its own
/// `COMBINED` format: every line valid, none failed.
fn goaccess_reads(file: &std::path::Path, lines: u64) {
    let report = file.with_extension("json");
    let out = std::process::Command::new("goaccess")
        .arg(file)
        .args(["--log-format=COMBINED", "--no-global-config", "-o"])
        .arg(&report)
        .output()
        .expect("goaccess is missing: .ci/setup installs it");
    assert!(
        out.status.success(),
        "goaccess: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(&report).unwrap();
    let number = |key: &str| -> u64 {
        let at = json
            .find(&format!("\"{key}\": "))
            .unwrap_or_else(|| panic!("{key}: {json}"));
        let rest = &json[at + key.len() + 4..];
        rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
            .parse()
            .unwrap()
    };
    assert_eq!(number("total_requests"), lines, "{json}");
    assert_eq!(number("valid_requests"), lines, "{json}");
    assert_eq!(number("failed_requests"), 0, "{json}");
}
