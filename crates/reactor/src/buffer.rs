//! A per-shard pool of byte buffers for connection input and output.
//!
//! A connection takes a buffer when bytes arrive (or when it has output to write) and gives it
//! back as soon as it holds nothing, so an idle keep-alive connection owns no buffer at all and
//! steady-state traffic allocates nothing.

/// Buffers that grew past this multiple of the pool's size are dropped instead of kept, so one
/// large request does not pin a large buffer forever.
const MAX_KEPT_GROWTH: usize = 4;

/// A free list of `Vec<u8>`s of one capacity. Owned by one shard; not shared.
#[derive(Debug)]
pub struct BufPool {
    free: Vec<Vec<u8>>,
    buf_size: usize,
    max_free: usize,
    allocated: u64,
}

impl BufPool {
    /// A pool of buffers of `buf_size` bytes that keeps at most `max_free` idle buffers.
    pub fn new(buf_size: usize, max_free: usize) -> Self {
        Self {
            free: Vec::new(),
            buf_size: buf_size.max(64),
            max_free,
            allocated: 0,
        }
    }

    /// The capacity of a fresh buffer.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// An empty buffer with at least `buf_size` capacity.
    #[inline]
    pub fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| {
            self.allocated += 1;
            Vec::with_capacity(self.buf_size)
        })
    }

    /// Returns a buffer; its contents are discarded.
    #[inline]
    pub fn give(&mut self, mut buf: Vec<u8>) {
        if self.free.len() >= self.max_free || buf.capacity() > self.buf_size * MAX_KEPT_GROWTH {
            return;
        }
        buf.clear();
        self.free.push(buf);
    }

    /// A buffer of at least `buf_size` initialized bytes, for reading into, whose length is
    /// its capacity (so `into_boxed_slice` never reallocates). Buffers given back with
    /// [`give_filled`](Self::give_filled) keep their bytes and their length (one that grew
    /// for a large request comes back grown), so only a fresh allocation is zeroed: zeroing
    /// 16 KiB on every read cost more than parsing the requests it brought (callgrind,
    /// pipelined /plaintext: a quarter of the instructions per request). What the bytes held
    /// before is never seen: a reader exposes only what it read into them.
    #[inline]
    pub fn take_filled(&mut self) -> Vec<u8> {
        match self.free.pop() {
            // Given back filled, as on every keep-alive request: handed out as it is, inline.
            Some(buf) if buf.len() >= self.buf_size && buf.len() == buf.capacity() => buf,
            other => self.fill(other),
        }
    }

    /// [`take_filled`](Self::take_filled)'s other cases: a fresh buffer, or one given back
    /// with [`give`](Self::give).
    #[cold]
    fn fill(&mut self, buf: Option<Vec<u8>>) -> Vec<u8> {
        let mut buf = buf.unwrap_or_else(|| {
            self.allocated += 1;
            Vec::with_capacity(self.buf_size)
        });
        if buf.len() < self.buf_size {
            buf.resize(self.buf_size, 0);
        }
        // Fresh buffers have exactly `buf_size` capacity; given-back ones are full length.
        let len = buf.capacity();
        buf.resize(len, 0);
        buf
    }

    /// Gives back a buffer taken with [`take_filled`](Self::take_filled), bytes kept.
    pub fn give_filled(&mut self, buf: Vec<u8>) {
        if self.free.len() >= self.max_free || buf.capacity() > self.buf_size * MAX_KEPT_GROWTH {
            return;
        }
        self.free.push(buf);
    }

    /// Idle buffers held by the pool.
    pub fn idle(&self) -> usize {
        self.free.len()
    }

    /// Buffers allocated since the pool was made (a steady state allocates none).
    pub fn allocated(&self) -> u64 {
        self.allocated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_not_reallocated() {
        let mut pool = BufPool::new(1024, 8);
        let buf = pool.take();
        pool.give(buf);
        let again = pool.take();
        assert!(again.capacity() >= 1024);
        assert!(again.is_empty());
        assert_eq!(pool.allocated(), 1);
    }

    #[test]
    fn oversized_buffers_and_overflow_are_dropped() {
        let mut pool = BufPool::new(1024, 1);
        pool.give(Vec::with_capacity(1024 * 64));
        assert_eq!(pool.idle(), 0);
        let buf = pool_buf(&mut pool);
        pool.give(buf);
        pool.give(Vec::with_capacity(1024));
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn a_filled_buffer_comes_back_filled_without_growing() {
        let mut pool = BufPool::new(4096, 4);
        let mut buf = pool.take_filled();
        assert_eq!(buf.len(), 4096);
        buf[0] = 7;
        // Grown by a large request, within the kept limit.
        buf.resize(8192, 1);
        pool.give_filled(buf);
        let again = pool.take_filled();
        assert_eq!(
            again.len(),
            8192,
            "its grown length is room for the next request"
        );
        assert_eq!(again.capacity(), again.len());
        assert_eq!(again[0], 7, "the same buffer, not zeroed again");
        assert_eq!(pool.allocated(), 1);
    }

    fn pool_buf(pool: &mut BufPool) -> Vec<u8> {
        let mut buf = pool.take();
        buf.extend_from_slice(b"data");
        buf
    }
}
