//! Time and randomness as plugins see them: Unix time (the sandbox's clock
//! has 1 ms resolution), UTC calendar fields for file and run names (a
//! plugin has no time zone), and random bits from `wasi:random`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (`time.time()`).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The calendar fields of a moment, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// English month abbreviations, as `strftime("%b")` in the C locale.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Utc {
    /// The UTC calendar fields of a Unix time (Howard Hinnant's `civil_from_days`).
    pub fn from_unix(unix_secs: i64) -> Utc {
        let z = unix_secs.div_euclid(86_400) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let secs = unix_secs.rem_euclid(86_400) as u32;
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }

    /// Now, in UTC.
    pub fn now() -> Utc {
        Utc::from_unix(unix_now() as i64)
    }

    /// `strftime("%b")`: `Jan` … `Dec`.
    pub fn month_abbr(&self) -> &'static str {
        MONTHS[(self.month as usize).clamp(1, 12) - 1]
    }
}

/// 64 random bits (`RandomState` is seeded from `wasi:random`).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields_in_utc() {
        assert_eq!(
            Utc::from_unix(0),
            Utc {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        // 2026-11-29 19:02:52 UTC
        let t = Utc::from_unix(1_795_978_972);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2026, 11, 29, 19, 2, 52)
        );
        assert_eq!(t.month_abbr(), "Nov");
        // A leap day.
        let t = Utc::from_unix(951_782_400);
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
    }
}
