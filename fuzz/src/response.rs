//! Is a byte stream a sequence of well-formed HTTP/1.1 responses, as coreloop writes them?
//!
//! Each response is `HTTP/1.1 NNN reason CRLF`, then `name: value CRLF` fields, then CRLF.
//! Statuses that carry a body (RFC 9110 §6.4.1: not 1xx, 204, 304) have exactly one
//! Content-Length and then that many bytes, except that a response to HEAD announces the length
//! and sends nothing. The checker does not know which requests were HEAD, so it follows both
//! readings (a set of reachable offsets, linear in the output). A response with
//! `Connection: close` must be the last one.

use std::collections::BTreeSet;

/// The head of one response, read from the start of its bytes.
struct ResponseHead {
    /// Bytes through the empty line.
    len: usize,
    status: u16,
    content_length: Option<u64>,
    close: bool,
}

/// Panics (with the output) unless `out` is a sequence of whole, well-formed responses.
pub fn check_responses(out: &[u8]) {
    if let Err(why) = parse_stream(out) {
        panic!(
            "malformed response stream: {why}\n--- output ---\n{}",
            String::from_utf8_lossy(out)
        );
    }
}

fn parse_stream(out: &[u8]) -> Result<(), String> {
    let mut todo = vec![0usize];
    let mut seen = BTreeSet::new();
    let mut last_error = String::from("no response reaches the end of the output");
    while let Some(at) = todo.pop() {
        if at == out.len() {
            return Ok(());
        }
        if !seen.insert(at) {
            continue;
        }
        let head = match parse_head(&out[at..]) {
            Ok(head) => head,
            Err(why) => {
                last_error = format!("at byte {at}: {why}");
                continue;
            }
        };
        let end = at + head.len;
        let mut next = vec![end];
        if let Some(length) = head.content_length {
            // GET: the body follows. HEAD: nothing follows (next stays `end`).
            let with_body = usize::try_from(length)
                .ok()
                .and_then(|l| end.checked_add(l));
            match with_body {
                Some(e) if e <= out.len() => next.push(e),
                _ if length > 0 => {
                    last_error = format!("at byte {at}: body of {length} bytes cut short");
                }
                _ => {}
            }
        }
        for n in next {
            if head.close && n != out.len() {
                last_error = format!(
                    "at byte {at}: output after a `Connection: close` response ({} {})",
                    head.status, n
                );
                continue;
            }
            todo.push(n);
        }
    }
    Err(last_error)
}

fn parse_head(bytes: &[u8]) -> Result<ResponseHead, String> {
    let line_end = find_crlf(bytes).ok_or("status line without CRLF")?;
    let status = status_line(&bytes[..line_end])?;
    let mut at = line_end + 2;
    let (mut lengths, mut content_length, mut close) = (0, None, false);
    loop {
        let rest = &bytes[at..];
        let end = find_crlf(rest).ok_or("field line without CRLF")?;
        if end == 0 {
            at += 2;
            break;
        }
        let (name, value) = field(&rest[..end])?;
        if name.eq_ignore_ascii_case(b"content-length") {
            lengths += 1;
            content_length = Some(decimal(value).ok_or("bad Content-Length value")?);
        } else if name.eq_ignore_ascii_case(b"connection") && value.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err("Transfer-Encoding in a response (every body has a length)".into());
        }
        at += end + 2;
    }
    let bodyless = status < 200 || status == 204 || status == 304;
    match (bodyless, lengths) {
        (true, 0) | (false, 1) => {}
        (true, _) => return Err(format!("{status} with Content-Length")),
        (false, n) => return Err(format!("{status} with {n} Content-Length fields")),
    }
    if status < 200 && close {
        return Err("a 1xx response with Connection: close".into());
    }
    Ok(ResponseHead {
        len: at,
        status,
        content_length,
        close,
    })
}

fn status_line(line: &[u8]) -> Result<u16, String> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .ok_or("status line does not start with `HTTP/1.1 `")?;
    let (code, reason) = match rest {
        [a, b, c, b' ', reason @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => (
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            reason,
        ),
        _ => return Err("status code is not three digits and a space".into()),
    };
    if !(100..=599).contains(&code) {
        return Err(format!("status {code} out of range"));
    }
    if !reason
        .iter()
        .all(|&b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Err("control byte in the reason phrase".into());
    }
    Ok(code)
}

/// `name: value`, with a token name and a value free of CR, LF and NUL.
fn field(line: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or("field line without a colon")?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(format!(
            "bad field name {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("CR, LF or NUL in a field value".into());
    }
    let value = value.strip_prefix(b" ").unwrap_or(value);
    Ok((name, value))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::parse_stream;

    #[test]
    fn streams() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(parse_stream(ok), Ok(()));
        let two = [&ok[..], &ok[..]].concat();
        assert_eq!(parse_stream(&two), Ok(()));
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(parse_stream(head), Ok(()));
        assert_eq!(parse_stream(b""), Ok(()));
        let close = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(parse_stream(close), Ok(()));
        assert!(parse_stream(&[&close[..], &ok[..]].concat()).is_err());
        assert!(parse_stream(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhi").is_err());
        assert!(parse_stream(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_stream(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n").is_err());
    }
}
