//! File-descriptor and local-port limits: raise what we may, and say plainly
//! what caps a run and how to get past it.

use crate::config::Config;
use crate::stats::ConnectCauses;
use crate::target::Endpoint;

/// Descriptors the client needs besides its sockets (epoll, stdio, files).
const SPARE_FDS: u64 = 32;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns warnings about
/// what will cap this run.
pub fn prepare(config: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    let need = config.connections as u64 + SPARE_FDS;
    match raise_nofile() {
        Ok(soft) if soft < need => notes.push(format!(
            "{} connections need about {need} file descriptors but the limit is {soft}; \
             raise the hard limit (ulimit -Hn, /etc/security/limits.conf, or LimitNOFILE= \
             under systemd) then run again with `ulimit -n {need}`",
            config.connections
        )),
        Ok(_) => {}
        Err(e) => notes.push(format!("could not read or raise RLIMIT_NOFILE: {e}")),
    }
    if let Some(note) = port_note(config) {
        notes.push(note);
    }
    notes
}

fn raise_nofile() -> std::io::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard {
        rlimit::Resource::NOFILE.set(hard, hard)?;
        return Ok(hard);
    }
    Ok(soft)
}

/// One local address can reach one server address:port from only the
/// ephemeral range (usually 28,232 ports).
fn port_note(config: &Config) -> Option<String> {
    if !matches!(config.target.endpoint, Endpoint::Tcp(_)) {
        return None;
    }
    let ports = ephemeral_ports()?;
    let sources = config.source_addrs.len().max(1) as u64;
    if (config.connections as u64) <= ports * sources {
        return None;
    }
    Some(format!(
        "{} connections exceed the {ports} ephemeral ports of {sources} source address(es); \
         spread them with --source-addrs 127.0.0.1-127.0.0.N (loopback) or widen \
         net.ipv4.ip_local_port_range",
        config.connections
    ))
}

fn ephemeral_ports() -> Option<u64> {
    let (lo, hi) = ephemeral_range()?;
    Some(u64::from(hi - lo) + 1)
}

/// `net.ipv4.ip_local_port_range`, low and high port.
pub fn ephemeral_range() -> Option<(u16, u16)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_ascii_whitespace().map(|n| n.parse::<u16>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (lo > 0 && lo <= hi).then_some((lo, hi))
}

/// After the run: what the connect failures mean and what to do about them.
pub fn explain(causes: &ConnectCauses) -> Vec<String> {
    let mut notes = Vec::new();
    if causes.addr_not_available > 0 {
        notes.push(format!(
            "{} connects failed with EADDRNOTAVAIL: out of local ports; use --source-addrs \
             127.0.0.1-127.0.0.16 to spread connections over more source addresses",
            causes.addr_not_available
        ));
    }
    if causes.fd_limit > 0 {
        let soft = rlimit::Resource::NOFILE.get().map(|(s, _)| s).unwrap_or(0);
        notes.push(format!(
            "{} connects failed with EMFILE/ENFILE: out of file descriptors (limit {soft}); \
             raise it with `ulimit -n` (and the hard limit) or use fewer connections",
            causes.fd_limit
        ));
    }
    if causes.timeout > 0 {
        notes.push(format!(
            "{} connects timed out while opening: the server's accept backlog probably \
             overflowed (the kernel drops SYNs while the queue is full); open connections \
             more slowly with --connect-rate N/s, or raise the server's listen backlog and \
             net.core.somaxconn",
            causes.timeout
        ));
    }
    if causes.refused > 0 {
        notes.push(format!(
            "{} connects were refused: is the server listening, and is its accept backlog large enough?",
            causes.refused
        ));
    }
    notes
}
