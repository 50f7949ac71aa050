//! Listening sockets inherited from systemd socket activation, matched to listeners by name.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, OnceLock};

static INHERITED: OnceLock<Mutex<HashMap<String, OwnedFd>>> = OnceLock::new();

fn inherited() -> &'static Mutex<HashMap<String, OwnedFd>> {
    INHERITED.get_or_init(|| Mutex::new(crate::sys::take_listen_fds().into_iter().collect()))
}

/// The names of the sockets systemd passed to this process and that no listener took yet.
/// The first call takes them from the environment (`LISTEN_FDS`, `LISTEN_PID`,
/// `LISTEN_FDNAMES`); a listener uses one with [`crate::ListenAddr::Inherited`].
pub fn inherited_names() -> Vec<String> {
    let table = inherited()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut names: Vec<String> = table.keys().cloned().collect();
    names.sort();
    names
}

/// Takes the inherited socket called `name`; each can be taken once.
pub(crate) fn take(name: &str) -> io::Result<OwnedFd> {
    let mut table = inherited()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    table.remove(name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no socket named `{name}` was passed by systemd (LISTEN_FDNAMES)"),
        )
    })
}
