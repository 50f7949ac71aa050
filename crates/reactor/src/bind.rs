//! Binding a listener the way the balancing mode needs it: once for the acceptor, or once per
//! shard with `SO_REUSEPORT`.

use crate::config::ListenerSpec;
use crate::reactor::StartError;
use crate::socket::{ListenAddr, Listener};

/// One listener, bound.
pub(crate) enum Bound {
    /// For the acceptor.
    Shared(Listener),
    /// One per shard, in shard order (reuseport mode).
    PerShard(Vec<Listener>),
}

/// Binds `spec`; returns the sockets and the real address (the port when 0 was asked for).
pub(crate) fn bind(
    spec: &ListenerSpec,
    shards: usize,
    reuse_port: bool,
) -> Result<(Bound, ListenAddr), StartError> {
    let bind_error = |error| StartError::Bind {
        listener: spec.name.clone(),
        addr: spec.addr.clone(),
        error,
    };
    let first = Listener::bind(&spec.addr, spec.backlog, reuse_port).map_err(bind_error)?;
    let bound = first.local_addr(&spec.addr).map_err(bind_error)?;
    if !reuse_port {
        return Ok((Bound::Shared(first), bound));
    }
    let mut all = Vec::with_capacity(shards);
    for _ in 1..shards {
        let listener = match (&spec.addr, &bound) {
            // Port 0 was resolved by the first bind; the others join that port.
            (ListenAddr::Tcp(_), ListenAddr::Tcp(_)) => Listener::bind(&bound, spec.backlog, true),
            // Unix sockets have no SO_REUSEPORT, and an inherited socket is the only one there
            // is: the shards share it.
            _ => first.try_clone(),
        }
        .map_err(bind_error)?;
        all.push(listener);
    }
    all.insert(0, first);
    Ok((Bound::PerShard(all), bound))
}
