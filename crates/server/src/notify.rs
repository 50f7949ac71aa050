//! systemd's readiness protocol (sd_notify(3)): datagrams of `KEY=VALUE` lines to the socket
//! named by `NOTIFY_SOCKET`, a path or, with a leading `@`, an abstract name. Without the
//! variable every call does nothing. Failures are logged once and otherwise ignored: a
//! notification is advice to the service manager, never a reason to stop serving.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go, if anywhere.
pub(crate) struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`.
    pub fn from_env() -> Self {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|name| {
            let name = name.into_encoded_bytes();
            let addr = match name.strip_prefix(b"@") {
                Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name),
                None => SocketAddr::from_pathname(std::path::Path::new(
                    &String::from_utf8_lossy(&name).into_owned(),
                )),
            };
            let socket = UnixDatagram::unbound();
            match (socket, addr) {
                (Ok(socket), Ok(addr)) => Some((socket, addr)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("NOTIFY_SOCKET is set but unusable: {e}");
                    None
                }
            }
        });
        Self { target }
    }

    /// `READY=1`: every listener is bound and every shard runs (also the end of a reload).
    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=serving\n");
    }

    /// `RELOADING=1` with the time, as systemd 253+ (`Type=notify-reload`) asks for.
    pub fn reloading(&self) {
        let mut message = String::from("RELOADING=1\nSTATUS=reloading\n");
        if let Some(usec) = monotonic_usec() {
            message.push_str(&format!("MONOTONIC_USEC={usec}\n"));
        }
        self.send(&message);
    }

    /// `STOPPING=1`: draining has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining\n");
    }

    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.target {
            if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
                tracing::warn!("systemd notification failed: {e}");
            }
        }
    }
}

/// CLOCK_MONOTONIC in microseconds. std gives no raw reading and unsafe (libc) is forbidden
/// here, but on Linux `Instant` is that clock and its `Debug` shows `tv_sec` and `tv_nsec`;
/// if that ever changes the field is left out (systemd then takes its own reading).
fn monotonic_usec() -> Option<u64> {
    let debug = format!("{:?}", std::time::Instant::now());
    let number = |key: &str| -> Option<u64> {
        let rest = &debug[debug.find(key)? + key.len()..];
        let digits: String = rest
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some(number("tv_sec")? * 1_000_000 + number("tv_nsec")? / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_reading_is_plausible_and_moves_forward() {
        let a = monotonic_usec().expect("Instant's Debug shows tv_sec and tv_nsec");
        let b = monotonic_usec().unwrap();
        assert!(b >= a);
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("coreloop-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
        };
        notifier.ready();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
