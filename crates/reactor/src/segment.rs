//! File segments: part of a file queued behind a connection's output buffer and written to the
//! socket by `sendfile(2)`, page cache to socket inside the kernel, with no copy through user
//! memory and no offload round trip.
//!
//! The shard keeps the segments in a table by connection (`Segments`), not in `Conn`: few
//! connections ever have one, and every idle connection would pay for the field (the link
//! table is kept the same way). A connection holds at most one segment ([`crate::Cx::send_file`]). It is written after
//! the output bytes queued before it and before those queued after it, on the same writable
//! readiness, under the same high-water mark, write deadline and lingering close as buffered
//! output: to the rest of the reactor its unsent bytes are pending output like any other. A
//! connection that closes drops the segment, and with it its handle on the file.
//!
//! `sendfile` runs on the shard, so a page-cache miss would block every connection of the
//! shard on the disk. The reactor does not guess: [`page_cache_resident`] tells a protocol
//! whether a range is in the page cache without touching the disk (cachestat(2)); a protocol
//! queues a segment only for a resident range and reads the rest on the offload pool
//! (docs/ARCHITECTURE.md, "File segments").

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::Arc;

use crate::socket::Stream;
use crate::token::ConnToken;

/// The largest count one `sendfile` call is asked for (the kernel's own cap, `MAX_RW_COUNT`).
const MAX_CALL: u64 = 0x7fff_f000;

/// A queued segment: `len` bytes of `file` from `offset`, sent after the first `after` bytes
/// of the output buffer.
#[derive(Debug)]
pub(crate) struct Segment {
    file: Arc<File>,
    offset: u64,
    len: u64,
    /// Output bytes (from the start of the output buffer) queued before the segment.
    after: usize,
    /// The socket is corked for this segment (see [`drain`]).
    corked: bool,
}

/// Why [`crate::Cx::send_file`] did not queue a segment; the caller sends the bytes another
/// way (the file handle is the caller's still).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFileRefused {
    /// This connection's transport cannot take `sendfile` (it must see the bytes, as TLS
    /// does): see [`crate::Cx::can_send_file`].
    Transport,
    /// A segment is already queued: one at a time.
    Busy,
}

impl Segment {
    pub fn new(file: Arc<File>, offset: u64, len: u64, after: usize) -> Self {
        Self {
            file,
            offset,
            len,
            after,
            corked: false,
        }
    }

    /// The output buffer it was queued behind is written and gone: the bytes queued after it
    /// start a new buffer.
    pub fn rebase(&mut self) {
        self.after = 0;
    }

    /// Bytes not yet sent.
    pub fn remaining(&self) -> u64 {
        self.len
    }
}

/// The shard's queued segments, by connection.
#[derive(Debug, Default)]
pub(crate) struct Segments {
    by_conn: HashMap<ConnToken, Segment>,
}

impl Segments {
    /// Unsent bytes of `token`'s segment (0 without one); no lookup while the table is empty.
    /// Inline, with the table's lookup out of line: the output checks of every event ask,
    /// and a shard that queued no segment answers from the emptiness test alone.
    #[inline]
    pub fn remaining(&self, token: ConnToken) -> u64 {
        if self.by_conn.is_empty() {
            return 0;
        }
        self.queued(token)
    }

    #[inline(never)]
    fn queued(&self, token: ConnToken) -> u64 {
        self.by_conn.get(&token).map_or(0, Segment::remaining)
    }

    #[inline]
    pub fn has(&self, token: ConnToken) -> bool {
        !self.by_conn.is_empty() && self.holds(token)
    }

    #[inline(never)]
    fn holds(&self, token: ConnToken) -> bool {
        self.by_conn.contains_key(&token)
    }

    pub fn insert(&mut self, token: ConnToken, segment: Segment) {
        self.by_conn.insert(token, segment);
    }

    pub fn take(&mut self, token: ConnToken) -> Option<Segment> {
        if self.by_conn.is_empty() {
            return None;
        }
        self.by_conn.remove(&token)
    }
}

/// How far [`drain`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Drained {
    /// Bytes written to the socket by this call (buffer and file together).
    pub wrote: u64,
    /// Of `wrote`, those sent from the file.
    pub from_file: u64,
    /// The socket took less than everything: wait for writable readiness.
    pub blocked: bool,
}

/// Writes the output buffer from `*pos` and the segment in their order (buffer bytes before
/// the segment's mark, the segment, the rest) until everything is written or the socket is
/// full. A segment sent in full is dropped (its file handle with it). An output buffer written
/// in full is left for the caller to give back, with `*pos` at its end. `Err`: the socket
/// failed, or the file ended before the segment did (a response that announced its length
/// cannot be finished honestly).
pub(crate) fn drain(
    stream: &mut Stream,
    out: Option<&[u8]>,
    pos: &mut usize,
    segment: &mut Option<Segment>,
) -> io::Result<Drained> {
    let out = out.unwrap_or(&[]);
    let mut drained = Drained {
        wrote: 0,
        from_file: 0,
        blocked: false,
    };
    // Corked from the segment's first write (or the output bytes before it: the response
    // head) to its last: with TCP_NODELAY, set on every accepted socket, each `send` and
    // `sendfile` call would end in a short packet of its own, whose per-packet work both ends
    // of a loopback connection pay for; corked, the head and the file leave in full-sized
    // packets, as nginx's `tcp_nopush` sends them. Uncorking when the segment is done pushes
    // its tail at once. A failed setsockopt costs only the packing.
    if let Some(seg) = segment.as_mut() {
        if !seg.corked {
            seg.corked = stream.set_cork(true).is_ok();
        }
    }
    loop {
        let mark = segment
            .as_ref()
            .map_or(out.len(), |s| s.after.min(out.len()));
        if !write_buf(stream, &out[..mark], pos, &mut drained)? {
            return Ok(drained);
        }
        let Some(seg) = segment.as_mut() else {
            return Ok(drained);
        };
        if !write_segment(stream, seg, &mut drained)? {
            return Ok(drained);
        }
        if seg.corked {
            let _ = stream.set_cork(false);
        }
        *segment = None;
    }
}

/// Writes `buf[*pos..]`; false when the socket filled first.
fn write_buf(
    stream: &mut Stream,
    buf: &[u8],
    pos: &mut usize,
    drained: &mut Drained,
) -> io::Result<bool> {
    while *pos < buf.len() {
        match stream.write(&buf[*pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *pos += n;
                drained.wrote += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                drained.blocked = true;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Sends the segment; false when the socket filled first.
fn write_segment(
    stream: &mut Stream,
    seg: &mut Segment,
    drained: &mut Drained,
) -> io::Result<bool> {
    while seg.len > 0 {
        let count = seg.len.min(MAX_CALL) as usize;
        match stream.send_file(&seg.file, &mut seg.offset, count) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                seg.len -= n as u64;
                drained.wrote += n as u64;
                drained.from_file += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                drained.blocked = true;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Whether every page of `len` bytes of `file` from `offset` is in the page cache, asked
/// without touching the disk (cachestat(2), Linux 6.5). `None` when the kernel cannot tell
/// (an older kernel, a file system without a page cache): treat as not resident.
pub fn page_cache_resident(file: &File, offset: u64, len: u64) -> Option<bool> {
    if len == 0 {
        return Some(true);
    }
    let page = crate::sys::page_size();
    let pages = (offset + len).div_ceil(page) - offset / page;
    let cached = crate::sys::cached_pages(file, offset, len).ok()?;
    Some(cached >= pages)
}

/// Asks the kernel to start reading `len` bytes of `file` from `offset` into the page cache
/// (`POSIX_FADV_WILLNEED`) and returns without waiting for the disk. A hint: failures are
/// ignored. Call it off the shard (it may wait to queue the reads).
pub fn will_need(file: &File, offset: u64, len: u64) {
    let len = std::num::NonZeroU64::new(len);
    let _ = rustix::fs::fadvise(file, offset, len, rustix::fs::Advice::WillNeed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn pair() -> (Stream, std::os::unix::net::UnixStream) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Stream::Unix(mio::net::UnixStream::from_std(ours)), theirs)
    }

    fn file_of(name: &str, data: &[u8]) -> (Arc<File>, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("coreloop-seg-{name}-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(data)
            .unwrap();
        (Arc::new(File::open(&path).unwrap()), path)
    }

    /// Drains `ours` and reads `theirs` in turns until `want` bytes arrived (each read is
    /// bounded by the socket's read timeout).
    fn pump(
        ours: &mut Stream,
        theirs: &mut std::os::unix::net::UnixStream,
        out: &[u8],
        pos: &mut usize,
        seg: &mut Option<Segment>,
        want: usize,
    ) -> Vec<u8> {
        theirs
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        while got.len() < want {
            drain(ours, Some(out), pos, seg).unwrap();
            let n = theirs.read(&mut chunk).unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&chunk[..n]);
        }
        assert!(seg.is_none() && *pos == out.len());
        got
    }

    #[test]
    fn buffer_before_the_mark_then_the_file_then_the_rest() {
        let data: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let (file, path) = file_of("order", &data);
        let (mut ours, mut theirs) = pair();
        let out = b"HEAD|tail".to_vec();
        let mut seg = Some(Segment::new(file, 7, data.len() as u64 - 9, 5));
        let mut pos = 0;
        let want = out.len() + data.len() - 9;
        let got = pump(&mut ours, &mut theirs, &out, &mut pos, &mut seg, want);
        let mut expected = b"HEAD|".to_vec();
        expected.extend_from_slice(&data[7..data.len() - 2]);
        expected.extend_from_slice(b"tail");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_full_socket_blocks_and_keeps_the_segment() {
        let data = vec![7u8; 8 * 1024 * 1024];
        let (file, path) = file_of("block", &data);
        let (mut ours, _theirs) = pair();
        let mut seg = Some(Segment::new(file, 0, data.len() as u64, 0));
        let mut pos = 0;
        let drained = drain(&mut ours, None, &mut pos, &mut seg).unwrap();
        assert!(drained.blocked);
        let left = seg.as_ref().unwrap().remaining();
        assert_eq!(left + drained.wrote, data.len() as u64);
        // Nothing read since: a second turn writes nothing and still blocks.
        let again = drain(&mut ours, None, &mut pos, &mut seg).unwrap();
        assert_eq!((again.wrote, again.blocked), (0, true));
        std::fs::remove_file(path).unwrap();
    }

    /// A loopback TCP pair: ours non-blocking (as the shard's), theirs a plain blocking socket.
    /// Small buffers on both ends, so that a few MiB fill them whatever the host's defaults.
    fn tcp_pair() -> (Stream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let theirs = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        socket2::SockRef::from(&theirs)
            .set_recv_buffer_size(64 * 1024)
            .unwrap();
        let (ours, _) = listener.accept().unwrap();
        socket2::SockRef::from(&ours)
            .set_send_buffer_size(64 * 1024)
            .unwrap();
        ours.set_nonblocking(true).unwrap();
        ours.set_nodelay(true).unwrap();
        (Stream::Tcp(mio::net::TcpStream::from_std(ours)), theirs)
    }

    fn corked(stream: &Stream) -> bool {
        let Stream::Tcp(tcp) = stream else {
            unreachable!("a TCP pair")
        };
        rustix::net::sockopt::tcp_cork(tcp).unwrap()
    }

    /// Corked while a segment is unsent (so the head and the file leave in full packets),
    /// and uncorked the moment it is done: a cork left on would hold the tail of the file and
    /// the next response back for the kernel's 200 ms.
    #[test]
    fn a_tcp_socket_is_corked_while_its_segment_is_sent_and_uncorked_after() {
        let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
        let (file, path) = file_of("cork", &data);
        let (mut ours, mut theirs) = tcp_pair();
        assert!(!corked(&ours));
        let out = b"HEAD|".to_vec();
        let mut seg = Some(Segment::new(file, 0, data.len() as u64, out.len()));
        let mut pos = 0;
        let first = drain(&mut ours, Some(&out), &mut pos, &mut seg).unwrap();
        assert!(first.blocked, "4 MiB fit 64 KiB socket buffers at once");
        assert!(corked(&ours), "not corked while the segment is sent");
        theirs
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let want = out.len() + data.len();
        let mut got = 0;
        let mut chunk = vec![0; 256 * 1024];
        while got < want {
            if seg.is_some() {
                drain(&mut ours, Some(&out), &mut pos, &mut seg).unwrap();
            }
            let n = theirs.read(&mut chunk).unwrap();
            assert!(n > 0, "closed early");
            got += n;
        }
        assert!(seg.is_none());
        assert!(!corked(&ours), "still corked after the segment was sent");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_file_shorter_than_its_segment_is_an_error() {
        let (file, path) = file_of("short", b"0123456789");
        let (mut ours, _theirs) = pair();
        let mut seg = Some(Segment::new(file, 4, 100, 0));
        let mut pos = 0;
        let error = drain(&mut ours, None, &mut pos, &mut seg).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_segment_sent_in_full_releases_its_file() {
        let (file, path) = file_of("release", b"abcdef");
        let weak = Arc::downgrade(&file);
        let (mut ours, mut theirs) = pair();
        let mut seg = Some(Segment::new(file, 0, 6, 0));
        let mut pos = 0;
        let drained = drain(&mut ours, None, &mut pos, &mut seg).unwrap();
        assert_eq!((drained.wrote, drained.blocked), (6, false));
        assert!(seg.is_none());
        assert!(weak.upgrade().is_none(), "the file is still held");
        let mut got = [0; 6];
        theirs.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcdef");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn residency_of_a_freshly_written_file_and_of_nothing() {
        let (file, path) = file_of("resident", &vec![1u8; 256 * 1024]);
        assert_eq!(page_cache_resident(&file, 0, 0), Some(true));
        // Just written: its pages are in the cache (unless the kernel lacks cachestat).
        if let Some(resident) = page_cache_resident(&file, 0, 256 * 1024) {
            assert!(resident);
            assert_eq!(page_cache_resident(&file, 4000, 10_000), Some(true));
        }
        std::fs::remove_file(path).unwrap();
    }
}
