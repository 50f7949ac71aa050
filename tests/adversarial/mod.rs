//! Adversaries against the real binary on loopback: slow clients, floods, fd exhaustion,
//! hostile bytes, stalling handlers, and signals under load. Each test is bounded in time and
//! in connections (the CI machine has 2 cores); `benches/adversaries.sh` runs the same
//! scenarios larger and prints the figures quoted in docs/BENCHMARKS.md.

mod clients;
mod close_reason;
pub(crate) mod corpus;
mod drain_race;
mod fd_limit;
mod floods;
mod limit_exact;
mod offload;
mod process;
mod signals;
mod slow;
mod slowloris;
