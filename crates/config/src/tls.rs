//! `tls = { cert, key, alpn, min_version, handshake_timeout, certs }` on a `[[listener]]`.
//!
//! The files are loaded and checked here, at parse time, so that `check-config` and `serve`
//! (and a SIGHUP reload) see exactly the same thing: a missing or unreadable file, a file with
//! no PEM certificate or key, or a key that does not match its certificate is an error at the
//! value that names the file; an expired certificate is a warning there. The parsed [`Tls`]
//! holds the loaded key pairs, ready for rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use toml::de::DeValue;

use crate::decode::field;
use crate::error::ErrorKind;
use crate::listener::required;
use crate::reader::{Cx, TableReader, Value};
use crate::schema::Protocol;
use crate::values::{duration, string, wrong_type};

/// The handshake timeout when `handshake_timeout` is not written.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The lowest TLS version a listener accepts; TLS 1.2 and 1.3 are the only ones spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    V1_2,
    /// TLS 1.3 only.
    V1_3,
}

/// A listener's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The certificate served when no `certs` entry matches the client's SNI name.
    pub default: Identity,
    /// `alpn` as written; `None`: the listener's default (see [`Tls::alpn_for`]).
    pub alpn: Option<Vec<String>>,
    pub min_version: TlsVersion,
    pub handshake_timeout: Duration,
    /// Certificates chosen by SNI name.
    pub certs: Vec<SniIdentity>,
}

impl Tls {
    /// The ALPN protocols a listener speaking `protocol` offers: `alpn` as written, else
    /// `["http/1.1"]` on HTTP listeners and none on the others.
    pub fn alpn_for(&self, protocol: Protocol) -> Vec<String> {
        match (&self.alpn, protocol) {
            (Some(alpn), _) => alpn.clone(),
            (None, Protocol::Http) => vec!["http/1.1".to_owned()],
            (None, _) => Vec::new(),
        }
    }
}

/// A certificate chosen by the SNI name the client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniIdentity {
    /// Lower case, as SNI names are compared.
    pub server_name: String,
    pub identity: Identity,
}

/// A certificate chain and its private key, loaded and checked to match.
#[derive(Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub certified: Arc<CertifiedKey>,
    /// The end-entity certificate's notAfter, in Unix seconds (when it could be read).
    pub not_after: Option<i64>,
}

impl PartialEq for Identity {
    // Same files with the same contents: a reload that rewrote a file differs.
    fn eq(&self, other: &Self) -> bool {
        self.cert == other.cert
            && self.key == other.key
            && self.certified.cert == other.certified.cert
    }
}

impl Eq for Identity {}

impl std::fmt::Debug for Identity {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

pub(crate) fn tls(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    base_dir: Option<&Path>,
) -> Option<Tls> {
    let mut t = TableReader::new(cx, path, v);
    let default = identity(cx, &mut t, base_dir);
    let alpn = field(cx, &mut t, "alpn", alpn);
    let min_version = field(cx, &mut t, "min_version", min_version);
    let handshake_timeout = field(cx, &mut t, "handshake_timeout", duration);
    let certs = t
        .take(cx, "certs")
        .map(|v| sni_certs(cx, &t.child("certs"), v, base_dir));
    t.finish(cx);
    Some(Tls {
        default: default?,
        alpn,
        min_version: min_version.unwrap_or_default(),
        handshake_timeout: handshake_timeout.unwrap_or(HANDSHAKE_TIMEOUT),
        certs: certs.unwrap_or_default(),
    })
}

fn sni_certs(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    base_dir: Option<&Path>,
) -> Vec<SniIdentity> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "an array of { server_name, cert, key } tables";
        return wrong_type(cx, path, v, expected, v.get_ref()).unwrap_or_default();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut t = TableReader::new(cx, &format!("{path}[{i}]"), item);
        let server_name = required(cx, &mut t, "server_name", "a DNS name", server_name);
        let identity = identity(cx, &mut t, base_dir);
        t.finish(cx);
        if let (Some(server_name), Some(identity)) = (server_name, identity) {
            out.push(SniIdentity {
                server_name,
                identity,
            });
        }
    }
    out
}

fn server_name(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<String> {
    let text = string(cx, path, v)?;
    if rustls::pki_types::DnsName::try_from(text).is_err() {
        let reason = "server_name must be a DNS name such as \"a.example\"";
        cx.error(v.span(), path, ErrorKind::Rule(reason));
        return None;
    }
    Some(text.to_ascii_lowercase())
}

fn alpn(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Vec<String>> {
    let expected = "an array of protocol names such as [\"http/1.1\"]";
    let DeValue::Array(items) = v.get_ref() else {
        return wrong_type(cx, path, v, expected, v.get_ref());
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = string(cx, &format!("{path}[{i}]"), item)?;
        if name.is_empty() || name.len() > 255 {
            let reason = "an ALPN protocol name is 1 to 255 bytes";
            cx.error(item.span(), path, ErrorKind::Rule(reason));
            return None;
        }
        out.push(name.to_owned());
    }
    Some(out)
}

fn min_version(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<TlsVersion> {
    match string(cx, path, v)? {
        "1.2" => Some(TlsVersion::V1_2),
        "1.3" => Some(TlsVersion::V1_3),
        _ => {
            let reason = "min_version is \"1.2\" or \"1.3\" (older versions are not spoken)";
            cx.error(v.span(), path, ErrorKind::Rule(reason));
            None
        }
    }
}

/// `cert` and `key` of one table, loaded and matched.
fn identity(
    cx: &mut Cx<'_>,
    t: &mut TableReader<'_, '_>,
    base_dir: Option<&Path>,
) -> Option<Identity> {
    let cert_form = "a PEM certificate chain file";
    let key_form = "a PEM private key file";
    let at = |cx: &mut Cx<'_>, p: &str, v: &Value<'_>| Some((file(cx, p, v, base_dir)?, v.span()));
    let cert = required(cx, t, "cert", cert_form, at);
    let key = required(cx, t, "key", key_form, at);
    let ((cert, cert_span), (key, key_span)) = (cert?, key?);
    let cert_path = t.child("cert");
    let key_path = t.child("key");
    let chain = match load_chain(&cert) {
        Ok(chain) => chain,
        Err(reason) => {
            cx.error(cert_span, &cert_path, ErrorKind::Tls(reason));
            return None;
        }
    };
    let private = match PrivateKeyDer::from_pem_file(&key) {
        Ok(private) => private,
        Err(e) => {
            let reason = format!(
                "{}: no PKCS#8, PKCS#1 or SEC1 private key in PEM ({e})",
                key.display()
            );
            cx.error(key_span, &key_path, ErrorKind::Tls(reason));
            return None;
        }
    };
    let not_after = not_after(&chain[0]);
    let provider = rustls::crypto::ring::default_provider();
    let certified = match CertifiedKey::from_der(chain, private, &provider) {
        Ok(certified) => certified,
        Err(rustls::Error::InconsistentKeys(_)) => {
            let reason = format!(
                "{} does not match the certificate in {}",
                key.display(),
                cert.display()
            );
            cx.error(key_span, &key_path, ErrorKind::Tls(reason));
            return None;
        }
        Err(e) => {
            let reason = format!("{}: unusable key: {e}", key.display());
            cx.error(key_span, &key_path, ErrorKind::Tls(reason));
            return None;
        }
    };
    if let Some(at) = not_after.filter(|&at| at < unix_now()) {
        let reason = format!(
            "the certificate in {} expired at {} (Unix time); clients will refuse it",
            cert.display(),
            at
        );
        cx.warn(cert_span, &cert_path, ErrorKind::Tls(reason));
    }
    Some(Identity {
        cert,
        key,
        certified: Arc::new(certified),
        not_after,
    })
}

/// A path value, relative to the configuration file's directory, that must be a file.
fn file(cx: &mut Cx<'_>, path: &str, v: &Value<'_>, base_dir: Option<&Path>) -> Option<PathBuf> {
    let text = string(cx, path, v)?;
    let file = match base_dir {
        Some(base) if Path::new(text).is_relative() => base.join(text),
        _ => text.into(),
    };
    let reason = match std::fs::metadata(&file) {
        Ok(meta) if meta.is_file() => return Some(file),
        Ok(_) => "is not a file".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        Err(e) => format!("cannot be read: {e}"),
    };
    let reason = format!("{} {reason}", file.display());
    cx.error(v.span(), path, ErrorKind::Tls(reason));
    None
}

fn load_chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = file.display();
    let chain: Vec<_> = CertificateDer::pem_file_iter(file)
        .map_err(|e| format!("{shown}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{shown}: unparsable PEM: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{shown}: no PEM CERTIFICATE in it"));
    }
    Ok(chain)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The notAfter of an X.509 certificate (RFC 5280 §4.1), in Unix seconds: a walk over the
/// DER down to `tbsCertificate.validity`, no more.
pub(crate) fn not_after(cert: &[u8]) -> Option<i64> {
    let (_, certificate, _) = tlv(cert)?;
    let (_, mut tbs, _) = tlv(certificate)?;
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2; // [0] version
    }
    for _ in 0..3 {
        tbs = tlv(tbs)?.2; // serialNumber, signature, issuer
    }
    let (_, validity, _) = tlv(tbs)?;
    let after_not_before = tlv(validity)?.2;
    let (tag, time, _) = tlv(after_not_before)?;
    der_time(tag, time)
}

/// One DER element: (tag, contents, the rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn der_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if text.len() == 12 => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let part = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day) = (part(0)?, part(2)?);
    let (hour, minute, second) = (part(4)?, part(6)?, part(8)?);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_of_both_forms_become_unix_seconds() {
        let cases: &[(u8, &str, Option<i64>)] = &[
            (0x17, "700101000000Z", Some(0)),
            (0x17, "491231235959Z", Some(2_524_607_999)),
            (0x17, "500101000000Z", Some(-631_152_000)),
            (0x18, "20380119031408Z", Some(2_147_483_648)),
            (0x18, "20000229120000Z", Some(951_825_600)),
            (0x17, "7001010000Z", None),
            (0x17, "700101000000", None),
            (0x18, "700101000000Z", None),
            (0x05, "700101000000Z", None),
        ];
        for &(tag, text, want) in cases {
            assert_eq!(der_time(tag, text.as_bytes()), want, "{text}");
        }
    }

    #[test]
    fn truncated_or_odd_der_reads_as_no_date() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 0, 0, 0, 0, 0],
            &[0x30, 0x05, 0x30],
        ] {
            assert_eq!(not_after(bad), None, "{bad:?}");
        }
    }
}
