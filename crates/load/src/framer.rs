//! HTTP/1.1 response framing, sans-IO: bytes in, "a response ended here" out.
//!
//! The framer keeps no copy of the input, so a connection owns no read
//! buffer: the worker reads into one scratch buffer per thread and feeds it
//! here. It follows the message-length rules of RFC 9112 section 6.3:
//! 1. 1xx (except 101), 204 and 304 responses, and answers to HEAD, end at the head;
//! 2. `Transfer-Encoding` ending in `chunked` frames the body in chunks;
//! 3. otherwise `Content-Length` gives the body length (differing values are refused);
//! 4. otherwise the body runs until the server closes the connection.

use std::fmt;

/// Largest response head accepted; a server sending more is not one we measure.
const MAX_HEAD: usize = 64 * 1024;
const NAME_CAP: usize = 20;
const VALUE_CAP: usize = 32;
const VERSION: &[u8] = b"HTTP/1.";

/// What the framer learned about one complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The server will close after this response (`Connection: close`,
    /// HTTP/1.0 without keep-alive, or a body delimited by the close).
    pub close: bool,
}

/// Why a response could not be framed. Incomplete input is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    StatusLine,
    HeaderLine,
    ContentLength,
    ChunkSize,
    HeadTooLarge,
    /// The connection ended inside a response.
    Truncated,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StatusLine => "malformed status line",
            Self::HeaderLine => "malformed header line",
            Self::ContentLength => "invalid or conflicting Content-Length",
            Self::ChunkSize => "invalid chunk size line",
            Self::HeadTooLarge => "response head larger than 64 KiB",
            Self::Truncated => "connection closed inside a response",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderKind {
    ContentLength,
    TransferEncoding,
    Connection,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Version(u8),
    Minor,
    SpaceBeforeStatus,
    Status(u8),
    Reason,
    LineStart,
    LineStartCr,
    Name,
    Value(HeaderKind),
    Body(u64),
    ChunkSize { any: bool },
    ChunkExt,
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    TrailerStart,
    TrailerLine,
    TrailerEndLf,
    UntilClose,
}

/// Streaming framer for a sequence of responses on one connection.
#[derive(Debug, Clone)]
pub struct Framer {
    state: State,
    head_bytes: usize,
    status: u16,
    minor: u8,
    content_length: Option<u64>,
    chunked: bool,
    conn_close: bool,
    conn_keep_alive: bool,
    name: [u8; NAME_CAP],
    name_len: usize,
    value: [u8; VALUE_CAP],
    value_len: usize,
    number: Option<u64>,
    expect_body: bool,
    done: bool,
}

impl Framer {
    /// `expect_body` is false for HEAD requests, whose answers carry no body.
    pub fn new(expect_body: bool) -> Self {
        Self {
            state: State::Version(0),
            head_bytes: 0,
            status: 0,
            minor: 0,
            content_length: None,
            chunked: false,
            conn_close: false,
            conn_keep_alive: false,
            name: [0; NAME_CAP],
            name_len: 0,
            value: [0; VALUE_CAP],
            value_len: 0,
            number: None,
            expect_body,
            done: false,
        }
    }

    /// False when built for answers to HEAD.
    pub fn expects_body(&self) -> bool {
        self.expect_body
    }

    /// True between responses, when no byte of the next one has arrived.
    pub fn is_idle(&self) -> bool {
        self.state == State::Version(0)
    }

    /// Consumes input up to the end of at most one response. Returns how many
    /// bytes were used and the response if one ended; call again with the rest.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<Response>), FrameError> {
        let mut i = 0;
        if self.is_idle() {
            if let Some(used) = self.whole_head(input) {
                i = used;
                if let Some(done) = self.take_done() {
                    return Ok((i, Some(done)));
                }
            }
        }
        while i < input.len() {
            let used = self.step(&input[i..])?;
            i += used;
            if let Some(done) = self.take_done() {
                return Ok((i, Some(done)));
            }
        }
        Ok((i, None))
    }

    /// Tells the framer the peer closed. Ends a close-delimited body; any
    /// other partial response is `Truncated`.
    pub fn finish(&mut self) -> Result<Option<Response>, FrameError> {
        match self.state {
            State::UntilClose => {
                let r = self.response(true);
                self.reset();
                Ok(Some(r))
            }
            State::Version(0) => Ok(None),
            _ => Err(FrameError::Truncated),
        }
    }

    fn response(&self, close: bool) -> Response {
        let http10_close = self.minor == 0 && !self.conn_keep_alive;
        Response {
            status: self.status,
            close: close || self.conn_close || http10_close,
        }
    }

    /// Ready for the next response. The name and value buffers are only
    /// read up to their lengths, so they are not cleared (a memset per response).
    fn reset(&mut self) {
        self.state = State::Version(0);
        self.head_bytes = 0;
        self.status = 0;
        self.minor = 0;
        self.content_length = None;
        self.chunked = false;
        self.conn_close = false;
        self.conn_keep_alive = false;
        self.name_len = 0;
        self.value_len = 0;
        self.number = None;
        self.done = false;
    }

    fn take_done(&mut self) -> Option<Response> {
        if !self.done {
            return None;
        }
        let r = self.response(false);
        self.reset();
        Some(r)
    }

    fn end_message(&mut self) {
        self.done = true;
    }

    /// Advances over a prefix of `input`; returns the bytes used (at least 1).
    fn step(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        match self.state {
            State::Body(n) => Ok(self.skip_body(input, n)),
            State::ChunkData(n) => Ok(self.skip_chunk(input, n)),
            State::UntilClose => Ok(input.len()),
            // Most head bytes are values nobody reads: skip to the line end.
            State::Reason | State::Value(HeaderKind::Other) => self.skip_line(input),
            State::Name => self.name_run(input),
            _ => {
                self.head_byte_budget()?;
                self.byte(input[0])?;
                Ok(1)
            }
        }
    }

    /// Takes header-name bytes up to (not including) the ':' or a non-token byte.
    fn name_run(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let end = input
            .iter()
            .position(|&b| !is_token(b))
            .unwrap_or(input.len());
        if end == 0 {
            self.head_byte_budget()?;
            self.byte(input[0])?;
            return Ok(1);
        }
        for &b in &input[..end] {
            self.push_name(b);
        }
        self.head_bytes += end;
        if self.head_bytes > MAX_HEAD {
            return Err(FrameError::HeadTooLarge);
        }
        Ok(end)
    }

    /// Consumes up to (not including) the next LF, refusing control bytes.
    fn skip_line(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let end = input
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(input.len());
        if end == 0 {
            self.head_byte_budget()?;
            self.byte(input[0])?;
            return Ok(1);
        }
        let bad = |b: &u8| matches!(b, 0..=8 | 0x0a..=0x0c | 0x0e..=0x1f | 0x7f);
        if input[..end].iter().any(bad) {
            return Err(if self.state == State::Reason {
                FrameError::StatusLine
            } else {
                FrameError::HeaderLine
            });
        }
        self.head_bytes += end;
        if self.head_bytes > MAX_HEAD {
            return Err(FrameError::HeadTooLarge);
        }
        Ok(end)
    }

    fn head_byte_budget(&mut self) -> Result<(), FrameError> {
        self.head_bytes += 1;
        if self.head_bytes > MAX_HEAD {
            return Err(FrameError::HeadTooLarge);
        }
        Ok(())
    }

    fn skip_body(&mut self, input: &[u8], left: u64) -> usize {
        let n = left.min(input.len() as u64);
        if n == left {
            self.end_message();
        } else {
            self.state = State::Body(left - n);
        }
        n as usize
    }

    fn byte(&mut self, b: u8) -> Result<(), FrameError> {
        match self.state {
            State::Version(i) => self.version(i, b),
            State::Minor => self.minor_digit(b),
            State::SpaceBeforeStatus => {
                expect(b == b' ', State::Status(0), FrameError::StatusLine, self)
            }
            State::Status(n) => self.status_digit(n, b),
            State::Reason => self.reason(b),
            State::LineStart => self.line_start(b),
            State::LineStartCr => {
                expect(b == b'\n', State::LineStart, FrameError::HeaderLine, self)?;
                self.end_head()
            }
            State::Name => self.name_byte(b),
            State::Value(kind) => self.value_byte(kind, b),
            State::ChunkSize { any } => self.chunk_size(any, b),
            State::ChunkExt => self.chunk_ext(b),
            State::ChunkDataCr => self.chunk_data_end(b),
            State::ChunkDataLf => expect(
                b == b'\n',
                State::ChunkSize { any: false },
                FrameError::ChunkSize,
                self,
            ),
            State::TrailerStart => self.trailer_start(b),
            State::TrailerLine => {
                if b == b'\n' {
                    self.state = State::TrailerStart;
                }
                Ok(())
            }
            State::TrailerEndLf => {
                expect(
                    b == b'\n',
                    State::TrailerStart,
                    FrameError::HeaderLine,
                    self,
                )?;
                self.end_message();
                Ok(())
            }
            State::Body(_) | State::ChunkData(_) | State::UntilClose => Ok(()),
        }
    }

    fn version(&mut self, i: u8, b: u8) -> Result<(), FrameError> {
        if VERSION.get(i as usize) != Some(&b) {
            return Err(FrameError::StatusLine);
        }
        self.state = if i as usize + 1 == VERSION.len() {
            State::Minor
        } else {
            State::Version(i + 1)
        };
        Ok(())
    }

    fn minor_digit(&mut self, b: u8) -> Result<(), FrameError> {
        if !b.is_ascii_digit() {
            return Err(FrameError::StatusLine);
        }
        self.minor = b - b'0';
        self.state = State::SpaceBeforeStatus;
        Ok(())
    }

    fn status_digit(&mut self, n: u8, b: u8) -> Result<(), FrameError> {
        if n == 3 {
            return match b {
                b' ' => {
                    self.state = State::Reason;
                    Ok(())
                }
                b'\r' | b'\n' => self.reason(b),
                _ => Err(FrameError::StatusLine),
            };
        }
        if !b.is_ascii_digit() {
            return Err(FrameError::StatusLine);
        }
        self.status = self.status * 10 + u16::from(b - b'0');
        self.state = State::Status(n + 1);
        Ok(())
    }

    fn reason(&mut self, b: u8) -> Result<(), FrameError> {
        match b {
            b'\n' => self.state = State::LineStart,
            b'\r' | b'\t' | b' '..=b'~' | 0x80..=0xff => {}
            _ => return Err(FrameError::StatusLine),
        }
        Ok(())
    }

    fn line_start(&mut self, b: u8) -> Result<(), FrameError> {
        match b {
            b'\r' => self.state = State::LineStartCr,
            b'\n' => return self.end_head(),
            _ if is_token(b) => {
                self.name_len = 0;
                self.push_name(b);
                self.state = State::Name;
            }
            _ => return Err(FrameError::HeaderLine),
        }
        Ok(())
    }

    fn push_name(&mut self, b: u8) {
        if self.name_len < NAME_CAP {
            self.name[self.name_len] = b.to_ascii_lowercase();
        }
        self.name_len += 1;
    }

    fn name_byte(&mut self, b: u8) -> Result<(), FrameError> {
        if b == b':' {
            let kind = self.header_kind();
            self.value_len = 0;
            self.number = None;
            self.state = State::Value(kind);
            return Ok(());
        }
        if !is_token(b) {
            return Err(FrameError::HeaderLine);
        }
        self.push_name(b);
        Ok(())
    }

    fn header_kind(&self) -> HeaderKind {
        if self.name_len > NAME_CAP {
            return HeaderKind::Other;
        }
        match &self.name[..self.name_len] {
            b"content-length" => HeaderKind::ContentLength,
            b"transfer-encoding" => HeaderKind::TransferEncoding,
            b"connection" => HeaderKind::Connection,
            _ => HeaderKind::Other,
        }
    }

    fn value_byte(&mut self, kind: HeaderKind, b: u8) -> Result<(), FrameError> {
        match b {
            b'\n' => return self.end_header(kind),
            b'\r' => return Ok(()),
            0..=8 | 0x0a..=0x1f | 0x7f => return Err(FrameError::HeaderLine),
            _ => {}
        }
        if kind == HeaderKind::ContentLength {
            return self.length_digit(b);
        }
        if self.value_len < VALUE_CAP {
            self.value[self.value_len] = b.to_ascii_lowercase();
        }
        self.value_len += 1;
        Ok(())
    }

    fn length_digit(&mut self, b: u8) -> Result<(), FrameError> {
        if b == b' ' || b == b'\t' {
            return Ok(());
        }
        if !b.is_ascii_digit() {
            return Err(FrameError::ContentLength);
        }
        let n = self.number.unwrap_or(0);
        let n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(FrameError::ContentLength)?;
        self.number = Some(n);
        Ok(())
    }

    fn end_header(&mut self, kind: HeaderKind) -> Result<(), FrameError> {
        self.state = State::LineStart;
        let value = &self.value[..self.value_len.min(VALUE_CAP)];
        match kind {
            HeaderKind::ContentLength => {
                let n = self.number.ok_or(FrameError::ContentLength)?;
                if self.content_length.is_some_and(|old| old != n) {
                    return Err(FrameError::ContentLength);
                }
                self.content_length = Some(n);
            }
            HeaderKind::TransferEncoding => self.chunked = trim(value).ends_with(b"chunked"),
            HeaderKind::Connection => {
                self.conn_close |= contains(value, b"close");
                self.conn_keep_alive |= contains(value, b"keep-alive");
            }
            HeaderKind::Other => {}
        }
        Ok(())
    }

    fn end_head(&mut self) -> Result<(), FrameError> {
        let status = self.status;
        if (100..200).contains(&status) && status != 101 {
            // An interim response; the real one follows on the same connection.
            self.reset();
            return Ok(());
        }
        if !self.expect_body || status == 204 || status == 304 {
            self.end_message();
            return Ok(());
        }
        if self.chunked {
            self.state = State::ChunkSize { any: false };
            self.number = None;
            return Ok(());
        }
        match self.content_length {
            Some(0) => self.end_message(),
            Some(n) => self.state = State::Body(n),
            None => self.state = State::UntilClose,
        }
        Ok(())
    }
}

fn expect(ok: bool, next: State, err: FrameError, f: &mut Framer) -> Result<(), FrameError> {
    if !ok {
        return Err(err);
    }
    f.state = next;
    Ok(())
}

/// RFC 9110 `tchar`, as a table: this runs for every header-name byte.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

mod chunked;
#[cfg(test)]
mod tests;
mod whole;
