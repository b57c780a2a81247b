//! The row's identity: a random UUID (version 4) for `run_id`, and the
//! `timestamp` as `%Y-%m-%dT%H:%M:%S` in UTC (the sandbox has no time zone;
//! codecarbon writes local time).

use trainbox_sdk::time::{random_u64, unix_now, Utc};
use uuid::Builder;

/// `str(uuid.uuid4())`: the `uuid` crate's version 4 from 128 random bits
/// (the sandbox's randomness, through the SDK).
pub fn uuid4() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_le_bytes());
    Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// `%Y-%m-%dT%H:%M:%S` of a Unix time, in UTC.
pub fn timestamp(unix_secs: i64) -> String {
    let t = Utc::from_unix(unix_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// [`timestamp`] of now.
pub fn now() -> String {
    timestamp(unix_now() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_without_zone() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00");
        assert_eq!(timestamp(1_795_983_113), "2026-11-29T20:11:53");
        assert_eq!(timestamp(951_782_400 + 3661), "2000-02-29T01:01:01");
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!("89ab".contains(&parts[3][..1]));
        assert_ne!(uuid4(), uuid4());
    }
}
