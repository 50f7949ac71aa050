//! The client's own CPU time, from /proc/self/stat (no unsafe getrusage call).

use serde::Serialize;

/// Linux reports utime and stime in USER_HZ, which is 100 on every
/// architecture's user ABI regardless of the kernel's internal HZ.
const USER_HZ: f64 = 100.0;

/// Process CPU time consumed so far, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuTime {
    pub user_s: f64,
    pub system_s: f64,
}

impl CpuTime {
    /// Reads this process's CPU time; `None` where /proc is not available.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse_stat(&stat)
    }

    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            system_s: (self.system_s - earlier.system_s).max(0.0),
        }
    }

    pub fn total_s(&self) -> f64 {
        self.user_s + self.system_s
    }
}

/// Fields 14 and 15 of `/proc/PID/stat`; the command name (field 2) may hold
/// spaces and parentheses, so counting starts after the last ')'.
fn parse_stat(stat: &str) -> Option<CpuTime> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some(CpuTime {
        user_s: utime / USER_HZ,
        system_s: stime / USER_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_odd_command_names() {
        let line = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        let t = parse_stat(line).unwrap();
        assert_eq!(
            t,
            CpuTime {
                user_s: 2.5,
                system_s: 0.75
            }
        );
    }

    #[test]
    fn reads_own_process() {
        assert!(CpuTime::now().is_some());
    }
}
