//! coreloop's engine: sharded event loops, an acceptor, timers, buffers and an offload pool.
//!
//! The reactor knows no protocol. It moves bytes between sockets and [`Protocol`] state
//! machines, which see input bytes, an output buffer and a clock value, and never a socket.
//! Start one with [`start`] and a [`ReactorConfig`]; the [`ReactorHandle`] reports addresses
//! and counters and drains it. docs/ARCHITECTURE.md has the whole picture.
//!
//! An echo server on a free port, and one client:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use coreloop_reactor::{ConnInfo, Cx, ListenAddr, ListenerSpec, Protocol, ReactorConfig};
//! use coreloop_reactor::{Step, Verb};
//!
//! struct Echo;
//!
//! impl Protocol for Echo {
//!     fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
//!         cx.out().extend_from_slice(input);
//!         Step::new(input.len(), Verb::Read)
//!     }
//! }
//!
//! let mut config = ReactorConfig::default();
//! config.shards = 2;
//! let addr = ListenAddr::parse("127.0.0.1:0").unwrap();
//! let config = config.with_listener(ListenerSpec::new(
//!     "echo",
//!     addr,
//!     Arc::new(|_: &ConnInfo| Echo),
//! ));
//! let reactor = coreloop_reactor::start(config).unwrap();
//! let ListenAddr::Tcp(bound) = reactor.local_addrs()[0].clone() else { unreachable!() };
//! let mut client = std::net::TcpStream::connect(bound).unwrap();
//! client.write_all(b"hello").unwrap();
//! let mut echoed = [0; 5];
//! client.read_exact(&mut echoed).unwrap();
//! assert_eq!(&echoed, b"hello");
//! drop(client);
//! reactor.shutdown(Duration::from_secs(1));
//! ```

#![deny(missing_docs)]

mod accept;
mod accept_loop;
mod acceptor;
pub mod activation;
mod bind;
#[doc(hidden)] // for tests and benches only, not public API
pub mod buffer;
mod config;
mod conn;
pub mod echo;
pub mod frame;
mod idle;
#[doc(hidden)] // for tests and benches only, not public API
pub mod inbox;
mod inbuf;
pub mod limits;
pub mod link;
mod listener_set;
pub mod message;
mod moment;
pub mod offload;
pub mod outbound;
pub mod protocol;
mod reactor;
pub mod segment;
mod shard;
/// Socket options the safe wrappers (socket2, rustix) lack; the load generator uses these.
pub mod sockopt {
    pub use crate::sys::set_recv_low_water;
}
mod socket;
pub mod splice;
pub mod stats;
#[doc(hidden)] // for tests and benches only, not public API
pub mod table;
pub mod testing;
#[doc(hidden)] // for tests and benches only, not public API
pub mod timer;
pub mod tls;
pub mod token;
mod transport;

// The one place with `unsafe`; see its SAFETY notes.
#[allow(unsafe_code)]
mod sys;

pub use config::{Balance, ListenerIo, ListenerSpec, ReactorConfig};
pub use message::{Batch, ConnAddr, Message, Messenger, SendError};
pub use offload::{CancelToken, Completion, Job, JobFailure, JobId, JobOutput, JobTerms, Refused};
pub use outbound::{ConnectError, ConnectId, ConnectOutcome};
pub use protocol::{ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb};
pub use reactor::{start, DrainReport, ReactorHandle, StartError, StatsReader, MAX_LISTENERS};
pub use segment::{page_cache_resident, SendFileRefused};
pub use socket::ListenAddr;
pub use stats::{CloseReason, OutboundSnapshot, PauseCause, Snapshot};
pub use sys::monotonic_nanos;
