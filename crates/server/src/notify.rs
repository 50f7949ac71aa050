//! systemd's readiness protocol (sd_notify(3)): datagrams of `KEY=VALUE` lines to the socket
//! named by `NOTIFY_SOCKET`, a path or, with a leading `@`, an abstract name. Without the
//! variable every call does nothing. The first failure is logged, later ones only counted
//! (the count is logged when the server stops): a notification is advice to the service
//! manager, never a reason to stop serving nor to flood the log.

use std::cell::Cell;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go, if anywhere.
pub(crate) struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// Failed sends so far; only the first is logged. The main thread alone notifies.
    failures: Cell<u64>,
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
        Self {
            target,
            failures: Cell::new(0),
        }
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
                self.failed(&e);
            }
        }
    }

    /// Counts a failure; logs only the first, so a gone service manager cannot fill the log.
    fn failed(&self, error: &std::io::Error) -> bool {
        let n = self.failures.get() + 1;
        self.failures.set(n);
        if n == 1 {
            tracing::warn!("systemd notification failed: {error} (later failures are not logged)");
        }
        n == 1
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let n = self.failures.get();
        if n > 1 {
            tracing::warn!("systemd notifications: {n} failed in all");
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> Option<u64> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).ok()?;
    let micros = u64::try_from(now.tv_nsec).ok()? / 1_000;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/uptime is CLOCK_BOOTTIME, which runs ahead of CLOCK_MONOTONIC by the time the
    /// machine was suspended: a reading must sit at or below it (at its 10 ms resolution), and
    /// an Instant-derived guess must not be wildly off either.
    #[test]
    fn monotonic_reading_is_the_kernel_clock() {
        let before = monotonic_usec().unwrap();
        let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
        let boot_secs: f64 = uptime.split(' ').next().unwrap().parse().unwrap();
        let after = monotonic_usec().unwrap();
        assert!(after >= before);
        let boot_usec = (boot_secs * 1e6) as u64;
        assert!(
            before <= boot_usec + 10_000,
            "{before} > uptime {boot_usec}"
        );
        assert!(before > 0);
    }

    #[test]
    fn only_the_first_failure_is_logged() {
        let notifier = Notifier {
            target: None,
            failures: Cell::new(0),
        };
        let error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let logged: Vec<bool> = (0..3).map(|_| notifier.failed(&error)).collect();
        assert_eq!(logged, [true, false, false]);
        assert_eq!(notifier.failures.get(), 3);
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
            failures: Cell::new(0),
        };
        notifier.ready();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
