//! The TARGET argument: where to connect and what path to ask for.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Which protocol the connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Echo,
}

/// Where the connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A parsed TARGET: endpoint, the Host header value, the request path and
/// the protocol the scheme implies (`unix:` implies none: `--protocol` or http).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub endpoint: Endpoint,
    pub host: String,
    pub path: String,
    pub scheme_protocol: Option<Protocol>,
    /// `https://`: the URL's host (no port), sent as SNI and checked
    /// against the server's certificate.
    pub tls_host: Option<String>,
}

/// Why a TARGET was refused; each phrase names what the user should fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    UnknownScheme,
    MissingPort,
    BadPort,
    Unresolved(String),
    EmptyUnixPath,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownScheme => {
                f.write_str("target must start with http://, https://, echo:// or unix:/")
            }
            Self::MissingPort => f.write_str("echo:// targets need an explicit :PORT"),
            Self::BadPort => f.write_str("port is not a number from 1 to 65535"),
            Self::Unresolved(h) => write!(f, "cannot resolve host {h:?}"),
            Self::EmptyUnixPath => f.write_str("unix: target needs a socket path"),
        }
    }
}

impl std::error::Error for TargetError {}

/// Parses `http[s]://HOST[:PORT][/PATH]`, `echo://HOST:PORT` or `unix:/PATH`.
pub fn parse(s: &str) -> Result<Target, TargetError> {
    if let Some(rest) = s.strip_prefix("http://") {
        return parse_inet(rest, Protocol::Http, false);
    }
    if let Some(rest) = s.strip_prefix("https://") {
        return parse_inet(rest, Protocol::Http, true);
    }
    if let Some(rest) = s.strip_prefix("echo://") {
        return parse_inet(rest, Protocol::Echo, false);
    }
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(TargetError::EmptyUnixPath);
        }
        return Ok(Target {
            endpoint: Endpoint::Unix(PathBuf::from(path)),
            host: "localhost".to_string(),
            path: "/".to_string(),
            scheme_protocol: None,
            tls_host: None,
        });
    }
    Err(TargetError::UnknownScheme)
}

fn parse_inet(rest: &str, protocol: Protocol, tls: bool) -> Result<Target, TargetError> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = split_port(authority)?;
    let port = match (port, protocol) {
        (Some(p), _) => p,
        (None, Protocol::Http) if tls => 443,
        (None, Protocol::Http) => 80,
        (None, Protocol::Echo) => return Err(TargetError::MissingPort),
    };
    let addr = resolve(host, port)?;
    Ok(Target {
        endpoint: Endpoint::Tcp(addr),
        host: authority.to_string(),
        path: path.to_string(),
        scheme_protocol: Some(protocol),
        tls_host: tls.then(|| host.to_string()),
    })
}

/// Splits `host:port`, keeping bracketed IPv6 literals whole.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), TargetError> {
    let colon = if authority.starts_with('[') {
        authority.find("]:").map(|i| i + 1)
    } else {
        authority.rfind(':')
    };
    let Some(i) = colon else {
        return Ok((authority, None));
    };
    let port: u16 = authority[i + 1..]
        .parse()
        .map_err(|_| TargetError::BadPort)?;
    if port == 0 {
        return Err(TargetError::BadPort);
    }
    Ok((&authority[..i], Some(port)))
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, TargetError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs = (bare, port)
        .to_socket_addrs()
        .map_err(|_| TargetError::Unresolved(host.to_string()))?;
    // Prefer IPv4: --source-addrs ranges are IPv4 and localhost often lists ::1 first.
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or_else(|| all.first())
        .copied()
        .ok_or_else(|| TargetError::Unresolved(host.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> (SocketAddr, String, String) {
        let t = parse(s).expect("valid target");
        match t.endpoint {
            Endpoint::Tcp(a) => (a, t.host, t.path),
            Endpoint::Unix(_) => panic!("expected tcp for {s}"),
        }
    }

    #[test]
    fn http_with_path_and_port() {
        let (a, host, path) = tcp("http://127.0.0.1:8080/plaintext?x=1");
        assert_eq!(a, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(host, "127.0.0.1:8080");
        assert_eq!(path, "/plaintext?x=1");
    }

    #[test]
    fn http_defaults_port_80_and_root_path() {
        let (a, _, path) = tcp("http://127.0.0.1");
        assert_eq!(a.port(), 80);
        assert_eq!(path, "/");
    }

    #[test]
    fn echo_needs_port() {
        assert_eq!(parse("echo://127.0.0.1"), Err(TargetError::MissingPort));
        let t = parse("echo://127.0.0.1:9000").unwrap();
        assert_eq!(t.scheme_protocol, Some(Protocol::Echo));
    }

    #[test]
    fn ipv6_literal() {
        let (a, _, _) = tcp("http://[::1]:81/");
        assert_eq!(a, "[::1]:81".parse().unwrap());
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("ftp://x:1/"), Err(TargetError::UnknownScheme));
        assert_eq!(parse("http://127.0.0.1:0/"), Err(TargetError::BadPort));
        assert_eq!(parse("http://127.0.0.1:99999/"), Err(TargetError::BadPort));
        assert_eq!(parse("unix:"), Err(TargetError::EmptyUnixPath));
    }

    #[test]
    fn https_defaults_port_443_and_names_the_host() {
        let t = parse("https://localhost/x").unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("127.0.0.1:443".parse().unwrap()));
        assert_eq!(t.tls_host.as_deref(), Some("localhost"));
        assert_eq!(t.host, "localhost");
        let t = parse("https://[::1]:8443/").unwrap();
        assert_eq!(t.tls_host.as_deref(), Some("[::1]"));
        assert_eq!(parse("http://localhost/").unwrap().tls_host, None);
    }

    #[test]
    fn unix_path() {
        let t = parse("unix:/tmp/s.sock").unwrap();
        assert_eq!(t.endpoint, Endpoint::Unix(PathBuf::from("/tmp/s.sock")));
        assert_eq!(t.scheme_protocol, None);
    }
}
