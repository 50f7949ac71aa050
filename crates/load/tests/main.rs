//! Integration tests: the library's `run` against in-process test servers.

mod support;

mod cli;
mod counting;
mod errors;
mod framing;
mod omission;
mod overload;
mod pictures;
mod processes;
mod reporting;
mod tls;
