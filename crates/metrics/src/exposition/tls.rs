//! The TLS families: handshakes by kind, failed ones by cause, their latency, unclean closes.

use coreloop_reactor::tls::{HandshakeFailure, TlsSnapshot, HANDSHAKE_BUCKETS};

use super::{Kind, Labels, Out, Scrape};

/// `le` label values of [`HANDSHAKE_BUCKETS`], then `+Inf`.
const LE: [&str; HANDSHAKE_BUCKETS.len() + 1] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "+Inf",
];

impl Scrape<'_> {
    /// Written only when some listener speaks TLS: a plaintext server shows no TLS families.
    pub(super) fn tls(&self, out: &mut Out) {
        if self.sources.tls.is_empty() {
            return;
        }
        let snapshots: Vec<(&str, TlsSnapshot)> = (self.sources.tls.iter())
            .map(|(listener, stats)| (self.listener(*listener), stats.snapshot()))
            .collect();
        let name = "coreloop_tls_handshakes";
        let help = "Completed TLS handshakes, full or resumed (a ticket or session id).";
        out.family(name, Kind::Counter, help);
        for (listener, s) in &snapshots {
            let full = s.handshakes - s.resumed;
            for (kind, value) in [("full", full), ("resumed", s.resumed)] {
                let labels: &Labels<'_> = &[("listener", listener), ("kind", &kind)];
                out.sample(name, "_total", labels, value);
            }
        }
        let name = "coreloop_tls_handshake_errors";
        let help = "Failed TLS handshakes (the connection was closed), by cause.";
        out.family(name, Kind::Counter, help);
        for (listener, s) in &snapshots {
            for (cause, value) in HandshakeFailure::ALL.iter().zip(s.handshake_errors) {
                let reason = cause.as_str();
                let labels: &Labels<'_> = &[("listener", listener), ("reason", &reason)];
                out.sample(name, "_total", labels, value);
            }
        }
        let name = "coreloop_tls_handshake_duration_seconds";
        let help = "From the shard taking the connection to the completed TLS handshake.";
        out.family(name, Kind::Histogram, help);
        for (listener, s) in &snapshots {
            for (le, cumulative) in LE.iter().zip(s.latency_cumulative) {
                let labels: &Labels<'_> = &[("listener", listener), ("le", le)];
                out.sample(name, "_bucket", labels, cumulative);
            }
            let labels: &Labels<'_> = &[("listener", listener)];
            out.sample(name, "_sum", labels, s.latency_sum_seconds);
            out.sample(name, "_count", labels, s.handshakes);
        }
        let name = "coreloop_tls_unclean_closes";
        let help = "Peers that closed a TLS session without close_notify (counted, not an error).";
        out.family(name, Kind::Counter, help);
        for (listener, s) in &snapshots {
            out.sample(name, "_total", &[("listener", listener)], s.unclean_closes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_labels_are_the_buckets() {
        for (le, bound) in LE.iter().zip(HANDSHAKE_BUCKETS) {
            assert_eq!(le.parse::<f64>().unwrap(), bound);
        }
        assert_eq!(LE[HANDSHAKE_BUCKETS.len()], "+Inf");
    }
}
