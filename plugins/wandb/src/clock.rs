//! Names and times of a run: the `YYYYMMDD_HHMMSS` stamp of the run folder
//! (UTC: the sandbox has no time zone), wandb's 8-character run ids, and Unix
//! time as seconds.

pub use trainbox_sdk::time::unix_now;
use trainbox_sdk::time::{random_u64, Utc};

/// `YYYYMMDD_HHMMSS` of a Unix time, in UTC.
pub fn stamp(unix_secs: i64) -> String {
    let t = Utc::from_unix(unix_secs);
    format!(
        "{:04}{:02}{:02}_{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A fresh run id like wandb's: 8 characters from `[a-z0-9]`.
pub fn random_id() -> String {
    let mut bits = random_u64();
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
