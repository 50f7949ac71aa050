//! Where to cut an input: a small PRNG seeded from the input itself, so that every input is
//! plain bytes (a seed file is a real request, nothing more) and replays the same cuts.

/// xorshift64*, seeded with FNV-1a of the input.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `data`.
    pub fn from_data(data: &[u8]) -> Self {
        let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self(hash | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `data` cut into up to 9 pieces at random points (some of them empty, some one byte).
pub fn pieces<'a>(data: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    let cuts = rng.below(9) as usize;
    let mut at: Vec<usize> = (0..cuts)
        .map(|_| rng.below(data.len() as u64 + 1) as usize)
        .collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(cuts + 1);
    let mut start = 0;
    for cut in at {
        out.push(&data[start..cut]);
        start = cut;
    }
    out.push(&data[start..]);
    out
}
