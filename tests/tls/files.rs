//! A `files` route on a TLS listener: the bytes must pass through rustls, so the body goes
//! by window reads on the offload pool, never by `sendfile(2)` (which would put plaintext on
//! the wire). Guards the seam where the two paths meet (`Transport::can_sendfile`).

use super::{make_cert, run_with_input, tls_table, KeyType};
use crate::support::{config as base_config, scrape, Server, TempDir};

#[test]
fn a_file_over_tls_is_encrypted_whole_and_never_sent_by_sendfile() {
    let dir = TempDir::new();
    let (cert, key) = make_cert(&dir.0, "localhost", "localhost", KeyType::EcdsaP256, 2);
    let root = dir.0.join("www");
    std::fs::create_dir(&root).unwrap();
    // Larger than a window and than one segment, so that either path would be exercised.
    let body: Vec<u8> = (0..6 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &body).unwrap();
    let mut text = base_config(&[]);
    text.push_str(&format!(
        "\n[[listener]]\nname = \"files-tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"http\"\n{}\n\
         [[listener.route]]\npath = \"/files/*\"\nfiles = {{ root = \"{}\" }}\n",
        tls_table(&cert, &key, ""),
        root.display()
    ));
    let server = Server::start(&text);
    let port = server.addr("files-tls").port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let fetch = |range: Option<&str>| {
        let url = format!("https://localhost:{port}/files/big.bin");
        let mut args = vec!["-sS", "--max-time", "30", "--resolve", &resolve];
        args.extend(["--cacert", cert.to_str().unwrap()]);
        if let Some(range) = range {
            args.extend(["-r", range]);
        }
        args.push(&url);
        let out = run_with_input("curl", &args, b"");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    assert!(fetch(None) == body, "the whole file, byte for byte");
    assert!(
        fetch(Some("5000000-5999999")) == body[5_000_000..6_000_000],
        "a range inside the second segment"
    );
    let metrics = scrape(server.addr("web"));
    let listener = [("listener", "files-tls")];
    assert_eq!(metrics.sum("coreloop_sendfile_bytes_total", &listener), 0.0);
    assert!(metrics.sum("coreloop_sent_bytes_total", &listener) >= 7_000_000.0);
}
