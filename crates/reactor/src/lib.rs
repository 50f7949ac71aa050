//! coreloop's engine: sharded event loops, an acceptor, timers, buffers and an offload pool.
//!
//! The reactor knows no protocol. It moves bytes between sockets and [`Protocol`] state
//! machines, which see input bytes, an output buffer and a clock value, and never a socket.
//! Start one with [`start`] and a [`ReactorConfig`]; the [`ReactorHandle`] reports addresses
//! and counters and drains it. docs/ARCHITECTURE.md has the whole picture.

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
mod listener_set;
pub mod message;
pub mod offload;
pub mod protocol;
mod reactor;
mod shard;
mod socket;
pub mod stats;
#[doc(hidden)] // for tests and benches only, not public API
pub mod table;
pub mod testing;
#[doc(hidden)] // for tests and benches only, not public API
pub mod timer;
pub mod token;

// The one place with `unsafe`; see its SAFETY notes.
#[allow(unsafe_code)]
mod sys;

pub use config::{Balance, ListenerIo, ListenerSpec, ReactorConfig};
pub use message::{ConnAddr, Message, Messenger, SendError};
pub use offload::{CancelToken, Completion, Job, JobFailure, JobId, JobOutput, JobTerms, Refused};
pub use protocol::{ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb};
pub use reactor::{start, DrainReport, ReactorHandle, StartError, StatsReader, MAX_LISTENERS};
pub use socket::ListenAddr;
pub use stats::{CloseReason, PauseCause, Snapshot};
