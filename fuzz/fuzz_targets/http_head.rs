#![no_main]
// The checks live in src/http.rs; a crash input replays with `cargo fuzz run http_head <file>`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coreloop_fuzz::http_head(data);
});
