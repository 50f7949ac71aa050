//! Chunked transfer coding (RFC 9112 section 7.1): size lines with
//! extensions, data, and trailer fields, which are skipped.

use super::{FrameError, Framer, State};

impl Framer {
    pub(super) fn skip_chunk(&mut self, input: &[u8], left: u64) -> usize {
        let n = left.min(input.len() as u64);
        self.state = if n == left {
            State::ChunkDataCr
        } else {
            State::ChunkData(left - n)
        };
        n as usize
    }

    pub(super) fn chunk_size(&mut self, any: bool, b: u8) -> Result<(), FrameError> {
        if let Some(d) = (b as char).to_digit(16) {
            let n = self.number.unwrap_or(0);
            let n = n
                .checked_mul(16)
                .and_then(|n| n.checked_add(u64::from(d)))
                .ok_or(FrameError::ChunkSize)?;
            self.number = Some(n);
            self.state = State::ChunkSize { any: true };
            return Ok(());
        }
        if !any {
            return Err(FrameError::ChunkSize);
        }
        match b {
            b';' | b' ' | b'\t' | b'\r' => {
                self.state = State::ChunkExt;
                Ok(())
            }
            b'\n' => self.chunk_line_end(),
            _ => Err(FrameError::ChunkSize),
        }
    }

    pub(super) fn chunk_ext(&mut self, b: u8) -> Result<(), FrameError> {
        match b {
            b'\n' => self.chunk_line_end(),
            0..=8 | 0x0a..=0x0c | 0x0e..=0x1f | 0x7f => Err(FrameError::ChunkSize),
            _ => Ok(()),
        }
    }

    pub(super) fn chunk_line_end(&mut self) -> Result<(), FrameError> {
        let n = self.number.take().unwrap_or(0);
        // The head budget bounds each size line, not the sum over a long body.
        self.head_bytes = 0;
        self.state = if n == 0 {
            State::TrailerStart
        } else {
            State::ChunkData(n)
        };
        Ok(())
    }

    pub(super) fn chunk_data_end(&mut self, b: u8) -> Result<(), FrameError> {
        match b {
            b'\r' => self.state = State::ChunkDataLf,
            b'\n' => self.state = State::ChunkSize { any: false },
            _ => return Err(FrameError::ChunkSize),
        }
        Ok(())
    }

    pub(super) fn trailer_start(&mut self, b: u8) -> Result<(), FrameError> {
        match b {
            b'\r' => self.state = State::TrailerEndLf,
            b'\n' => self.end_message(),
            _ => self.state = State::TrailerLine,
        }
        Ok(())
    }
}
