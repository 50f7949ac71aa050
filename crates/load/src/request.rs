//! Requests encoded once, before the run: the hot path only copies slices of them.

use crate::config::{Config, ConfigError};
use crate::target::Protocol;

/// `pipeline + 1` copies of one request back to back, so any run of up to
/// `pipeline` requests starting anywhere inside the first copy is one
/// contiguous slice (a short write can leave us mid-request).
#[derive(Debug, Clone)]
pub struct Batch {
    bytes: Vec<u8>,
    unit: usize,
}

impl Batch {
    /// Encodes the request (HTTP) or payload (echo) the config describes.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let one = match config.protocol {
            Protocol::Http => http_request(config)?,
            Protocol::Echo => echo_payload(config.size),
        };
        let unit = one.len();
        Ok(Self {
            bytes: one.repeat(config.pipeline + 1),
            unit,
        })
    }

    /// Length of one request in bytes.
    pub fn unit(&self) -> usize {
        self.unit
    }

    /// The next `len` bytes to send when `pos` bytes of the current request are out.
    pub fn slice(&self, pos: usize, len: usize) -> &[u8] {
        &self.bytes[pos..pos + len]
    }

    /// One request (the echo payload, for echo mode).
    pub fn one(&self) -> &[u8] {
        &self.bytes[..self.unit]
    }
}

/// The byte at each offset of an echo payload: not all-zero, so a server
/// that answers with the wrong bytes or the wrong offset is caught.
pub fn echo_byte(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

fn echo_payload(size: usize) -> Vec<u8> {
    (0..size).map(echo_byte).collect()
}

fn http_request(config: &Config) -> Result<Vec<u8>, ConfigError> {
    check_token(&config.method, "method")?;
    let mut out = format!("{} {} HTTP/1.1\r\n", config.method, config.target.path);
    let has = |name: &str| {
        config.headers.iter().any(|h| {
            h.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
    };
    if !has("host") {
        out.push_str(&format!("Host: {}\r\n", config.target.host));
    }
    for h in &config.headers {
        check_header(h)?;
        out.push_str(h.trim());
        out.push_str("\r\n");
    }
    let wants_length =
        !config.body.is_empty() || matches!(config.method.as_str(), "POST" | "PUT" | "PATCH");
    if wants_length && !has("content-length") {
        out.push_str(&format!("Content-Length: {}\r\n", config.body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&config.body);
    Ok(bytes)
}

fn check_token(s: &str, what: &str) -> Result<(), ConfigError> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!("{what} {s:?} is not an HTTP token")))
    }
}

fn check_header(h: &str) -> Result<(), ConfigError> {
    let Some((name, value)) = h.split_once(':') else {
        return Err(ConfigError(format!(
            "header {h:?} must look like 'Name: value'"
        )));
    };
    check_token(name.trim(), "header name")?;
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(ConfigError(format!("header {h:?} contains a line break")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target;

    fn config(url: &str) -> Config {
        Config::new(target::parse(url).unwrap())
    }

    #[test]
    fn get_request_bytes() {
        let mut c = config("http://127.0.0.1:8080/plaintext");
        c.headers = vec!["Accept: */*".to_string()];
        let b = Batch::new(&c).unwrap();
        assert_eq!(
            b.one(),
            b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn post_body_gets_length_and_user_host_wins() {
        let mut c = config("http://127.0.0.1:8080/p");
        c.method = "POST".to_string();
        c.body = b"abc".to_vec();
        c.headers = vec!["host: example".to_string()];
        let b = Batch::new(&c).unwrap();
        assert_eq!(
            b.one(),
            b"POST /p HTTP/1.1\r\nhost: example\r\nContent-Length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn pipelined_batch_is_contiguous() {
        let mut c = config("echo://127.0.0.1:9");
        c.size = 5;
        c.pipeline = 3;
        let b = Batch::new(&c).unwrap();
        assert_eq!(b.unit(), 5);
        assert_eq!(b.slice(4, 15), b"eabcdeabcdeabcd");
    }

    #[test]
    fn refuses_injection() {
        let mut c = config("http://127.0.0.1:1/");
        c.headers = vec!["X: a\r\nEvil: 1".to_string()];
        assert!(Batch::new(&c).is_err());
        c.headers = vec!["no colon".to_string()];
        assert!(Batch::new(&c).is_err());
        c.headers.clear();
        c.method = "GE T".to_string();
        assert!(Batch::new(&c).is_err());
    }
}
