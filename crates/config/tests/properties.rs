//! Properties over whole documents: values written in the file come back
//! exactly, and no edit of a valid file makes the loader panic.

use std::time::Duration;

use coreloop_config::{format_duration, format_size, Config, Host};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const HOST: Host = Host {
    cpus: 2,
    fd_hard_limit: 1_000_000,
};

fn fixed(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0xC0DE_1009),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const WEB: &str = "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n\
                   [[listener.route]]\npath = \"/\"\njson = {}\n";

proptest! {
    #![proptest_config(fixed(128))]

    #[test]
    fn durations_in_a_file_round_trip(millis in 1u64..=10 * 24 * 3_600_000) {
        let d = Duration::from_millis(millis);
        let text = format!("[timeouts]\nidle = \"{}\"\n{WEB}", format_duration(d));
        let config = Config::from_toml_str_on(&text, "p.toml", HOST).map_err(|e| e.to_string());
        prop_assert_eq!(config.map(|c| c.timeouts.idle), Ok(d));
    }

    #[test]
    fn sizes_in_a_file_round_trip(bytes in 0u64..=1 << 40) {
        let text = format!("[limits]\nbody_bytes = \"{}\"\n{WEB}", format_size(bytes));
        let config = Config::from_toml_str_on(&text, "p.toml", HOST).map_err(|e| e.to_string());
        prop_assert_eq!(config.map(|c| c.limits.body_bytes), Ok(bytes));
    }

    /// Cut a piece out of the default file, or splice junk into it: the
    /// result is a config or located errors, never a panic.
    #[test]
    fn edits_never_panic(at in 0usize..4000, len in 0usize..40, junk in "[ -~\n]{0,8}") {
        let text = Config::default_toml();
        let start = floor_boundary(text, at.min(text.len()));
        let end = floor_boundary(text, (start + len).min(text.len()));
        let edited = format!("{}{}{}", &text[..start], junk, &text[end..]);
        if let Err(errors) = Config::from_toml_str_on(&edited, "p.toml", HOST) {
            let lines = edited.lines().count() as u32 + 1;
            prop_assert!(!errors.is_empty());
            for e in errors.errors() {
                prop_assert!(e.loc.line >= 1 && e.loc.line <= lines && e.loc.col >= 1, "{}", e);
            }
        }
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}
