//! The reactor's length-prefixed frame codec.

use coreloop_reactor::frame::{FrameCodec, FrameError, HEADER_LEN};

/// The first byte picks the maximum payload (0..=255 bytes, or unlimited for 255); the rest is
/// a stream of frames. Every decoded frame re-encodes to exactly the bytes it came from, a
/// refusal names the length in the header, and an incomplete frame really is incomplete. Then
/// the input itself round-trips through `encode` and `decode`.
pub fn frame_codec(data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let max = if first == 255 {
        usize::MAX >> 1
    } else {
        usize::from(first)
    };
    let codec = FrameCodec::new(max);
    let mut at = 0;
    loop {
        let rest = &stream[at..];
        match codec.decode(rest) {
            Ok(Some((payload, frame_len))) => {
                assert!(payload.len() <= max && frame_len == HEADER_LEN + payload.len());
                let mut again = Vec::new();
                codec
                    .encode(payload, &mut again)
                    .expect("a decoded payload re-encodes");
                assert_eq!(again, &rest[..frame_len], "re-encoding differs");
                at += frame_len;
            }
            Ok(None) => {
                let announced = rest
                    .first_chunk::<HEADER_LEN>()
                    .map(|h| u32::from_be_bytes(*h) as usize);
                assert!(announced.is_none_or(|len| rest.len() < HEADER_LEN + len));
                break;
            }
            Err(FrameError::TooLarge { len, max: said }) => {
                let header = rest
                    .first_chunk::<HEADER_LEN>()
                    .expect("a refusal has a header");
                assert_eq!((len, said), (u64::from(u32::from_be_bytes(*header)), max));
                assert!(len as usize > max);
                break;
            }
        }
    }
    let mut framed = Vec::new();
    match codec.encode(stream, &mut framed) {
        Ok(()) => assert_eq!(codec.decode(&framed), Ok(Some((stream, framed.len())))),
        Err(_) => assert!(stream.len() > max),
    }
}
