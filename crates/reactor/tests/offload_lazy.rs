//! `start()` spawns the offload pool's threads only once a protocol offloads: a reactor that
//! never offloads runs none. (Its own test binary: it counts this process's threads.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::{Balance, ConnInfo, Cx, JobFailure, Protocol, Step, Verb};

/// Offloads one job per input chunk and writes `done` when it completes.
struct Offloads;

impl Protocol for Offloads {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        match cx.offload(Box::new(|| Box::new(()))) {
            Ok(_) => Step::new(input.len(), Verb::AwaitCompletion),
            Err(_) => Step::new(input.len(), Verb::CloseNow),
        }
    }

    fn on_completion(&mut self, completion: coreloop_reactor::Completion, cx: &mut Cx<'_>) -> Verb {
        let _: Result<_, JobFailure> = completion.result;
        cx.out().extend_from_slice(b"done");
        Verb::Read
    }
}

fn offload_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("coreloop-offloa"))
        .count()
}

#[test]
fn the_offload_pool_starts_with_the_first_job() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(|_: &ConnInfo| Offloads),
        |config| config.offload_threads = 3,
    );
    assert_eq!(offload_threads(), 0, "no job yet, no offload thread");
    let mut client = support::connect(support::tcp_addr(&reactor));
    support::write_all(&mut client, b"go");
    assert_eq!(support::read_exact(&mut client, 4), b"done");
    // A spawned thread names itself once it runs, so a worker that has not been scheduled
    // yet has no name to count (seen under load): wait, bounded, for all three.
    support::wait_until(
        Duration::from_secs(10),
        "three named offload threads",
        || offload_threads() == 3,
    );
    drop(client);
    reactor.shutdown(Duration::from_secs(5));
    assert_eq!(offload_threads(), 0, "joined at shutdown");
}
