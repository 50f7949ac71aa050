//! Instructions per head parse, for callgrind (`head_count.sh` beside this file runs it for N
//! and 2N parses and prints the difference over N): deterministic where a timed bench on a
//! shared machine is not. Run by `cargo bench` as well, where it only checks its heads parse.
//!
//! Arguments: `N load|browser` (anything else, as `cargo bench` passes: a short self-check).

use std::hint::black_box;

use coreloop_http::{parse_head, HttpConfig};

/// What `coreloop-load` sends (benches/compare/instructions.sh's S1 and S2).
const LOAD: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:18095\r\n\r\n";

/// A browser's request: long values, several fields the head reads and several it passes over.
const BROWSER: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: server\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\nCookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: keep-alive\r\n\r\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let count = args.next().and_then(|n| n.parse::<usize>().ok());
    let head = match args.next().as_deref() {
        Some("browser") => BROWSER,
        _ => LOAD,
    };
    let config = HttpConfig::default();
    let mut parsed = 0;
    for _ in 0..count.unwrap_or(1000) {
        let got = parse_head(black_box(head), &config)
            .expect("valid")
            .expect("whole");
        parsed += got.len;
        black_box(&got);
    }
    assert_eq!(parsed, count.unwrap_or(1000) * head.len());
}
