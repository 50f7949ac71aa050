//! The balance rules over a shard's view of an upstream's servers.

use std::rc::Rc;

use super::ServerSlot;

/// The first server at or after `cursor` (wrapping) that `ok` accepts.
pub(super) fn round_robin(
    servers: &[Rc<ServerSlot>],
    cursor: usize,
    ok: impl Fn(&Rc<ServerSlot>) -> bool,
) -> Option<usize> {
    let n = servers.len();
    (0..n).map(|k| (cursor + k) % n).find(|&i| ok(&servers[i]))
}

/// Power of two choices (Mitzenmacher): of two servers picked at random among those `ok`
/// accepts, the one with less `load`. Nearly as even as the least-loaded server, without
/// herding every new connection onto the one server that just became least loaded.
pub(super) fn two_choices(
    servers: &[Rc<ServerSlot>],
    rng: &mut Rng,
    load: impl Fn(&ServerSlot) -> u32,
    ok: impl Fn(&Rc<ServerSlot>) -> bool,
) -> Option<usize> {
    let n = servers.len();
    let eligible = || (0..n).filter(|&i| ok(&servers[i]));
    let count = eligible().count();
    if count == 0 {
        return None;
    }
    let a = rng.below(count);
    // The second pick is another eligible server (when there is one), at random.
    let b = if count > 1 {
        (a + 1 + rng.below(count - 1)) % count
    } else {
        a
    };
    let a = eligible().nth(a)?;
    let b = eligible().nth(b)?;
    Some(if load(&servers[b]) < load(&servers[a]) {
        b
    } else {
        a
    })
}

/// xorshift64*: a shard's own generator for two choices (no shared state, no syscall).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Never zero: xorshift would stay at zero.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`, `n > 0` (the modulo bias is negligible for config-sized `n`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
