#![no_main]
// The checks live in src/config.rs; a crash input replays with `cargo fuzz run config_toml <file>`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coreloop_fuzz::config_toml(data);
});
