//! A file body sent one window at a time: the open file (positioned where the next window
//! starts) and the buffer that window is read into.
//!
//! Memory per download is this buffer plus the copy in the connection's output buffer, whatever
//! the file's size; the reads run on the offload pool because a read may block on the disk.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read per window. 128 KiB keeps 100 concurrent downloads near 25 MiB of buffers
/// (window plus its copy in the output buffer) while one download pays an offload round trip
/// only every 128 KiB.
pub(crate) const WINDOW: usize = 128 * 1024;

/// The unsent rest of a file response.
#[derive(Debug)]
pub(crate) struct FileBody {
    file: File,
    remaining: u64,
    window: Vec<u8>,
}

impl FileBody {
    /// `count` bytes of `file` from `offset`, with the first window already read.
    pub fn open(mut file: File, offset: u64, count: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(offset))?;
        let mut body = Self {
            file,
            remaining: count,
            window: Vec::new(),
        };
        body.read_window()?;
        Ok(body)
    }

    /// Reads the next window (blocking). A file that shrank under us is an error: the response
    /// announced its length already, so it cannot be finished honestly. `read_to_end` reads
    /// into the buffer's spare capacity without zeroing it first.
    pub fn read_window(&mut self) -> io::Result<()> {
        let want = self.remaining.min(WINDOW as u64);
        self.window.clear();
        self.window.reserve_exact(want as usize);
        (&mut self.file).take(want).read_to_end(&mut self.window)?;
        if (self.window.len() as u64) < want {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= want;
        Ok(())
    }

    /// Hands the window over to become the connection's output buffer (no copy), taking
    /// `spare` (the empty buffer it replaces) as the next window's.
    pub fn swap_window(&mut self, spare: &mut Vec<u8>) {
        std::mem::swap(&mut self.window, spare);
        self.window.clear();
    }

    /// The window read last.
    pub fn window(&self) -> &[u8] {
        &self.window
    }

    /// Whether windows remain to be read after the current one.
    pub fn more(&self) -> bool {
        self.remaining > 0
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
        let mut body =
            FileBody::open(File::open(&path).unwrap(), 5, data.len() as u64 - 7).unwrap();
        let mut got = body.window().to_vec();
        while body.more() {
            body.read_window().unwrap();
            got.extend_from_slice(body.window());
        }
        assert_eq!(got, &data[5..data.len() - 2]);
        let mut short = FileBody::open(File::open(&path).unwrap(), 0, data.len() as u64).unwrap();
        std::fs::write(&path, &data[..WINDOW + 1]).unwrap();
        short.read_window().unwrap_err();
        std::fs::remove_file(&path).unwrap();
    }
}
