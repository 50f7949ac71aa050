//! SIGHUP reloads certificates: new handshakes get the new one, open sessions carry on, and
//! requests running through the reload all succeed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{client_config, connect, make_cert, tls_get, KeyType, TlsServer};

#[test]
pub fn sighup_swaps_the_certificate_under_load_and_fails_no_request() {
    let tls = TlsServer::start("", &[]);
    let old_ca = client_config(&tls.cert, &["http/1.1"]);
    let mut kept = connect(tls.web(), &old_ca).unwrap();
    assert_eq!(tls_get(&mut kept, "/plaintext").unwrap().0, 200);

    // New files under new names: a client trusting only the new certificate tells them apart.
    let (cert, key) = make_cert(&tls.dir.0, "next", "localhost", KeyType::Rsa2048, 2);
    let new_ca = client_config(&cert, &["http/1.1"]);
    assert!(
        connect(tls.web(), &new_ca).is_err(),
        "the new cert is not served yet"
    );

    let text = std::fs::read_to_string(&tls.server.config).unwrap();
    let old_table = super::tls_table(&tls.cert, &tls.key, "");
    let text = text.replace(&old_table, &super::tls_table(&cert, &key, ""));

    let stop = AtomicBool::new(false);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let web = tls.web();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                // Either certificate is fine here: the reload may land between any two.
                let configs = [old_ca.clone(), new_ca.clone()];
                // Bounded: at most 400 requests per thread, new connection each time.
                for i in 0..400 {
                    if stop.load(Ordering::Relaxed) && i > 20 {
                        break;
                    }
                    let served = configs.iter().any(|config| {
                        connect(web, config)
                            .and_then(|mut conn| tls_get(&mut conn, "/plaintext"))
                            .is_ok_and(|(status, _)| status == 200)
                    });
                    let counter = if served { &ok } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::fs::write(&tls.server.config, &text).unwrap();
        tls.server.signal("HUP");
        tls.server.wait_for("configuration reloaded", 1);
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed across the reload"
    );
    assert!(ok.load(Ordering::Relaxed) >= 40);

    // New handshakes get the new certificate; the session opened before goes on.
    let mut fresh = connect(tls.web(), &new_ca).expect("the new certificate is served");
    assert_eq!(tls_get(&mut fresh, "/plaintext").unwrap().0, 200);
    // A fresh client (its own session cache: a ticket from before would resume, as meant).
    let old_only = client_config(&tls.cert, &["http/1.1"]);
    assert!(
        connect(tls.web(), &old_only).is_err(),
        "the old certificate is still served"
    );
    assert_eq!(tls_get(&mut kept, "/plaintext").unwrap().0, 200);
}

/// Removing `tls` from a listener replaces its socket (rebind): the new one speaks
/// plaintext; a TLS session opened on the old socket before carries on.
#[test]
pub fn removing_tls_rebinds_the_listener_as_plaintext() {
    use std::io::{Read, Write};
    let tls = TlsServer::start("", &[]);
    let config = client_config(&tls.cert, &[]);
    let mut kept = connect(tls.echo(), &config).unwrap();
    let text = std::fs::read_to_string(&tls.server.config).unwrap();
    let table = super::tls_table(&tls.cert, &tls.key, "");
    // The echo-tls listener's table is the last one: drop its tls line only.
    let at = text.rfind(&table).unwrap();
    let text = format!("{}{}", &text[..at], &text[at + table.len()..]);
    std::fs::write(&tls.server.config, text).unwrap();
    tls.server.signal("HUP");
    tls.server.wait_for("configuration reloaded", 1);
    let addrs = crate::support::parse_listening(&tls.server.stderr());
    let plain = addrs["echo-tls"];
    assert_ne!(plain, tls.echo(), "the listener was not rebound");
    let mut conn = crate::keys::connect(plain);
    crate::keys::echoed(&mut conn, b"plaintext now");
    kept.write_all(b"still TLS").unwrap();
    let mut back = [0u8; 9];
    kept.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still TLS");
}
