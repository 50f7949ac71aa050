//! A file body sent a piece at a time: the open file, where the next piece starts, and the
//! buffer a window is read into.
//!
//! Two ways out, chosen per piece on the shard:
//! - `sendfile`: a [`SEGMENT`] whose pages are all in the page cache (asked with cachestat(2),
//!   which never waits on the disk) is queued behind the output buffer and sent by the
//!   reactor, page cache to socket in the kernel: no read, no copy, no offload round trip;
//! - windows: otherwise (a page is not cached, the kernel cannot tell, or the transport must
//!   see the bytes, as TLS does) the next [`WINDOW`] is read on the offload pool, where a read
//!   may block on the disk, and copied into the output buffer. The read also asks the kernel
//!   to start reading the next segment (`POSIX_FADV_WILLNEED`), so that a file that is read
//!   from the disk moves to `sendfile` as soon as the disk is ahead.
//!
//! Memory per download is one window (none while it goes by `sendfile`), whatever the size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use coreloop_reactor::{page_cache_resident, Cx};

/// Bytes read per window. 128 KiB keeps 100 concurrent downloads near 25 MiB of buffers
/// (window plus its copy in the output buffer) while one download pays an offload round trip
/// only every 128 KiB.
pub(crate) const WINDOW: usize = 128 * 1024;

/// Bytes per `sendfile` segment, each checked for residency before it is queued. A page
/// evicted after its check blocks the shard on one disk read at worst; smaller segments
/// narrow that window, larger ones save a check (one cheap syscall) per segment.
pub(crate) const SEGMENT: u64 = 4 * 1024 * 1024;

/// The unsent rest of a file response.
#[derive(Debug)]
pub(crate) struct FileBody {
    file: Arc<File>,
    /// Where the next piece starts.
    pos: u64,
    /// Bytes after `pos` still to send.
    remaining: u64,
    window: Vec<u8>,
    /// The next segment was found resident when the body began: its first queue need not ask
    /// again (the check and the queue are a job's round trip apart at most).
    checked: bool,
    /// Until when segments go with no residency check (the whole file was found resident
    /// lately: `cache::OpenFile::trust`).
    trusted_until: Option<Instant>,
}

impl FileBody {
    /// `count` bytes of `file` from `offset`. The first window is read now (this runs on the
    /// offload pool), unless `send_file` allows sendfile and the first segment is in the
    /// page cache: the shard then sends it without a read.
    pub fn open(file: Arc<File>, offset: u64, count: u64, send_file: bool) -> io::Result<Self> {
        let mut body = Self::unread(file, offset, count);
        body.checked = send_file && body.next_resident();
        if !body.checked {
            body.read_window()?;
        }
        Ok(body)
    }

    /// `count` bytes of `file` from `offset`, begun on the shard: only if the first segment is
    /// in the page cache (no read here, which could block on the disk); `None` otherwise.
    /// `trusted_until`: the whole file was found resident lately, so no segment is checked
    /// before then.
    pub fn resident(
        file: Arc<File>,
        offset: u64,
        count: u64,
        trusted_until: Option<Instant>,
    ) -> Option<Self> {
        let mut body = Self::unread(file, offset, count);
        body.trusted_until = trusted_until;
        body.checked = trusted_until.is_some() || body.next_resident();
        body.checked.then_some(body)
    }

    fn unread(file: Arc<File>, offset: u64, count: u64) -> Self {
        Self {
            file,
            pos: offset,
            remaining: count,
            window: Vec::new(),
            checked: false,
            trusted_until: None,
        }
    }

    /// Reads the next window (blocking). A file that shrank under us is an error: the response
    /// announced its length already, so it cannot be finished honestly.
    pub fn read_window(&mut self) -> io::Result<()> {
        let want = self.remaining.min(WINDOW as u64) as usize;
        self.checked = false;
        self.window.clear();
        self.window.resize(want, 0);
        self.file.read_exact_at(&mut self.window, self.pos)?;
        self.pos += want as u64;
        self.remaining -= want as u64;
        if self.remaining > 0 {
            coreloop_reactor::segment::will_need(&self.file, self.pos, SEGMENT);
        }
        Ok(())
    }

    /// Moves the window read last into the connection's output: it becomes the output buffer
    /// when nothing else is pending (no copy), else it is appended.
    pub fn put_window(&mut self, cx: &mut Cx<'_>) {
        if self.window.is_empty() {
            return;
        }
        if cx.pending_output() == 0 {
            std::mem::swap(&mut self.window, cx.out());
        } else {
            cx.out().extend_from_slice(&self.window);
        }
        self.window.clear();
    }

    /// Queues the next segment for `sendfile` if the transport takes it and its pages are
    /// all in the page cache; false when the caller must read a window instead.
    pub fn queue_segment(&mut self, cx: &mut Cx<'_>) -> bool {
        let trusted = self.trusted_until.is_some_and(|t| cx.now() < t);
        let checked = std::mem::take(&mut self.checked) || trusted;
        if self.remaining == 0 || !cx.can_send_file() || !(checked || self.next_resident()) {
            return false;
        }
        let len = self.remaining.min(SEGMENT);
        if cx.send_file(&self.file, self.pos, len).is_err() {
            return false;
        }
        self.pos += len;
        self.remaining -= len;
        true
    }

    fn next_resident(&self) -> bool {
        let len = self.remaining.min(SEGMENT);
        page_cache_resident(&self.file, self.pos, len) == Some(true)
    }

    /// Whether bytes remain to be sent after what is queued.
    pub fn more(&self) -> bool {
        self.remaining > 0
    }

    #[cfg(test)]
    fn window(&self) -> &[u8] {
        &self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_range_exactly_and_a_shrunk_file_fails() {
        let path = std::env::temp_dir().join(format!("coreloop-body-{}", std::process::id()));
        let data: Vec<u8> = (0..WINDOW * 2 + 10).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut body = FileBody::open(
            Arc::new(File::open(&path).unwrap()),
            5,
            data.len() as u64 - 7,
            false,
        )
        .unwrap();
        let mut got = body.window().to_vec();
        while body.more() {
            body.read_window().unwrap();
            got.extend_from_slice(body.window());
        }
        assert_eq!(got, &data[5..data.len() - 2]);
        let mut short = FileBody::open(
            Arc::new(File::open(&path).unwrap()),
            0,
            data.len() as u64,
            false,
        )
        .unwrap();
        std::fs::write(&path, &data[..WINDOW + 1]).unwrap();
        short.read_window().unwrap_err();
        std::fs::remove_file(&path).unwrap();
    }
}
