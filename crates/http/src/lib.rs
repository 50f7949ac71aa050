//! HTTP/1.1 for coreloop: a sans-IO [`Protocol`](coreloop_reactor::Protocol) over the reactor,
//! a router and built-in handlers.
//!
//! The protocol never touches a socket, a thread or a clock: it parses what the reactor hands
//! it (one strict pass over each request head: RFC 9112 grammar and framing rules), appends
//! responses to the connection's output buffer and answers with a verb. Blocking handlers
//! (files, delay) run on the reactor's offload pool. See docs/HTTP.md for the behaviour in
//! full.
//!
//! Wiring: build an [`HttpFactory`] from an [`HttpConfig`] and [`Route`]s, hand it to a
//! `ListenerSpec`, read [`HttpFactory::stats`] for metrics, and broadcast
//! [`HttpFactory::reload`]'s message to change routes and limits live.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod access;
mod body;
mod config;
mod conn;
mod error;
mod exchange;
mod factory;
mod files;
mod handlers;
mod head;
mod held;
mod host;
mod line;
mod percent;
mod proxy;
mod response;
mod router;
mod scan;
mod stamp;
mod stats;

pub use access::{AccessLogHook, AccessRecord, ACCESS_FIELD_MAX, ACCESS_PATH_MAX};
pub use body::{BodyDecoder, Chunked, ChunkedState, Progress};
pub use config::{HttpConfig, HEADER_CAPACITY};
pub use conn::HttpConn;
pub use error::{Fault, HttpError, Refusal};
pub use factory::{HttpFactory, HttpReload};
pub use files::FilesSpec;
pub use handlers::{
    CustomFn, ExpositionFormat, Handler, MetricsHook, Request, Response, StaticSpec,
};
pub use head::{parse as parse_head, Framing, Head, Method};
pub use proxy::{
    Attempt, Outcome, Pick, PoolGauges, ProxySpec, ProxyTarget, ProxyTargetFactory, ProxyTicket,
    ServerPool,
};
pub use router::{Route, RouteError, RouteTable};
pub use stats::{
    HttpStats, SeriesSnapshot, ShardHttpSnapshot, ShardHttpStats, CODE_LABELS, LATENCY_BUCKETS,
    METHOD_LABELS,
};

#[cfg(test)]
mod drain_tests;
#[cfg(test)]
mod exchange_tests;
#[cfg(test)]
mod grammar_tests;
#[cfg(test)]
mod held_tests;
#[cfg(test)]
mod protocol_tests;
#[cfg(test)]
mod split_tests;
#[cfg(test)]
mod timing_tests;
