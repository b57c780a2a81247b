//! The wall clock: seconds since the epoch as `time.time()` gives them, and
//! the `%b%d_%H-%M-%S` stamp HF names a run folder with (in UTC: a plugin
//! has no time zone).

use trainbox_sdk::time::{unix_now, Utc};

/// Seconds since the Unix epoch (1 ms resolution in the sandbox).
pub fn now() -> f64 {
    unix_now()
}

/// `strftime("%b%d_%H-%M-%S")` of a Unix time, in UTC: `Nov14_22-13-20`.
pub fn run_stamp(unix_seconds: u64) -> String {
    let t = Utc::from_unix(unix_seconds as i64);
    format!(
        "{}{:02}_{:02}-{:02}-{:02}",
        t.month_abbr(),
        t.day,
        t.hour,
        t.minute,
        t.second
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
