//! Every key of the configuration's key table (`coreloop print-keys`) does something: each
//! has a black-box test here that changes it and observes the change through the real binary.
//! `every_key_has_an_effect_test` fails when a key is added to the table without one.
//!
//! [`engine`] holds the keys the reactor applies per listener (IO settings, eviction) and the
//! HTTP header capacity.

mod engine;
mod io;
mod listener;
mod log;
mod protocol;
mod server;
mod trace;
mod upstream;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

pub use crate::support::eventually;
use crate::support::{run, scrape, WAIT};

macro_rules! effects {
    ($($key:literal => $($test:path),+;)*) => {
        /// Every key with the tests that prove it has an effect.
        const EFFECTS: &[(&str, &[fn()])] = &[$(($key, &[$($test as fn()),+])),*];
    };
}

effects! {
    "server.shards" => server::shards_is_the_number_of_shard_threads;
    "server.balance" => server::least_loaded_and_round_robin_pick_differently,
        server::reuseport_runs_no_acceptor;
    "server.pin_cores" => server::pin_cores_gives_each_shard_one_cpu;
    "server.max_connections" => server::max_connections_pauses_accepting;
    "server.max_connections_per_shard" => server::max_connections_per_shard_pauses_accepting;
    "server.offload_threads" => server::offload_threads_is_the_pool_size;
    "server.offload_queue" => server::a_full_offload_queue_refuses_with_503;
    "timeouts.header" => protocol::header_timeout_answers_408;
    "timeouts.body" => protocol::body_timeout_answers_408;
    "timeouts.idle" => protocol::idle_timeout_closes_a_quiet_keep_alive_connection,
        upstream::idle_closes_a_quiet_proxied_connection;
    "timeouts.write" => io::write_timeout_closes_a_reader_that_stalls,
        engine::write_timeout_per_listener;
    "timeouts.drain" => io::drain_deadline_ends_the_drain,
        engine::drain_deadline_per_listener;
    "timeouts.keepalive_grace" => engine::keepalive_grace_decides_who_is_evicted;
    "timeouts.linger" => io::linger_bounds_the_lingering_close,
        engine::linger_per_listener;
    "timeouts.offload" => protocol::offload_timeout_answers_504;
    "limits.header_bytes" => protocol::header_bytes_answers_431;
    "limits.header_count" => protocol::header_count_answers_431,
        engine::header_count_holds_up_to_the_configured_maximum;
    "limits.uri_length" => protocol::uri_length_answers_414;
    "limits.body_bytes" => protocol::body_bytes_answers_413;
    "limits.pipeline_depth" => io::pipeline_depth_bounds_responses_per_write;
    "limits.write_high_water" => io::write_high_water_stops_reading_a_non_reader,
        engine::write_high_water_per_listener;
    "limits.max_requests_per_connection" => protocol::max_requests_per_connection_closes;
    "limits.max_connection_age" => protocol::max_connection_age_closes;
    "limits.frame_max" => protocol::frame_max_closes_on_a_larger_frame;
    "limits.read_buffer" => io::read_buffer_is_the_read_size,
        engine::read_buffer_per_listener;
    "log.level" => log::log_level_filters_lines;
    "log.format" => log::log_format_json;
    "log.access_log" => log::access_log_writes_a_line_per_response;
    "log.access_format" => log::access_format_writes_json_and_combined;
    "listener.name" => listener::name_is_the_metric_label;
    "listener.address" => listener::address_can_be_a_unix_socket;
    "listener.protocol" => listener::protocol_decides_what_is_spoken;
    "listener.backlog" => listener::backlog_is_the_listen_queue;
    "listener.upstream" => upstream::listener_upstream_picks_the_upstream;
    "listener.tls" => crate::tls::clients::curl_verifies_ecdsa_and_rsa_certificates_with_cacert,
        crate::tls::reload::removing_tls_rebinds_the_listener_as_plaintext;
    "listener.tls.cert" => crate::tls::clients::curl_verifies_ecdsa_and_rsa_certificates_with_cacert,
        crate::tls::reload::sighup_swaps_the_certificate_under_load_and_fails_no_request;
    "listener.tls.key" => crate::tls::clients::curl_verifies_ecdsa_and_rsa_certificates_with_cacert,
        crate::tls::reload::sighup_swaps_the_certificate_under_load_and_fails_no_request;
    "listener.tls.alpn" => crate::tls::clients::alpn_defaults_to_http_1_1_on_http_listeners_only;
    "listener.tls.min_version" => crate::tls::clients::only_tls_1_2_and_1_3_are_spoken;
    "listener.tls.handshake_timeout" => crate::tls::handshake::handshake_timeout_reaps_stalled_handshakes;
    "listener.tls.certs" => crate::tls::clients::sni_picks_the_certificate;
    "listener.route" => listener::routes_answer_their_paths;
    "listener.route.path" => listener::routes_answer_their_paths;
    "listener.route.methods" => listener::methods_outside_a_route_get_405;
    "listener.route.static" => listener::static_is_the_written_response;
    "listener.route.json" => listener::json_and_echo_answer;
    "listener.route.echo" => listener::json_and_echo_answer;
    "listener.route.files" => listener::files_serves_a_directory;
    "listener.route.health" => listener::health_answers;
    "listener.route.metrics" => listener::metrics_answers_the_exposition;
    "listener.route.delay" => listener::delay_is_capped_at_max_ms;
    "listener.route.proxy" => crate::http_proxy::hop_by_hop_fields_are_removed_and_forwarding_fields_added,
        crate::http_proxy::strip_prefix_is_taken_off_the_path,
        crate::http_proxy::response_bodies_are_reframed_for_the_client,
        crate::proxy_semantics::set_headers_replace_the_clients_fields_and_can_remove_the_forwarding_ones;
    "upstream.name" => upstream::name_is_the_metric_label;
    "upstream.servers" => upstream::servers_are_where_connections_go;
    "upstream.balance" =>
        upstream::balance_round_robin_alternates_and_least_requests_avoids_the_busy_server;
    "upstream.connect_timeout" => upstream::connect_timeout_bounds_a_connect;
    "upstream.max_fails" => upstream::max_fails_is_the_failures_that_eject;
    "upstream.fail_timeout" => upstream::fail_timeout_is_how_long_a_server_is_skipped;
    "upstream.response_timeout" => crate::http_proxy::response_timeout_answers_504;
    "upstream.keepalive" => crate::http_proxy_pool::sequential_requests_share_one_upstream_connection,
        crate::http_proxy_pool::keepalive_caps_the_idle_connections_per_server;
    "upstream.idle_timeout" => crate::http_proxy_pool::idle_timeout_closes_a_pooled_connection;
}

#[test]
fn every_key_has_an_effect_test() {
    let out = run(&["print-keys"]);
    assert!(out.status.success());
    let table: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split('\t').next().unwrap().to_owned())
        .collect();
    let tested: BTreeSet<String> = EFFECTS.iter().map(|(k, _)| k.to_string()).collect();
    let untested: Vec<&String> = table.difference(&tested).collect();
    let unknown: Vec<&String> = tested.difference(&table).collect();
    assert!(
        untested.is_empty() && unknown.is_empty(),
        "keys without an effect test: {untested:?}; tests for keys not in the table: {unknown:?}"
    );
    assert!(EFFECTS.iter().all(|(_, tests)| !tests.is_empty()));
}

/// A TCP connection with bounded waits.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// Sends `bytes` on an echo connection and reads them back.
pub fn echoed(conn: &mut TcpStream, bytes: &[u8]) {
    conn.write_all(bytes).unwrap();
    let mut back = vec![0; bytes.len()];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, bytes);
}

/// Whether the peer has closed `conn` (EOF or reset) without us waiting: a non-blocking peek.
pub fn closed_now(conn: &TcpStream) -> bool {
    conn.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match conn.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    conn.set_nonblocking(false).unwrap();
    closed
}

/// A metric summed over the labels given, scraped from `web` over a fresh connection.
pub fn metric(web: SocketAddr, name: &str, with: &[(&str, &str)]) -> f64 {
    scrape(web).sum(name, with)
}

/// `(comm, Cpus_allowed_list)` of every thread of `pid`.
pub fn threads(pid: u32) -> Vec<(String, String)> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        out.push((comm.trim().to_owned(), cpus));
    }
    out
}

/// [`threads`] once every thread has named itself: a new thread takes its name a moment
/// after it starts, and until then shows its parent's (`coreloop`, which only the main thread
/// keeps).
pub fn named_threads(pid: u32) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let settled = eventually(|| {
        all = threads(pid);
        all.iter().filter(|(comm, _)| comm == "coreloop").count() == 1
    });
    assert!(settled, "threads never named: {all:?}");
    all
}

/// Threads of `pid` whose name starts with `prefix` (names are cut at 15 bytes).
pub fn count_threads(pid: u32, prefix: &str) -> usize {
    named_threads(pid)
        .iter()
        .filter(|(comm, _)| comm.starts_with(prefix))
        .count()
}
