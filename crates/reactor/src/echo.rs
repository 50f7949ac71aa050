//! The echo protocol: every byte that comes in goes back out.

use crate::protocol::{ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb};

/// Echoes its input. On drain it keeps echoing until the peer closes or the drain deadline
/// passes: a byte stream has no message boundary at which closing would lose nothing.
#[derive(Debug, Default)]
pub struct Echo;

impl Protocol for Echo {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        cx.out().extend_from_slice(input);
        Step::new(input.len(), Verb::Read)
    }

    fn on_drain(&mut self, _cx: &mut Cx<'_>) -> Verb {
        Verb::Read
    }
}

/// Makes [`Echo`] connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoFactory;

impl ProtocolFactory for EchoFactory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(EchoFactory)
    }
}

impl ConnFactory for EchoFactory {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Echo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    #[test]
    fn bytes_come_back_unchanged_in_any_split() {
        let message = b"hello, echo \x00\xff world";
        for split in 0..=message.len() {
            let mut harness = Harness::new();
            let mut echo = Echo;
            harness.push(&mut echo, &message[..split]);
            harness.push(&mut echo, &message[split..]);
            assert_eq!(harness.take_output(), message);
            assert_eq!(harness.buffered(), 0);
        }
    }

    #[test]
    fn drain_keeps_the_stream_open_and_eof_closes_after_flush() {
        let mut harness = Harness::new();
        let mut echo = Echo;
        assert_eq!(harness.drain(&mut echo), Verb::Read);
        assert_eq!(harness.eof(&mut echo), Verb::CloseAfterFlush);
    }
}
