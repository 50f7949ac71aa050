//! Percent-decoding of request paths (RFC 3986 §2.1), into a reused buffer.

/// Decodes `raw` into `out` (cleared first); `false` on a malformed escape.
pub(crate) fn decode_into(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut at = 0;
    while at < raw.len() {
        match raw[at] {
            b'%' => {
                let Some(byte) = escape(raw, at) else {
                    return false;
                };
                out.push(byte);
                at += 3;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    true
}

/// Decodes one path segment for a file lookup: `None` when it is malformed or decodes to
/// something that would change the path's shape (`/`, NUL) — `%2F` never becomes a separator.
pub(crate) fn decode_segment(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    (decode_into(raw, &mut out) && !out.contains(&b'/') && !out.contains(&0)).then_some(out)
}

/// The offset in `raw` at which `decoded_len` decoded bytes have been produced.
pub(crate) fn raw_offset(raw: &[u8], decoded_len: usize) -> usize {
    let (mut at, mut produced) = (0, 0);
    while at < raw.len() && produced < decoded_len {
        at += if raw[at] == b'%' { 3 } else { 1 };
        produced += 1;
    }
    at.min(raw.len())
}

fn escape(raw: &[u8], at: usize) -> Option<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let high = hex(*raw.get(at + 1)?)?;
    let low = hex(*raw.get(at + 2)?)?;
    u8::try_from(high * 16 + low).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let mut out = Vec::new();
        assert!(decode_into(b"/a%20b%2Fc", &mut out));
        assert_eq!(out, b"/a b/c");
        assert!(!decode_into(b"/a%2", &mut out));
        assert!(!decode_into(b"/a%zz", &mut out));
        assert_eq!(decode_segment(b"%2e%2e"), Some(b"..".to_vec()));
        assert_eq!(decode_segment(b"a%2Fb"), None);
        assert_eq!(decode_segment(b"a%00"), None);
        assert_eq!(raw_offset(b"/st%61tic/x", 7), 9);
    }
}
