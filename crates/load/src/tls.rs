//! `https://` targets: the rustls client configuration, and a TLS session
//! over a non-blocking mio socket driven by the worker's edge-triggered poll.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, RootCertStore};
use serde::{Deserialize, Serialize};

/// The only application protocol offered: the client speaks HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Mozilla's roots as compiled into `webpki-roots` (docs/LOAD.md says why).
    WebPkiRoots,
    /// `--cacert FILE`: only the PEM certificates in FILE are trusted.
    CaFile(PathBuf),
    /// `--insecure`: any certificate; the handshake's signature is still checked.
    Insecure,
}

/// The TLS settings of an `https://` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub verify: Verify,
    /// `--tls-resume`: offer session resumption on reconnects.
    pub resume: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            verify: Verify::WebPkiRoots,
            resume: false,
        }
    }
}

/// The client configuration `opts` describe. Resumption is off unless
/// asked for, so a new connection per request costs a full handshake.
pub fn client_config(opts: &TlsOptions) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = match &opts.verify {
        Verify::WebPkiRoots => builder.with_root_certificates(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Verify::CaFile(path) => builder.with_root_certificates(roots_from(path)?),
        Verify::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))),
    }
    .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    config.resumption = if opts.resume {
        Resumption::default()
    } else {
        Resumption::disabled()
    };
    Ok(config)
}

/// A worker's own copy: its own session cache, so resuming takes no lock
/// another thread holds.
pub fn for_worker(base: &ClientConfig, resume: bool, connections: usize) -> Arc<ClientConfig> {
    let mut c = base.clone();
    if resume {
        c.resumption = Resumption::in_memory_sessions(connections.max(1));
    }
    Arc::new(c)
}

fn roots_from(path: &PathBuf) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("--cacert {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--cacert {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("--cacert {shown}: no PEM certificate in the file"));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("--cacert {shown}: {e}"))?;
    }
    Ok(roots)
}

/// The SNI name (and the name checked against the certificate) for `host`
/// (the URL's host, without port or brackets). An IP address sends no SNI.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| format!("TLS server name {bare:?}: {e}"))
}

/// `--insecure`: accepts every certificate chain, but the handshake
/// signature must still match the certificate presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl AnyCertificate {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.0.signature_verification_algorithms
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

/// Why a handshake failed, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server's certificate did not verify (wrong `--cacert`, name, dates).
    Certificate,
    /// The server sent a fatal alert (no common version or cipher suite, ...).
    Alert,
    /// The server's bytes were not TLS, or broke the protocol.
    Protocol,
    /// The server closed or reset the connection mid-handshake.
    Closed,
    /// Not done within `--timeout`.
    Timeout,
}

/// Failed handshakes by cause (docs/LOAD.md, `tls.failures`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    pub certificate: u64,
    pub alert: u64,
    pub protocol: u64,
    pub closed: u64,
    pub timeout: u64,
}

impl Failures {
    pub fn count(&mut self, f: Failure) {
        *match f {
            Failure::Certificate => &mut self.certificate,
            Failure::Alert => &mut self.alert,
            Failure::Protocol => &mut self.protocol,
            Failure::Closed => &mut self.closed,
            Failure::Timeout => &mut self.timeout,
        } += 1;
    }

    pub fn total(&self) -> u64 {
        self.certificate + self.alert + self.protocol + self.closed + self.timeout
    }

    pub fn merge(&mut self, o: &Failures) {
        self.certificate += o.certificate;
        self.alert += o.alert;
        self.protocol += o.protocol;
        self.closed += o.closed;
        self.timeout += o.timeout;
    }
}

/// What to do about the handshakes that failed, one sentence per cause seen.
pub fn explain(f: &Failures) -> Vec<String> {
    let causes = [
        (f.certificate, "the server's certificate did not verify: give its CA with --cacert FILE, or --insecure"),
        (f.alert, "the server refused the handshake with an alert (TLS version, cipher suites)"),
        (f.protocol, "the server's answer was not valid TLS: is it TLS on that port?"),
        (f.closed, "the server closed or reset the connection during the handshake"),
        (f.timeout, "the handshake did not finish within --timeout"),
    ];
    causes
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} TLS handshakes failed: {why}"))
        .collect()
}

pub fn classify(e: &rustls::Error) -> Failure {
    match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            Failure::Certificate
        }
        rustls::Error::AlertReceived(_) => Failure::Alert,
        _ => Failure::Protocol,
    }
}

/// What a finished handshake agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    pub resumed: bool,
    pub tls13: bool,
    pub alpn_http11: bool,
}

/// A TLS session on a connected non-blocking socket.
#[derive(Debug)]
pub struct TlsStream {
    tcp: TcpStream,
    tls: ClientConnection,
    /// The last socket read returned less than it asked for: the receive
    /// queue was empty then, so later bytes raise a new readiness edge.
    tcp_drained: bool,
    /// The socket reported end of file: no close_notify can be sent.
    eof: bool,
    /// The server's close_notify is in: the end of the stream is known to
    /// the session, and no socket edge will announce it again.
    peer_closed: bool,
}

/// Records whether one `read` filled its buffer, for `TlsStream::tcp_drained`.
struct Measured<'a> {
    tcp: &'a mut TcpStream,
    short: bool,
}

impl Read for Measured<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

impl TlsStream {
    pub fn new(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Self> {
        let tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Self {
            tcp,
            tls,
            tcp_drained: false,
            eof: false,
            peer_closed: false,
        })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// Advances the handshake as far as the socket allows: `Ok(true)` once
    /// it is done (its last flight may still be queued: see `pending_output`).
    pub fn handshake(&mut self) -> Result<bool, Failure> {
        loop {
            self.flush_tls().map_err(|_| Failure::Closed)?;
            if !self.tls.is_handshaking() {
                return Ok(true);
            }
            if self.tls.wants_write() {
                return Ok(false);
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return Err(Failure::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Failure::Closed),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Tells the server why (the alert rustls queued).
                let _ = self.flush_tls();
                return Err(classify(&e));
            }
        }
    }

    pub fn agreed(&self) -> Agreed {
        Agreed {
            resumed: self.tls.handshake_kind() == Some(HandshakeKind::Resumed),
            tls13: self.tls.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3),
            alpn_http11: self.tls.alpn_protocol() == Some(ALPN_HTTP11),
        }
    }

    /// Plaintext in; `Ok(0)` is the end of the stream, clean or not (HTTP
    /// frames its own responses, so a missing close_notify truncates nothing
    /// the framer would accept).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let mut socket = Measured {
                tcp: &mut self.tcp,
                short: false,
            };
            let got = self.tls.read_tls(&mut socket)?;
            self.tcp_drained = socket.short;
            self.eof |= got == 0;
            match self.tls.process_new_packets() {
                Ok(state) => self.peer_closed |= state.peer_has_closed(),
                Err(e) => {
                    let _ = self.flush_tls();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            // A key update or alert to answer; what blocks stays pending.
            self.flush_tls()?;
        }
    }

    /// Whether a read of `n` bytes into `len` emptied both the session's
    /// plaintext and the socket's receive queue, and no end of stream waits
    /// in the session: a close_notify read with the last bytes would
    /// otherwise never be seen, since the server may keep the socket open
    /// for ours and no new edge would come.
    pub fn drained(&self, n: usize, len: usize) -> bool {
        n < len && self.tcp_drained && !self.peer_closed
    }

    /// Plaintext out: encrypted at once, then written as far as the socket takes.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Records still queued go first; accepting more would only grow the buffer.
        self.flush_tls()?;
        if self.tls.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.flush_tls()?;
        Ok(n)
    }

    /// Encrypted bytes the socket did not take yet.
    pub fn pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes queued records until done or `WouldBlock` (left pending).
    pub fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends close_notify if the socket is still writable; best effort.
    pub fn close(&mut self) {
        if self.eof {
            return;
        }
        self.tls.send_close_notify();
        let _ = self.flush_tls();
    }
}

/// One blocking handshake before the run (see `probe`), so a wrong CA or a
/// server that does not speak TLS ends the command at once with its cause.
pub fn probe(
    mut tcp: std::net::TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> Result<(), String> {
    let mut tls = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    while tls.is_handshaking() {
        match tls.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) => return Err(probe_error(&e)),
        }
    }
    tls.send_close_notify();
    let _ = tls.complete_io(&mut tcp);
    Ok(())
}

fn probe_error(e: &io::Error) -> String {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(t @ rustls::Error::InvalidCertificate(_)) => format!(
            "TLS handshake failed: {t}; give the server's CA with --cacert FILE, or --insecure to skip verification"
        ),
        Some(t) => format!("TLS handshake failed: {t}"),
        None if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            "TLS handshake failed: no answer within --timeout; does the server speak TLS on this port?"
                .to_string()
        }
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "TLS handshake failed: the server closed the connection; does it speak TLS on this port?"
                .to_string()
        }
        None => format!("TLS handshake failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError, InvalidMessage, PeerMisbehaved};

    #[test]
    fn every_error_has_one_cause() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                Failure::Certificate,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                Failure::Certificate,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                Failure::Certificate,
            ),
            (rustls::Error::NoCertificatesPresented, Failure::Certificate),
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                Failure::Alert,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                Failure::Alert,
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                Failure::Protocol,
            ),
            (
                rustls::Error::PeerMisbehaved(PeerMisbehaved::TooManyEmptyFragments),
                Failure::Protocol,
            ),
            (rustls::Error::DecryptError, Failure::Protocol),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e), want, "{e:?}");
        }
    }

    #[test]
    fn failures_count_merge_and_explain_by_cause() {
        let mut a = Failures::default();
        for f in [Failure::Certificate, Failure::Certificate, Failure::Timeout] {
            a.count(f);
        }
        let mut b = Failures::default();
        b.count(Failure::Alert);
        b.merge(&a);
        assert_eq!((b.certificate, b.alert, b.timeout, b.total()), (2, 1, 1, 4));
        let notes = explain(&b);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with("2 TLS handshakes failed: the server's certificate"));
        assert!(notes[0].contains("--cacert FILE"));
        assert!(explain(&Failures::default()).is_empty());
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("localhost"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(server_name("bad name!").is_err());
    }
}
