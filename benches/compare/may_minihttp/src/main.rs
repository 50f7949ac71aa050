//! /plaintext on may_minihttp, set up as TechEmpower's may-minihttp entry is (mimalloc, small
//! coroutine stacks), with one worker thread so that it competes with coreloop's one shard.
//! Usage: coreloop-peer-may-minihttp PORT   (listens on 127.0.0.1 only)

use std::io;

use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Plaintext;

impl HttpService for Plaintext {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        if req.path() == "/plaintext" {
            rsp.header("Content-Type: text/plain").body("Hello, World!");
        } else {
            rsp.status_code(404, "Not Found");
        }
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Plaintext;

    fn new_service(&self, _: usize) -> Plaintext {
        Plaintext
    }
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("usage: coreloop-peer-may-minihttp PORT");
            std::process::exit(2)
        });
    may::config()
        .set_workers(1)
        .set_pool_capacity(10000)
        .set_stack_size(0x1000);
    let server = Factory
        .start(("127.0.0.1", port))
        .expect("the port must be free");
    server.join().expect("the server coroutine ended");
}
