//! Durations (`250ms`, `10s`, `1m`, `1h`) and sizes (`512`, `8KiB`, `1MB`).
//!
//! Both are a whole number and a unit. Fractions are refused rather than
//! rounded: `1.5s` silently becoming `1s` would be a surprise, and a smaller
//! unit (`1500ms`) always says the same thing exactly.

use std::fmt;
use std::time::Duration;

/// Why a duration or size string was refused. The phrase is fixed; the caller
/// adds which forms are allowed (e.g. "a whole number with unit ms, s, m or h").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    /// Nothing but whitespace.
    Empty,
    /// Starts with `-`.
    Negative,
    /// No digits before the unit.
    NoNumber,
    /// A `.` in the number.
    Fraction,
    /// A number with no unit, where a unit is required.
    MissingUnit,
    /// A unit that is not in the allowed list.
    UnknownUnit(String),
    /// The value does not fit in 64 bits.
    Overflow,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitError::Empty => f.write_str("empty value"),
            UnitError::Negative => f.write_str("negative values are not allowed"),
            UnitError::NoNumber => f.write_str("no number before the unit"),
            UnitError::Fraction => f.write_str("fractions are not allowed; use a smaller unit"),
            UnitError::MissingUnit => f.write_str("a unit is required"),
            UnitError::UnknownUnit(unit) => write!(f, "unknown unit {unit:?}"),
            UnitError::Overflow => f.write_str("too large"),
        }
    }
}

/// The allowed duration forms, quoted in every duration error.
pub const DURATION_FORMS: &str =
    "a whole number with unit ms, s, m or h, e.g. \"250ms\", \"10s\", \"1m\", \"0s\"";

/// The allowed size forms, quoted in every size error.
pub const SIZE_FORMS: &str = "a whole number of bytes with optional unit B, KiB, MiB, GiB, TiB \
     (1024-based) or kB, MB, GB, TB (1000-based), e.g. 512, \"8KiB\", \"1MB\"";

const DURATION_UNITS: &[(&str, u64)] = &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// Parses `10s`, `250ms`, `1m`, `1h`, `0s`. Millisecond resolution.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let (number, unit) = split_number(text)?;
    if unit.is_empty() {
        return Err(UnitError::MissingUnit);
    }
    let millis = scale(number, unit, DURATION_UNITS)?;
    Ok(Duration::from_millis(millis))
}

/// Parses `512`, `8KiB`, `1MiB`, `1GiB`, `10kB`, `1MB`. A bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let (number, unit) = split_number(text)?;
    if unit.is_empty() {
        return Ok(number);
    }
    scale(number, unit, SIZE_UNITS)
}

/// Formats with the largest unit that divides the value exactly, so that
/// `parse_duration(&format_duration(d)) == d` at millisecond resolution.
pub fn format_duration(duration: Duration) -> String {
    let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        // "0s" reads better than "0ms" for the common "disabled" value.
        return "0s".to_string();
    }
    format_exact(
        millis,
        &[("h", 3_600_000), ("m", 60_000), ("s", 1_000)],
        "ms",
    )
}

/// Formats with the largest 1024-based unit that divides the value exactly.
pub fn format_size(bytes: u64) -> String {
    let units = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    format_exact(bytes, &units, "")
}

fn format_exact(value: u64, units: &[(&str, u64)], base_unit: &str) -> String {
    if value != 0 {
        for &(unit, factor) in units {
            if value % factor == 0 {
                return format!("{}{unit}", value / factor);
            }
        }
    }
    format!("{value}{base_unit}")
}

fn split_number(text: &str) -> Result<(u64, &str), UnitError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(UnitError::Empty);
    }
    if text.starts_with('-') {
        return Err(UnitError::Negative);
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_end);
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return Err(UnitError::NoNumber);
    }
    if rest.starts_with('.') {
        return Err(UnitError::Fraction);
    }
    let number = digits.parse::<u64>().map_err(|_| UnitError::Overflow)?;
    Ok((number, rest.trim_start()))
}

fn scale(number: u64, unit: &str, units: &[(&str, u64)]) -> Result<u64, UnitError> {
    let factor = units
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, factor)| factor)
        .ok_or_else(|| UnitError::UnknownUnit(unit.to_string()))?;
    number.checked_mul(factor).ok_or(UnitError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_duration(input: &str, expected: Result<u64, UnitError>) {
        let got = parse_duration(input).map(|d| d.as_millis() as u64);
        assert_eq!(got, expected, "parse_duration({input:?})");
    }

    fn check_size(input: &str, expected: Result<u64, UnitError>) {
        assert_eq!(parse_size(input), expected, "parse_size({input:?})");
    }

    #[test]
    fn durations() {
        check_duration("10s", Ok(10_000));
        check_duration("250ms", Ok(250));
        check_duration("1m", Ok(60_000));
        check_duration("1h", Ok(3_600_000));
        check_duration("0s", Ok(0));
        check_duration(" 5 s ", Ok(5_000));
        check_duration("1_000ms", Ok(1_000));
        check_duration("", Err(UnitError::Empty));
        check_duration("-1s", Err(UnitError::Negative));
        check_duration("s", Err(UnitError::NoNumber));
        check_duration("1.5s", Err(UnitError::Fraction));
        check_duration("10", Err(UnitError::MissingUnit));
        check_duration("10sec", Err(UnitError::UnknownUnit("sec".into())));
        check_duration("99999999999999999999s", Err(UnitError::Overflow));
        check_duration("18446744073709551615h", Err(UnitError::Overflow));
    }

    #[test]
    fn sizes() {
        check_size("512", Ok(512));
        check_size("8KiB", Ok(8192));
        check_size("1MiB", Ok(1 << 20));
        check_size("1GiB", Ok(1 << 30));
        check_size("10kB", Ok(10_000));
        check_size("1MB", Ok(1_000_000));
        check_size("0", Ok(0));
        check_size("64 KiB", Ok(65_536));
        check_size("-1", Err(UnitError::Negative));
        check_size("8kb", Err(UnitError::UnknownUnit("kb".into())));
        check_size("KiB", Err(UnitError::NoNumber));
        check_size("1.5MiB", Err(UnitError::Fraction));
        check_size("20000000TiB", Err(UnitError::Overflow));
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_size(8192), "8KiB");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(0), "0");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0xC0DE_1009),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn duration_round_trips(millis in 0u64..=u64::MAX / 4) {
            let d = Duration::from_millis(millis);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn size_round_trips(bytes in any::<u64>()) {
            prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }

        #[test]
        fn size_units_scale(n in 0u64..1_000_000, unit in 0usize..SIZE_UNITS.len()) {
            let (name, factor) = SIZE_UNITS[unit];
            prop_assert_eq!(parse_size(&format!("{n}{name}")), Ok(n * factor));
        }

        #[test]
        fn never_panics(text in ".{0,12}") {
            let _ = parse_duration(&text);
            let _ = parse_size(&text);
        }
    }
}
