//! The wall clock: seconds since the epoch as `time.time()` gives them, and
//! the `%b%d_%H-%M-%S` stamp HF names a run folder with (in UTC: a plugin
//! has no time zone).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (1 ms resolution in the sandbox).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// `strftime("%b%d_%H-%M-%S")` of a Unix time, in UTC: `Nov14_22-13-20`.
pub fn run_stamp(unix_seconds: u64) -> String {
    let (mut days, secs) = (unix_seconds / 86_400, unix_seconds % 86_400);
    let mut year = 1970;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let mut month = 0;
    loop {
        let len = match month {
            1 if is_leap(year) => 29,
            1 => 28,
            3 | 5 | 8 | 10 => 30,
            _ => 31,
        };
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    format!(
        "{}{:02}_{:02}-{:02}-{:02}",
        MONTHS[month],
        days + 1,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_match_strftime_in_utc() {
        assert_eq!(run_stamp(0), "Jan01_00-00-00");
        assert_eq!(run_stamp(1_700_000_000), "Nov14_22-13-20");
        // 2024-02-29 12:00:59 and 2000-12-31 23:59:59
        assert_eq!(run_stamp(1_709_208_059), "Feb29_12-00-59");
        assert_eq!(run_stamp(978_307_199), "Dec31_23-59-59");
    }
}
