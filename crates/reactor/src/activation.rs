//! Listening sockets inherited from systemd socket activation, matched to listeners by name.
//!
//! Every socket passed must be taken: one without a name, or whose name no listener has, is
//! refused when the reactor starts, and one that is not listening is refused when a
//! listener takes it. A socket nobody serves would otherwise sit in the process with clients
//! queueing on it forever.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

/// A socket waiting for its listener.
struct Passed {
    fd: RawFd,
    socket: OwnedFd,
}

#[derive(Default)]
struct Table {
    named: HashMap<String, Passed>,
    /// fds passed without a name: no listener can ever take them.
    unnamed: Vec<Passed>,
}

static INHERITED: OnceLock<Mutex<Table>> = OnceLock::new();

fn inherited() -> std::sync::MutexGuard<'static, Table> {
    INHERITED
        .get_or_init(|| {
            let mut table = Table::default();
            for (fd, name, socket) in crate::sys::take_listen_fds() {
                let passed = Passed { fd, socket };
                match name {
                    Some(name) => {
                        table.named.insert(name, passed);
                    }
                    None => table.unnamed.push(passed),
                }
            }
            Mutex::new(table)
        })
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The names of the sockets systemd passed to this process and that no listener took yet.
/// The first call takes them from the environment (`LISTEN_FDS`, `LISTEN_PID`,
/// `LISTEN_FDNAMES`); a listener uses one with [`crate::ListenAddr::Inherited`].
pub fn inherited_names() -> Vec<String> {
    let mut names: Vec<String> = inherited().named.keys().cloned().collect();
    names.sort();
    names
}

/// Offers a listening socket this process already holds under `name`, as if systemd had
/// passed it: a listener with [`crate::ListenAddr::Inherited`]`(name)` takes it. For a
/// supervisor that hands sockets over some other way, and for tests. Gives the socket back
/// when the name is taken.
pub fn offer(name: &str, socket: OwnedFd) -> Result<(), OwnedFd> {
    let mut table = inherited();
    if table.named.contains_key(name) {
        return Err(socket);
    }
    let fd = socket.as_raw_fd();
    table.named.insert(name.to_owned(), Passed { fd, socket });
    Ok(())
}

/// Takes the inherited socket called `name`, with its fd number; each can be taken once.
pub(crate) fn take(name: &str) -> io::Result<(RawFd, OwnedFd)> {
    let passed = inherited().named.remove(name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no socket named `{name}` was passed by systemd (LISTEN_FDNAMES)"),
        )
    })?;
    Ok((passed.fd, passed.socket))
}

/// At start, after every listener took its socket: `Err` naming each socket left over, with
/// the fix. The sockets stay (and stay refused at the next start).
pub(crate) fn check_all_taken() -> Result<(), String> {
    let table = inherited();
    let mut problems: Vec<String> = table
        .unnamed
        .iter()
        .map(|p| {
            format!(
                "systemd passed fd {} without a name (LISTEN_FDNAMES): set FileDescriptorName= \
                 in the socket unit (systemd-socket-activate --fdname=) to the name of the \
                 listener that should take it",
                p.fd
            )
        })
        .collect();
    let mut named: Vec<(&String, &Passed)> = table.named.iter().collect();
    named.sort_by_key(|(_, p)| p.fd);
    problems.extend(named.into_iter().map(|(name, p)| {
        format!(
            "systemd passed fd {} named `{name}`, but no listener is called `{name}`: name a \
             listener `{name}`, or remove the socket from the unit (FileDescriptorName= sets \
             the name)",
            p.fd
        )
    }));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
