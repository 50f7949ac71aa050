//! Listen addresses: `host:port`, `[v6]:port`, `unix:/path`.
//!
//! Host names other than `localhost` are refused: resolving DNS while
//! loading a config makes start-up depend on the network, and a name with
//! several addresses would bind only one of them.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use crate::schema::Address;

/// `sun_path` is 108 bytes on Linux, one of which is the terminating NUL.
const UNIX_PATH_MAX: usize = 107;

pub(crate) fn parse_address(text: &str) -> Result<Address, &'static str> {
    if let Some(path) = text.strip_prefix("unix:") {
        return parse_unix(path);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Address::Tcp(addr));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("missing \":port\"");
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err("an IPv6 address needs brackets, e.g. \"[::1]:8080\"");
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err("the port must be a number in 0..=65535");
    };
    if host == "localhost" {
        return Ok(Address::Tcp(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            port,
        ))));
    }
    Err("the host must be an IP address or localhost (names are not resolved)")
}

fn parse_unix(path: &str) -> Result<Address, &'static str> {
    if path.is_empty() {
        return Err("empty unix socket path");
    }
    if path.contains('\0') {
        return Err("NUL byte in the unix socket path");
    }
    if path.len() > UNIX_PATH_MAX {
        return Err("unix socket path longer than 107 bytes");
    }
    Ok(Address::Unix(PathBuf::from(path)))
}

/// Whether two TCP addresses would fight over one port: equal, or one is a
/// wildcard on the same port. `[::]` takes IPv4 too (dual-stack default).
/// Port 0 asks the kernel for a fresh port, so it never collides.
pub(crate) fn overlaps(a: &Address, b: &Address) -> bool {
    match (a, b) {
        (Address::Unix(a), Address::Unix(b)) => a == b,
        (Address::Tcp(a), Address::Tcp(b)) => {
            if a.port() != b.port() || a.port() == 0 {
                return false;
            }
            let same_family = a.is_ipv4() == b.is_ipv4();
            let v6_wildcard = |s: &SocketAddr| s.is_ipv6() && s.ip().is_unspecified();
            a.ip() == b.ip()
                || (same_family && (a.ip().is_unspecified() || b.ip().is_unspecified()))
                || v6_wildcard(a)
                || v6_wildcard(b)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = parse_address(input).map(|a| a.to_string());
        assert_eq!(
            got.as_deref().map_err(|e| *e),
            expected,
            "parse_address({input:?})"
        );
    }

    #[test]
    fn addresses() {
        check("127.0.0.1:8080", Ok("127.0.0.1:8080"));
        check("[::1]:80", Ok("[::1]:80"));
        check("0.0.0.0:0", Ok("0.0.0.0:0"));
        check("localhost:9000", Ok("127.0.0.1:9000"));
        check("unix:/run/coreloop.sock", Ok("unix:/run/coreloop.sock"));
        check("8080", Err("missing \":port\""));
        check(
            "::1:80",
            Err("an IPv6 address needs brackets, e.g. \"[::1]:8080\""),
        );
        check(
            "127.0.0.1:99999",
            Err("the port must be a number in 0..=65535"),
        );
        check(
            "example.com:80",
            Err("the host must be an IP address or localhost (names are not resolved)"),
        );
        check("unix:", Err("empty unix socket path"));
        check(
            &format!("unix:/{}", "a".repeat(200)),
            Err("unix socket path longer than 107 bytes"),
        );
    }

    #[test]
    fn overlapping() {
        let tcp = |s: &str| parse_address(s).unwrap_or(Address::Unix("/x".into()));
        assert!(overlaps(&tcp("127.0.0.1:80"), &tcp("127.0.0.1:80")));
        assert!(overlaps(&tcp("0.0.0.0:80"), &tcp("127.0.0.1:80")));
        assert!(overlaps(&tcp("[::]:80"), &tcp("127.0.0.1:80")));
        assert!(!overlaps(&tcp("127.0.0.1:80"), &tcp("127.0.0.2:80")));
        assert!(!overlaps(&tcp("127.0.0.1:0"), &tcp("127.0.0.1:0")));
        assert!(!overlaps(&tcp("127.0.0.1:80"), &tcp("127.0.0.1:81")));
    }
}
