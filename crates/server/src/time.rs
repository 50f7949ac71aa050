//! UTC civil time from the Unix epoch (civil-from-days, H. Hinnant's algorithm): no time-zone
//! database and no extra crate for the two timestamp forms the access log writes.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A moment split into UTC calendar fields.
pub(crate) struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u32,
}

impl Civil {
    pub(crate) fn of(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            millis: since.subsec_millis(),
        }
    }

    /// `2023-11-14T22:13:20.123Z`.
    pub(crate) fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `14/Nov/2023:22:13:20 +0000`: nginx's `$time_local`, in UTC.
    pub(crate) fn common_log(&self) -> String {
        let month = MONTHS[usize::try_from(self.month - 1).unwrap_or(0).min(11)];
        format!(
            "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
            self.day, self.year, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(Civil::of(t).rfc3339(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Civil::of(t).common_log(), "14/Nov/2023:22:13:20 +0000");
        assert_eq!(Civil::of(UNIX_EPOCH).rfc3339(), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(Civil::of(leap).rfc3339(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Civil::of(leap).common_log(), "29/Feb/2000:00:00:00 +0000");
    }
}
