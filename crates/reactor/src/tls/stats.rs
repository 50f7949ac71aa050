//! A TLS listener's counters: handshakes by outcome, their latency, unclean closes.
//!
//! One [`TlsStats`] per listener, shared by its shards and kept across certificate reloads.
//! Handshakes are counted once per connection, not per request, so shards bump shared
//! `Relaxed` atomics here instead of per-shard copies; a scrape reads them as they are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a handshake failed: the `reason` label of `coreloop_tls_handshake_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Bytes that are not TLS records, or a malformed message (garbage instead of a
    /// ClientHello, a plaintext HTTP request on a TLS port).
    Malformed,
    /// The client offers nothing we accept: only TLS 1.0/1.1, no shared cipher suite or group.
    Incompatible,
    /// ALPN was offered and none of its protocols is ours.
    NoApplicationProtocol,
    /// The client sent a fatal alert (it refused our certificate, say).
    Alert,
    /// The peer closed (FIN or reset) before the handshake completed.
    Eof,
    /// The handshake did not complete by the header deadline or `handshake_timeout`.
    Timeout,
    /// Anything else rustls refused.
    Other,
}

impl HandshakeFailure {
    /// Every cause, in the order of [`TlsSnapshot::handshake_errors`].
    pub const ALL: [HandshakeFailure; 7] = [
        Self::Malformed,
        Self::Incompatible,
        Self::NoApplicationProtocol,
        Self::Alert,
        Self::Eof,
        Self::Timeout,
        Self::Other,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Incompatible => "incompatible",
            Self::NoApplicationProtocol => "no_application_protocol",
            Self::Alert => "alert",
            Self::Eof => "eof",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }

    /// The cause of a rustls error met while handshaking.
    pub(crate) fn of(error: &rustls::Error) -> Self {
        use rustls::Error;
        match error {
            Error::InvalidMessage(_)
            | Error::InappropriateMessage { .. }
            | Error::InappropriateHandshakeMessage { .. }
            | Error::DecryptError => Self::Malformed,
            Error::PeerIncompatible(_) => Self::Incompatible,
            Error::NoApplicationProtocol => Self::NoApplicationProtocol,
            Error::AlertReceived(_) => Self::Alert,
            _ => Self::Other,
        }
    }
}

/// Upper bounds (seconds) of the handshake latency histogram's buckets; `+Inf` follows.
pub const HANDSHAKE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The counters of one TLS listener.
#[derive(Debug, Default)]
pub struct TlsStats {
    handshakes: AtomicU64,
    resumed: AtomicU64,
    errors: [AtomicU64; HandshakeFailure::ALL.len()],
    /// Per bucket of [`HANDSHAKE_BUCKETS`], not cumulative; the last is `+Inf`.
    latency: [AtomicU64; HANDSHAKE_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    unclean_closes: AtomicU64,
}

/// [`TlsStats`] as read at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsSnapshot {
    /// Handshakes completed (full and resumed).
    pub handshakes: u64,
    /// Of those, resumed ones (a ticket or session id accepted).
    pub resumed: u64,
    /// Failed handshakes, by [`HandshakeFailure::ALL`] order.
    pub handshake_errors: [u64; HandshakeFailure::ALL.len()],
    /// Cumulative counts per bucket of [`HANDSHAKE_BUCKETS`], then `+Inf` (= `handshakes`).
    pub latency_cumulative: [u64; HANDSHAKE_BUCKETS.len() + 1],
    /// Sum of handshake latencies, in seconds.
    pub latency_sum_seconds: f64,
    /// Peers that closed after the handshake without sending close_notify.
    pub unclean_closes: u64,
}

impl TlsStats {
    pub(crate) fn handshake_done(&self, took: Duration, resumed: bool) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        if resumed {
            self.resumed.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = took.as_secs_f64();
        let bucket = HANDSHAKE_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(HANDSHAKE_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn handshake_failed(&self, cause: HandshakeFailure) {
        let index = HandshakeFailure::ALL
            .iter()
            .position(|&c| c == cause)
            .unwrap_or(HandshakeFailure::ALL.len() - 1);
        self.errors[index].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn unclean_close(&self) {
        self.unclean_closes.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter, read now.
    pub fn snapshot(&self) -> TlsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut latency_cumulative = [0; HANDSHAKE_BUCKETS.len() + 1];
        let mut running = 0;
        for (slot, bucket) in latency_cumulative.iter_mut().zip(&self.latency) {
            running += get(bucket);
            *slot = running;
        }
        TlsSnapshot {
            handshakes: get(&self.handshakes),
            resumed: get(&self.resumed),
            handshake_errors: std::array::from_fn(|i| get(&self.errors[i])),
            latency_cumulative,
            latency_sum_seconds: get(&self.latency_sum_micros) as f64 / 1e6,
            unclean_closes: get(&self.unclean_closes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_cumulative_buckets_and_the_sum() {
        let stats = TlsStats::default();
        stats.handshake_done(Duration::from_micros(400), false);
        stats.handshake_done(Duration::from_millis(3), true);
        stats.handshake_done(Duration::from_secs(9), false);
        let snap = stats.snapshot();
        assert_eq!((snap.handshakes, snap.resumed), (3, 1));
        assert_eq!(snap.latency_cumulative[0], 1, "0.4 ms <= 0.5 ms");
        assert_eq!(snap.latency_cumulative[3], 2, "3 ms <= 5 ms");
        assert_eq!(snap.latency_cumulative[HANDSHAKE_BUCKETS.len() - 1], 2);
        assert_eq!(snap.latency_cumulative[HANDSHAKE_BUCKETS.len()], 3, "+Inf");
        assert!((snap.latency_sum_seconds - 9.0034).abs() < 1e-6);
    }

    #[test]
    fn every_failure_has_its_own_counter() {
        let stats = TlsStats::default();
        for (i, cause) in HandshakeFailure::ALL.iter().enumerate() {
            for _ in 0..=i {
                stats.handshake_failed(*cause);
            }
        }
        let errors = stats.snapshot().handshake_errors;
        assert_eq!(errors, std::array::from_fn(|i| i as u64 + 1));
    }
}
