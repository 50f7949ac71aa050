//! The private-key signature a full TLS handshake costs the server, through the same rustls +
//! ring provider the listeners use: RSA 2048 (PSS, as TLS 1.3 signs) and ECDSA P-256. Run
//! beside `openssl speed` by `benches/tls/sign.sh`, it separates ring's signature from the rest
//! of a handshake (docs/BENCHMARKS.md, "TLS: the signature alone").

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::SignatureScheme;

/// A fresh key made by `openssl genpkey` (keys are never committed), loaded as a listener would.
fn key(dir: &Path, name: &str, algorithm: &[&str]) -> Arc<dyn SigningKey> {
    let path = dir.join(format!("{name}.pem"));
    let status = Command::new("openssl")
        .arg("genpkey")
        .args(algorithm)
        .arg("-out")
        .arg(&path)
        .status()
        .expect("openssl genpkey runs");
    assert!(status.success(), "openssl genpkey {algorithm:?} failed");
    let der = PrivateKeyDer::from_pem_file(&path).expect("a PEM private key");
    rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .expect("ring loads the key")
}

/// This thread's CPU time: `openssl speed` divides by user CPU time too, so the two figures
/// share a basis on a shared machine, where wall time also counts other processes' turns.
fn thread_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn signatures(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("coreloop-tls-sign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let rsa = key(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let ecdsa = key(
        &dir,
        "ecdsa",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    std::fs::remove_dir_all(&dir).ok();
    // About the size of what TLS 1.3 signs in CertificateVerify (64 spaces, context, hash).
    let message = [0x20u8; 130];
    let mut group = c.benchmark_group("tls_sign");
    for (name, key, scheme) in [
        ("rsa2048_pss_sha256", &rsa, SignatureScheme::RSA_PSS_SHA256),
        (
            "ecdsa_p256_sha256",
            &ecdsa,
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ),
    ] {
        let signer = key
            .choose_scheme(&[scheme])
            .expect("the key signs its scheme");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu();
                for _ in 0..iters {
                    std::hint::black_box(signer.sign(&message).expect("signs"));
                }
                thread_cpu() - start
            })
        });
    }
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
