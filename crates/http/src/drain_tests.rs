//! A drain answers what already arrived (issue 10 §4): every request complete in the input
//! when (or after) the drain begins is answered, the last one with `Connection: close`.

use coreloop_reactor::Verb;

use crate::protocol_tests::{open, statuses, text};

const ONE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn sixteen_pipelined_requests_in_the_buffer_at_drain_are_all_answered() {
    for (before_drain_call, batch) in [
        (true, ONE.repeat(16)),
        (false, ONE.repeat(16)),
        // A Content-Length body between them.
        (
            true,
            [
                &b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nGET "[..],
                &ONE.repeat(15),
            ]
            .concat(),
        ),
    ] {
        let (mut harness, mut protocol) = open();
        if before_drain_call {
            // The shard hands over what sits unread with the drain already flagged.
            harness.draining = true;
        } else {
            assert_eq!(harness.drain(protocol.as_mut()), Verb::Read);
        }
        assert_eq!(
            harness.push(protocol.as_mut(), &batch),
            Verb::CloseAfterFlush
        );
        let output = text(&harness.take_output());
        assert_eq!(statuses(&output).len(), 16, "{output}");
        assert_eq!(output.matches("Connection: close").count(), 1, "{output}");
        assert!(
            output.ends_with("Connection: close\r\n\r\nHello, World!"),
            "{output}"
        );
    }
}

#[test]
fn an_incomplete_request_after_the_last_complete_one_is_not_waited_for() {
    let (mut harness, mut protocol) = open();
    harness.draining = true;
    let batch = [&ONE.repeat(3)[..], b"GET /plaintext HTTP/1.1\r\nHo"].concat();
    assert_eq!(
        harness.push(protocol.as_mut(), &batch),
        Verb::CloseAfterFlush
    );
    let output = text(&harness.take_output());
    assert_eq!(statuses(&output), [200, 200, 200]);
    assert_eq!(output.matches("Connection: close").count(), 1);
}

#[test]
fn outside_a_drain_nothing_closes() {
    let (mut harness, mut protocol) = open();
    assert_eq!(harness.push(protocol.as_mut(), &ONE.repeat(16)), Verb::Read);
    let output = text(&harness.take_output());
    assert_eq!(statuses(&output).len(), 16);
    assert!(!output.contains("Connection: close"));
}
