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
        Endpoint::Unix(path) => UnixStream::connect(path).map(drop),
    };
    result.map_err(|e| {
        format!(
            "cannot connect to {}: {e}; is the server running and listening there?",
            crate::report::Settings::of(config).target
        )
    })
}

fn tcp(dest: SocketAddr, config: &Config) -> std::io::Result<()> {
    let socket = Socket::new(Domain::for_address(dest), Type::STREAM, None)?;
    if let Some(ip) = config.source_addrs.first() {
        socket.bind(&SocketAddr::new(*ip, 0).into())?;
    }
    socket.connect_timeout(&dest.into(), config.timeout)
}
