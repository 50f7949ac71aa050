//! A listener's `tls = { ... }` as a rustls server configuration: versions, ALPN, the
//! certificate chosen by SNI, and the session resumption state its shards share.
//!
//! The certificates were loaded and checked by the config crate; what is built here cannot
//! fail on a configuration that parsed, short of rustls refusing its own defaults.

use std::sync::Arc;

use coreloop_config::{self as config, TlsVersion};
use coreloop_reactor::tls::rustls::server::{ClientHello, ResolvesServerCert};
use coreloop_reactor::tls::rustls::sign::CertifiedKey;
use coreloop_reactor::tls::rustls::{self, ServerConfig};
use coreloop_reactor::tls::{TlsListener, TlsStats};

/// The TLS of `listener`. `running`: the TLS it has now (a reload), whose counters, ticket
/// keys and session cache carry over, so that a session resumed after a reload still
/// resumes and the metrics do not restart; `None` makes them new.
pub(crate) fn build(
    listener: &config::Listener,
    tls: &config::Tls,
    running: Option<&TlsListener>,
) -> Result<Arc<TlsListener>, String> {
    let fail = |e: rustls::Error| format!("listener `{}`: tls: {e}", listener.name);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(fail)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni::new(tls)));
    server.alpn_protocols = tls
        .alpn_for(listener.protocol)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let stats = match running {
        Some(running) => {
            server.ticketer = running.config().ticketer.clone();
            server.session_storage = running.config().session_storage.clone();
            running.stats().clone()
        }
        None => {
            // One ticketer per listener, shared by its shards through this one config: a
            // ticket issued on one shard resumes on any other.
            server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(fail)?;
            Arc::new(TlsStats::default())
        }
    };
    Ok(Arc::new(TlsListener::new(
        Arc::new(server),
        stats,
        tls.handshake_timeout,
    )))
}

/// The certificate for the SNI name asked for, or the default one (no SNI, or another name:
/// a client that checks names refuses it, one that does not gets served).
#[derive(Debug)]
struct BySni {
    default: Arc<CertifiedKey>,
    names: Vec<(String, Arc<CertifiedKey>)>,
}

impl BySni {
    fn new(tls: &config::Tls) -> Self {
        Self {
            default: tls.default.certified.clone(),
            names: tls
                .certs
                .iter()
                .map(|c| (c.server_name.clone(), c.identity.certified.clone()))
                .collect(),
        }
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let asked = hello.server_name();
        let named = asked.and_then(|name| {
            self.names
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
        });
        Some(named.map_or(&self.default, |(_, key)| key).clone())
    }
}
