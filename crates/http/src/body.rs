//! Request body decoding: Content-Length and chunked (RFC 9112 §6.3, §7.1), incremental.
//!
//! The decoder takes whatever bytes are there, consumes what belongs to the body and reports
//! whether the body is complete; it never needs the whole body at once. Decoded data goes to a
//! sink, or nowhere when the handler does not read the body.

use crate::error::HttpError;
use crate::head::Framing;

/// Bytes of chunk extensions (or of one trailer line) tolerated before refusing: extensions are
/// ignored, but without a bound they are a free way to make us read forever.
const MAX_LINE_EXTRA: u32 = 4096;

/// Hex digits of one chunk size, leading zeros included: a u64 needs 16, and more (even of
/// zeros) would be an unbounded line of no meaning.
const MAX_SIZE_DIGITS: u32 = 16;

/// Where the chunked decoder is within the framing (RFC 9112 §7.1):
/// `chunk-size [ chunk-ext ] CRLF chunk-data CRLF` ... `0 [ chunk-ext ] CRLF *( field CRLF ) CRLF`,
/// with `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`, the name a
/// token and the value a token or quoted-string (RFC 9112 §7.1.1). Extensions are checked
/// against that grammar and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedState {
    /// Reading hex digits of a chunk size (at least one).
    Size,
    /// Whitespace after the size: only more of it or `;` may follow.
    SizeSpace,
    /// After `;`: whitespace, then the first byte of an extension name.
    ExtName,
    /// Inside an extension name.
    ExtNameRest,
    /// Whitespace after a name: `=`, `;` or more whitespace.
    ExtAfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    ExtValue,
    /// Inside a token value.
    ExtToken,
    /// Inside a quoted-string value.
    ExtQuoted,
    /// After a backslash in a quoted string.
    ExtQuotedPair,
    /// After a value: `;`, whitespace or the line end.
    ExtAfterValue,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Chunk data done; CR must follow.
    DataCr,
    /// LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    Trailer,
    /// Inside a trailer field's name (a token), before its colon.
    TrailerName,
    /// Inside a trailer field line's value, which is read and dropped.
    TrailerLine,
    /// CR of a trailer line seen.
    TrailerLf,
    /// CR of the final empty line seen.
    EndLf,
    /// The body is complete.
    Done,
}

/// The chunked decoder: a state plus the figures of the current chunk.
#[derive(Clone, Debug)]
pub struct Chunked {
    state: ChunkedState,
    size: u64,
    digits: u32,
    remaining: u64,
    extra: u32,
}

impl Default for Chunked {
    fn default() -> Self {
        Self {
            state: ChunkedState::Size,
            size: 0,
            digits: 0,
            remaining: 0,
            extra: 0,
        }
    }
}

impl Chunked {
    /// The current state.
    pub fn state(&self) -> ChunkedState {
        self.state
    }

    /// One framing byte (not chunk data): the next state, or why the framing is invalid.
    /// Signs, spaces, `0x` and sizes over 16 hex digits are all refused here.
    pub fn step(&mut self, byte: u8) -> Result<ChunkedState, HttpError> {
        use ChunkedState::*;
        self.state = match (self.state, byte) {
            (Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => self.size_digit(byte)?,
            (Size, b'\r') if self.digits > 0 => SizeLf,
            (Size, b';') if self.digits > 0 => self.extra_byte(ExtName)?,
            (Size, b' ' | b'\t') if self.digits > 0 => self.extra_byte(SizeSpace)?,
            (state, byte) if is_extension(state) => self.extension(state, byte)?,
            (SizeLf, b'\n') => self.start_data(),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (Trailer, b'\r') => EndLf,
            // Postmortem: trailers were dropped unparsed, so obs-fold, a missing colon or a
            // space before it passed here though the same line is refused in a head.
            (Trailer | TrailerName, _) if is_tchar(byte) => self.extra_byte(TrailerName)?,
            (TrailerName, b':') => self.extra_byte(TrailerLine)?,
            (TrailerLine, b'\n' | 0) => return Err(HttpError::InvalidChunk),
            (TrailerLine, b'\r') => TrailerLf,
            (TrailerLine, _) => self.extra_byte(TrailerLine)?,
            (TrailerLf, b'\n') => Trailer,
            (EndLf, b'\n') => Done,
            _ => return Err(HttpError::InvalidChunk),
        };
        Ok(self.state)
    }

    /// One byte of a chunk extension (RFC 9112 §7.1.1), BWS being `*( SP / HTAB )`.
    fn extension(&mut self, state: ChunkedState, byte: u8) -> Result<ChunkedState, HttpError> {
        use ChunkedState::*;
        let next = match (state, byte) {
            (ExtNameRest | ExtToken | ExtAfterValue, b'\r') => return Ok(SizeLf),
            (SizeSpace | ExtNameRest | ExtAfterName | ExtToken | ExtAfterValue, b';') => ExtName,
            (SizeSpace | ExtName | ExtAfterName | ExtValue | ExtAfterValue, b' ' | b'\t') => state,
            (ExtName | ExtNameRest, _) if is_tchar(byte) => ExtNameRest,
            (ExtNameRest, b' ' | b'\t') => ExtAfterName,
            (ExtNameRest | ExtAfterName, b'=') => ExtValue,
            (ExtValue | ExtToken, _) if is_tchar(byte) => ExtToken,
            (ExtToken, b' ' | b'\t') => ExtAfterValue,
            (ExtValue, b'"') => ExtQuoted,
            (ExtQuoted, b'"') => ExtAfterValue,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, _) if is_qdtext(byte) => ExtQuoted,
            (ExtQuotedPair, _) if is_qdtext(byte) || matches!(byte, b'"' | b'\\') => ExtQuoted,
            _ => return Err(HttpError::InvalidChunk),
        };
        self.extra_byte(next)
    }

    fn size_digit(&mut self, byte: u8) -> Result<ChunkedState, HttpError> {
        let value = (byte as char).to_digit(16).map_or(0, u64::from);
        self.digits += 1;
        // Leading zeros are allowed up to the digits a u64 has; past that, refused.
        if self.digits > MAX_SIZE_DIGITS {
            return Err(HttpError::InvalidChunk);
        }
        self.size = self.size * 16 + value;
        Ok(ChunkedState::Size)
    }

    fn extra_byte(&mut self, next: ChunkedState) -> Result<ChunkedState, HttpError> {
        self.extra += 1;
        if self.extra > MAX_LINE_EXTRA {
            return Err(HttpError::InvalidChunk);
        }
        Ok(next)
    }

    fn start_data(&mut self) -> ChunkedState {
        let size = std::mem::take(&mut self.size);
        self.digits = 0;
        self.extra = 0;
        self.remaining = size;
        match size {
            0 => ChunkedState::Trailer,
            _ => ChunkedState::Data,
        }
    }
}

use crate::line::is_tchar;

fn is_extension(state: ChunkedState) -> bool {
    use ChunkedState::*;
    matches!(
        state,
        SizeSpace
            | ExtName
            | ExtNameRest
            | ExtAfterName
            | ExtValue
            | ExtToken
            | ExtQuoted
            | ExtQuotedPair
            | ExtAfterValue
    )
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` (RFC 9110 §5.6.4); a
/// quoted-pair's second byte may also be `"` or `\\`.
fn is_qdtext(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// Decodes one request body.
#[derive(Clone, Debug)]
pub enum BodyDecoder {
    /// Content-Length: bytes still to come.
    Length(u64),
    /// Chunked.
    Chunked(Chunked),
}

/// What one call to [`BodyDecoder::decode`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes that belonged to the body.
    pub consumed: usize,
    /// The body is complete.
    pub done: bool,
}

impl BodyDecoder {
    /// A decoder for `framing`; `None` when there is no body.
    pub fn new(framing: Framing) -> Option<Self> {
        match framing {
            Framing::Empty => None,
            Framing::Length(length) => Some(Self::Length(length)),
            Framing::Chunked => Some(Self::Chunked(Chunked::default())),
        }
    }

    /// Consumes body bytes from `input`, appending data to `sink` (if any) while its length
    /// stays within `limit`; `BodyTooLarge` past it (counted whether or not data is kept).
    pub fn decode(
        &mut self,
        input: &[u8],
        sink: &mut Option<&mut Vec<u8>>,
        received: &mut u64,
        limit: u64,
    ) -> Result<Progress, HttpError> {
        match self {
            Self::Length(remaining) => {
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                keep(&input[..take], sink, received, limit)?;
                *remaining -= take as u64;
                Ok(Progress {
                    consumed: take,
                    done: *remaining == 0,
                })
            }
            Self::Chunked(chunked) => decode_chunked(chunked, input, sink, received, limit),
        }
    }
}

fn decode_chunked(
    chunked: &mut Chunked,
    input: &[u8],
    sink: &mut Option<&mut Vec<u8>>,
    received: &mut u64,
    limit: u64,
) -> Result<Progress, HttpError> {
    let mut at = 0;
    while at < input.len() && chunked.state != ChunkedState::Done {
        if chunked.state == ChunkedState::Data {
            let avail = input.len() - at;
            let take = usize::try_from(chunked.remaining).map_or(avail, |r| r.min(avail));
            keep(&input[at..at + take], sink, received, limit)?;
            at += take;
            chunked.remaining -= take as u64;
            if chunked.remaining == 0 {
                chunked.state = ChunkedState::DataCr;
            }
            continue;
        }
        chunked.step(input[at])?;
        at += 1;
        // A size announced past the limit is refused before any of its data arrives.
        if chunked.state == ChunkedState::Data && received.saturating_add(chunked.remaining) > limit
        {
            return Err(HttpError::BodyTooLarge);
        }
    }
    Ok(Progress {
        consumed: at,
        done: chunked.state == ChunkedState::Done,
    })
}

fn keep(
    data: &[u8],
    sink: &mut Option<&mut Vec<u8>>,
    received: &mut u64,
    limit: u64,
) -> Result<(), HttpError> {
    *received += data.len() as u64;
    if *received > limit {
        return Err(HttpError::BodyTooLarge);
    }
    if let Some(sink) = sink {
        sink.extend_from_slice(data);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` split at every boundary (the first part alone, then the rest) and checks
    /// every split gives `expected`.
    fn check(input: &[u8], expected: Result<&[u8], HttpError>) {
        for split in 0..=input.len() {
            let mut decoder = BodyDecoder::new(Framing::Chunked).unwrap();
            let (mut body, mut received, mut buffered) = (Vec::new(), 0, Vec::new());
            let mut outcome = Ok(false);
            for part in [&input[..split], &input[split..]] {
                buffered.extend_from_slice(part);
                outcome = decoder
                    .decode(&buffered, &mut Some(&mut body), &mut received, 64)
                    .map(|p| {
                        buffered.drain(..p.consumed);
                        p.done
                    });
                if outcome.is_err() {
                    break;
                }
            }
            match expected {
                Ok(want) => {
                    assert_eq!(outcome, Ok(true), "split {split}");
                    assert_eq!(body, want, "split {split}");
                }
                Err(want) => assert_eq!(outcome, Err(want), "split {split}"),
            }
        }
    }

    #[test]
    fn valid_chunked_bodies() {
        check(b"5\r\nhello\r\n0\r\n\r\n", Ok(b"hello"));
        check(
            b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            Ok(b"hello world"),
        );
        check(
            b"00005\r\nhello\r\n0;x\r\nTrailer: dropped\r\n\r\n",
            Ok(b"hello"),
        );
        check(b"A\r\n0123456789\r\n0\r\n\r\n", Ok(b"0123456789"));
    }

    #[test]
    fn invalid_chunk_framing_is_refused() {
        for bad in [
            &b"-5\r\nhello\r\n0\r\n\r\n"[..],
            b"+5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"1ffffffffffffffff\r\n",
            b"0\r\nTrailer\n\r\n",
            b"5;a\nb\r\nhello\r\n",
        ] {
            check(bad, Err(HttpError::InvalidChunk));
        }
    }

    /// RFC 9112 §7.1.1, every production: BWS around `;` and `=`, token names, token and
    /// quoted-string values with quoted-pairs, several extensions, on data and last chunks.
    #[test]
    fn chunk_extensions_of_the_grammar_are_accepted() {
        for ext in [
            ";a",
            ";a=b",
            ";a=b;c=d",
            ";a;b;c",
            " ;a",
            "\t;a",
            ";  a",
            ";a =b",
            ";a= b",
            ";a \t=\t b",
            ";a=\"\"",
            ";a=\"b c\"",
            ";a=\"b;c=d\"",
            ";a=\"q\\\"x\"",
            ";a=\"q\\\\\"",
            ";a=\"\u{e4}\"",
            ";a=b ;c",
            ";a=\"b\" ;c",
            ";a=\"b\";c",
            ";!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~",
        ] {
            let body = format!("2{ext}\r\nhi\r\n0{ext}\r\n\r\n");
            let bytes: Vec<u8> = body.chars().map(|c| c as u32 as u8).collect();
            check(&bytes, Ok(b"hi"));
        }
    }

    #[test]
    fn anything_else_in_a_chunk_size_line_is_refused() {
        for ext in [
            ";",
            "; ",
            ";;a",
            ";=b",
            ";a=",
            ";a= ",
            ";a=;b",
            ";a b",
            ";a=b c",
            ";a =",
            ";a \r",
            ";a=b \r",
            ";a=\"b",
            ";a=\"b\"c",
            ";a=\"b\" c",
            ";a=\"b\x01\"",
            ";a=\"b\\\x01\"",
            ";a=\"b\x7f\"",
            ";a@b",
            ";a=b@c",
            ";a(b)",
            ";a=b,c",
            ";a,b",
            ";\u{e4}",
            ";a=\u{e4}",
            ";a\x00",
            " ",
            " x",
            " ;",
            "x",
            ",a",
        ] {
            let body = format!("2{ext}\r\nhi\r\n0\r\n\r\n");
            let bytes: Vec<u8> = body.chars().map(|c| c as u32 as u8).collect();
            check(&bytes, Err(HttpError::InvalidChunk));
        }
    }

    #[test]
    fn size_digits_are_bounded_leading_zeros_included() {
        check(b"0000000000000002\r\nhi\r\n0\r\n\r\n", Ok(b"hi"));
        check(b"0000000000000000\r\n\r\n", Ok(b""));
        check(
            b"00000000000000002\r\nhi\r\n0\r\n\r\n",
            Err(HttpError::InvalidChunk),
        );
        let zeros = format!("{}2\r\nhi\r\n", "0".repeat(10_000));
        check(zeros.as_bytes(), Err(HttpError::InvalidChunk));
    }

    #[test]
    fn malformed_trailer_fields_are_refused_like_head_fields() {
        for bad in [
            &b"0\r\nX-T 1\r\n\r\n"[..],
            b"0\r\nX-T : 1\r\n\r\n",
            b"0\r\nX-T: 1\r\n folded\r\n\r\n",
            b"0\r\n: 1\r\n\r\n",
            b"0\r\nX\x01T: 1\r\n\r\n",
            b"0\r\nX-T: a\x00\r\n\r\n",
        ] {
            check(bad, Err(HttpError::InvalidChunk));
        }
    }

    #[test]
    fn sizes_past_the_limit_are_413_before_the_data() {
        check(b"41\r\n", Err(HttpError::BodyTooLarge));
        let mut decoder = BodyDecoder::new(Framing::Length(65)).unwrap();
        let result = decoder.decode(&[b'x'; 65], &mut None, &mut 0, 64);
        assert_eq!(result, Err(HttpError::BodyTooLarge));
    }

    #[test]
    fn length_bodies_take_only_their_bytes() {
        let mut decoder = BodyDecoder::new(Framing::Length(5)).unwrap();
        let mut body = Vec::new();
        let first = decoder.decode(b"hel", &mut Some(&mut body), &mut 0, 64);
        assert_eq!(
            first,
            Ok(Progress {
                consumed: 3,
                done: false
            })
        );
        let second = decoder.decode(b"loGET /", &mut Some(&mut body), &mut 3, 64);
        assert_eq!(
            second,
            Ok(Progress {
                consumed: 2,
                done: true
            })
        );
        assert_eq!(body, b"hello");
    }
}
