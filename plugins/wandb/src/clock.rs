//! Names and times of a run: the `YYYYMMDD_HHMMSS` stamp of the run folder
//! (UTC: the sandbox has no time zone), wandb's 8-character run ids, and Unix
//! time as seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The civil UTC date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (month <= 2) as i64, month, day)
}

/// `YYYYMMDD_HHMMSS` of a Unix time, in UTC.
pub fn stamp(unix_secs: i64) -> String {
    let (y, m, d) = civil_from_days(unix_secs.div_euclid(86_400));
    let s = unix_secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}_{:02}{:02}{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A fresh run id like wandb's: 8 characters from `[a-z0-9]`.
pub fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the platform's random source (wasi:random).
    let mut bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| {
            let c = ALPHABET[(bits % 36) as usize] as char;
            bits /= 36;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_civil_time() {
        assert_eq!(stamp(0), "19700101_000000");
        // 2026-11-29 20:11:53 UTC, as `date -u -d @1795983113`.
        assert_eq!(stamp(1_795_983_113), "20261129_201153");
        // A leap day.
        assert_eq!(stamp(951_782_400 + 3661), "20000229_010101");
    }

    #[test]
    fn ids_are_8_lowercase_alphanumerics() {
        let id = random_id();
        assert_eq!(id.len(), 8);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(random_id(), random_id());
    }
}
