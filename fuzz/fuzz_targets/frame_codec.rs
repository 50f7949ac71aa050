#![no_main]
// The checks live in src/frame.rs; a crash input replays with `cargo fuzz run frame_codec <file>`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coreloop_fuzz::frame_codec(data);
});
