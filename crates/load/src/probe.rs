//! One blocking connection before the run: a refused or silent target ends
//! the command at once (as wrk does) instead of after the whole duration.

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;

use socket2::{Domain, Socket, Type};

use crate::config::Config;
use crate::target::Endpoint;

/// `Err` with the sentence to print when no connection can be made.
pub fn reachable(config: &Config) -> Result<(), String> {
    let result = match &config.target.endpoint {
        Endpoint::Tcp(dest) => tcp(*dest, config),
        Endpoint::Unix(path) => UnixStream::connect(path).map(|_| None),
    };
    let target = crate::report::Settings::of(config).target;
    let socket = result.map_err(|e| {
        format!("cannot connect to {target}: {e}; is the server running and listening there?")
    })?;
    match (socket, &config.target.tls_host) {
        (Some(s), Some(host)) => handshake(s, host, config).map_err(|e| format!("{target}: {e}")),
        _ => Ok(()),
    }
}

fn tcp(dest: SocketAddr, config: &Config) -> std::io::Result<Option<Socket>> {
    let socket = Socket::new(Domain::for_address(dest), Type::STREAM, None)?;
    if let Some(ip) = config.source_addrs.first() {
        socket.bind(&SocketAddr::new(*ip, 0).into())?;
    }
    socket.connect_timeout(&dest.into(), config.timeout)?;
    Ok(Some(socket))
}

/// `https://`: a server that does not finish a handshake (wrong CA, not TLS
/// on that port) stops the command here, with the cause. This handshake is
/// not in the report's figures.
fn handshake(socket: Socket, host: &str, config: &Config) -> Result<(), String> {
    let tls = crate::tls::client_config(&config.tls)?;
    let name = crate::tls::server_name(host)?;
    socket
        .set_read_timeout(Some(config.timeout))
        .and_then(|()| socket.set_write_timeout(Some(config.timeout)))
        .map_err(|e| e.to_string())?;
    crate::tls::probe(socket.into(), std::sync::Arc::new(tls), name)
}
