//! Connections that close leave no file descriptor behind. Its own test binary: the count of
//! `/proc/self/fd` is only meaningful with no other test running in the process.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::Balance;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn closed_connections_leave_no_fd_behind() {
    let reactor = support::start(
        2,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let baseline = open_fds();
    for round in 0..3 {
        let clients: Vec<_> = (0..100)
            .map(|i| support::echoed(addr, &format!("r{round} c{i}")))
            .collect();
        drop(clients);
        support::wait_until(Duration::from_secs(10), "every connection to close", || {
            reactor.snapshot().active() == 0
        });
    }
    // The clients' fds are gone too; what is left must be what was open before.
    assert_eq!(open_fds(), baseline, "fds leaked");
    reactor.shutdown(Duration::from_secs(1));
}
