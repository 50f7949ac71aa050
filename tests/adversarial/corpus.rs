//! Hostile bytes: every file of tests/corpus/ (written by tests/corpus/generate.py) is sent
//! with a valid request appended in the same write. The server must answer the status in the
//! file name (`414_431`: either) with `Connection: close`, then EOF: exactly one response, so the appended request
//! is never answered (no desync). `eof-*` files are truncated requests followed by a
//! half-close: no 2xx, at most one refusal, then EOF.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;

use crate::support::{config, repo_file, Server, WAIT};

const VALID: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

/// Every `.http` file of tests/corpus, by name, sorted.
pub(crate) fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = repo_file("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Sends `bytes`, half-closes when `eof`, and reads to the end.
fn exchange(addr: SocketAddr, bytes: &[u8], eof: bool) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // A refusal may close before all of a large request is read: a failed write is fine.
    let _ = stream.write_all(bytes);
    if eof {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        // A reset after the whole response: the server closed with our bytes unread.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => Ok(out),
        Err(e) => Err(format!("{e} after {} bytes", out.len())),
    }
}

/// (status, has `Connection: close`) of each response head in `out`.
fn heads(out: &[u8]) -> Vec<(String, bool)> {
    let text = String::from_utf8_lossy(out);
    text.split("HTTP/1.1 ")
        .skip(1)
        .map(|r| {
            let head = r.split("\r\n\r\n").next().unwrap_or("");
            (
                r.get(..3).unwrap_or("").to_owned(),
                head.contains("\r\nConnection: close"),
            )
        })
        .collect()
}

fn check(addr: SocketAddr, name: &str, bytes: &[u8]) -> Result<(), String> {
    let expected = name.split('-').next().unwrap();
    let eof = expected == "eof";
    let mut request = bytes.to_vec();
    if !eof {
        request.extend_from_slice(VALID);
    }
    let out = exchange(addr, &request, eof)?;
    let heads = heads(&out);
    let ok = if eof {
        heads.is_empty() || (heads.len() == 1 && heads[0].0.starts_with('4') && heads[0].1)
    } else {
        heads.len() == 1 && heads[0].1 && expected.split('_').any(|s| s == heads[0].0)
    };
    if ok {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(&out[..out.len().min(120)]).into_owned();
    Err(format!("got {heads:?} ({shown:?})"))
}

#[test]
fn every_hostile_request_gets_its_status_and_a_close_and_nothing_more() {
    let server = Server::start(&config(&[(
        "body_bytes = \"1MiB\"",
        "body_bytes = \"64KiB\"",
    )]));
    let web = server.addr("web");
    let files = corpus();
    assert!(files.len() >= 150, "{} files in tests/corpus", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|(name, bytes)| {
            check(web, name, bytes)
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    // The server is whole afterwards.
    assert_eq!(crate::support::get(web, "/plaintext").status, 200);
}
