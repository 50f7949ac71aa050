//! Connection tokens: a slab index plus a generation.
//!
//! Every readiness event, deadline and offload completion carries the full token. A slot of the
//! connection slab is reused as soon as its connection closes, so the index alone cannot tell a
//! live connection from the one that held the slot before; the generation can. A mismatch means
//! the item belongs to a connection that is gone, and it is dropped.

use mio::Token;

// A token packs a 32-bit index and a 32-bit generation into `usize`, and the reactor speaks
// epoll (mio's Linux backend) and Linux errno values: any other target would build and then
// mix up connections or misread errors, so it does not build.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!(
    "coreloop-reactor supports 64-bit Linux only: tokens pack 64 bits into usize and the \
     reactor relies on epoll and Linux errno values"
);

/// The low 32 bits of a [`Token`] are the slab index; this index value is never handed out by
/// the slab (it would need 4 billion live connections), so it marks the reserved tokens.
const RESERVED_INDEX: u32 = u32::MAX;

/// Identifies one connection on one shard for its whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnToken {
    index: u32,
    generation: u32,
}

impl ConnToken {
    /// Builds a token; `index` must be below `u32::MAX`.
    pub fn new(index: usize, generation: u32) -> Self {
        let index = u32::try_from(index).unwrap_or(RESERVED_INDEX - 1);
        debug_assert!(index < RESERVED_INDEX, "slab index out of token range");
        Self { index, generation }
    }

    /// The slab index.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The generation the connection had when the token was issued.
    pub fn generation(self) -> u32 {
        self.generation
    }

    /// Encodes for mio: generation in the high 32 bits, index in the low 32 bits.
    pub fn to_mio(self) -> Token {
        Token((u64::from(self.generation) << 32 | u64::from(self.index)) as usize)
    }

    /// Decodes a mio token; `None` for the reserved tokens (waker, listeners).
    pub fn from_mio(token: Token) -> Option<Self> {
        let raw = token.0 as u64;
        let index = raw as u32;
        if index == RESERVED_INDEX {
            return None;
        }
        Some(Self {
            index,
            generation: (raw >> 32) as u32,
        })
    }
}

/// Tokens that do not name a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// The inbox waker: handoffs, completions or control messages are waiting.
    Waker,
    /// A listening socket, by its index in the listener table.
    Listener(u32),
}

impl Reserved {
    /// Encodes for mio; the high half tells the reserved tokens apart.
    pub fn to_mio(self) -> Token {
        let high: u64 = match self {
            Reserved::Waker => 0,
            Reserved::Listener(i) => u64::from(i) + 1,
        };
        Token((high << 32 | u64::from(RESERVED_INDEX)) as usize)
    }

    /// Decodes a mio token; `None` when it names a connection.
    pub fn from_mio(token: Token) -> Option<Self> {
        let raw = token.0 as u64;
        if raw as u32 != RESERVED_INDEX {
            return None;
        }
        match raw >> 32 {
            0 => Some(Reserved::Waker),
            n => Some(Reserved::Listener((n - 1) as u32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_tokens_round_trip_and_never_look_reserved() {
        for (index, generation) in [
            (0, 0),
            (1, 7),
            (123_456, u32::MAX),
            (u32::MAX as usize - 1, 3),
        ] {
            let token = ConnToken::new(index, generation);
            let mio = token.to_mio();
            assert_eq!(ConnToken::from_mio(mio), Some(token));
            assert_eq!(Reserved::from_mio(mio), None);
        }
    }

    #[test]
    fn reserved_tokens_round_trip_and_never_look_like_connections() {
        for reserved in [
            Reserved::Waker,
            Reserved::Listener(0),
            Reserved::Listener(41),
        ] {
            let mio = reserved.to_mio();
            assert_eq!(Reserved::from_mio(mio), Some(reserved));
            assert_eq!(ConnToken::from_mio(mio), None);
        }
    }

    #[test]
    fn same_slot_different_generation_is_a_different_token() {
        assert_ne!(ConnToken::new(5, 1), ConnToken::new(5, 2));
        assert_ne!(ConnToken::new(5, 1).to_mio(), ConnToken::new(5, 2).to_mio());
    }
}
