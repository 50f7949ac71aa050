//! Black-box tests: they start the real `coreloop` binary and speak to it over real sockets
//! on loopback. Every wait is bounded; a failing test prints the server's stderr tail.

mod support;

mod activation;
mod adversarial;
mod check_config;
mod cli;
mod drain;
mod drain_report;
mod eviction;
mod files;
mod files_cache;
mod files_held;
mod grammar;
mod http_proxy;
mod http_proxy_pool;
mod keys;
mod metrics;
mod prometheus;
mod proxy_nginx;
mod proxy_semantics;
mod proxy_smuggling;
mod redbot;
mod reload;
mod serve;
mod shutdown;
mod tcp_proxy;
mod tls;
