//! A connection's unconsumed input.

/// Unconsumed input: `data[start..end]`. `data` stays fully initialised at its length, so
/// reads go straight into it without zeroing; consumed bytes only move `start`. A boxed slice,
/// not a `Vec`: its length is all the room there is, and `Option<InBuf>` in `Conn` is 24
/// bytes, not 32 (issue 16, S4).
pub(crate) struct InBuf {
    pub data: Box<[u8]>,
    pub start: u32,
    pub end: u32,
}

impl InBuf {
    pub fn unconsumed(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start as usize..self.end as usize]
    }

    /// Makes room at the end: first by moving the unconsumed bytes to the front, then by
    /// growing up to `max`. `false` when the buffer is full at `max`.
    #[inline]
    pub fn make_room(&mut self, max: usize) -> bool {
        // Inline for the case of every read but one that filled the buffer.
        if (self.end as usize) < self.data.len() {
            return true;
        }
        self.compact_or_grow(max)
    }

    #[cold]
    fn compact_or_grow(&mut self, max: usize) -> bool {
        if self.start > 0 {
            self.data
                .copy_within(self.start as usize..self.end as usize, 0);
            self.end -= self.start;
            self.start = 0;
            return true;
        }
        if self.data.len() >= max {
            return false;
        }
        // Offsets are u32: input is capped far below 4 GiB (max_input).
        let grown = (self.data.len() * 2).min(max).min(u32::MAX as usize);
        let mut data = std::mem::take(&mut self.data).into_vec();
        // Exact, so that the box takes the vector's block as it is.
        data.reserve_exact(grown - data.len());
        data.resize(grown, 0);
        self.data = data.into_boxed_slice();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(len: usize, start: u32, end: u32) -> InBuf {
        InBuf {
            data: (0..len as u8).collect::<Vec<_>>().into_boxed_slice(),
            start,
            end,
        }
    }

    #[test]
    fn room_comes_from_free_tail_then_compaction_then_growth_up_to_the_cap() {
        let mut tail = buf(8, 2, 5);
        assert!(tail.make_room(8));
        assert_eq!((tail.start, tail.end), (2, 5), "free tail: nothing moves");

        let mut shifted = buf(8, 3, 8);
        assert!(shifted.make_room(8));
        assert_eq!((shifted.start, shifted.end), (0, 5));
        assert_eq!(
            shifted.bytes(),
            [3, 4, 5, 6, 7],
            "the unconsumed bytes move to the front"
        );

        let mut grown = buf(8, 0, 8);
        assert!(grown.make_room(12));
        assert_eq!(grown.data.len(), 12, "doubling stops at the cap");
        assert_eq!(grown.bytes(), [0, 1, 2, 3, 4, 5, 6, 7]);

        let mut full = buf(8, 0, 8);
        assert!(!full.make_room(8), "full at the cap: no room");
    }
}
