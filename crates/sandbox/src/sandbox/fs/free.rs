//! Room on the disk for the host's own saves: a plugin's growth is refused
//! (a fault) when it would leave less free space on the output folder's
//! filesystem than the host keeps for its next checkpoint
//! ([`reserve_for_host`]). The quota bounds each plugin; this bounds them
//! all together on a disk that is nearly full for any reason.
//!
//! Free space is asked of the filesystem (`statvfs`) again once a plugin
//! has grown its files by a fraction of the room left, or a second after
//! the last time, so that a run of small writes costs no system call.

use super::Exceeded;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the host keeps free when nothing better is known.
pub const DEFAULT_RESERVE: u64 = 64 << 20;

/// Bytes the host keeps free on disk for its saves.
static RESERVE: AtomicU64 = AtomicU64::new(DEFAULT_RESERVE);

/// Longest the free space measured is trusted.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// Keeps `bytes` free on disk for the host's saves (at least
/// [`DEFAULT_RESERVE`]): what its next checkpoint needs, with room to spare.
pub fn reserve_for_host(bytes: u64) {
    RESERVE.store(bytes.max(DEFAULT_RESERVE), Ordering::Relaxed);
}

/// Bytes an unprivileged process may still write on `dir`'s filesystem.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value for statvfs to fill in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `st` a valid struct.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// The free space on one plugin's filesystem, as last measured.
pub struct FreeSpace {
    dir: PathBuf,
    last: Mutex<Measured>,
}

struct Measured {
    free: u64,
    at: Option<Instant>,
    /// What the plugin grew its files by since.
    grown: u64,
}

impl FreeSpace {
    /// The free space of the filesystem that holds `dir`.
    pub fn new(dir: &Path) -> FreeSpace {
        FreeSpace {
            dir: dir.to_path_buf(),
            last: Mutex::new(Measured {
                free: 0,
                at: None,
                grown: 0,
            }),
        }
    }

    /// Refuses growing by `adding` bytes when it would leave less than the
    /// host's reserve free.
    pub fn check(&self, adding: u64) -> Result<(), Exceeded> {
        let reserve = RESERVE.load(Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let room = last.free.saturating_sub(reserve);
        let fresh = last.at.is_some_and(|t| t.elapsed() < RECHECK_AFTER);
        let grown = last.grown.saturating_add(adding);
        if !(fresh && grown <= room / 2) {
            let Some(free) = free_bytes(&self.dir) else {
                return Ok(()); // cannot tell: the quota still bounds it
            };
            *last = Measured {
                free,
                at: Some(Instant::now()),
                grown: 0,
            };
            if adding.saturating_add(reserve) > free {
                return Err(Exceeded::DiskFull { free, reserve });
            }
        }
        last.grown = last.grown.saturating_add(adding);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_that_would_eat_the_hosts_reserve_is_refused() {
        let dir = std::env::temp_dir();
        let free = free_bytes(&dir).expect("statvfs of the temp dir");
        let space = FreeSpace::new(&dir);
        assert!(space.check(1).is_ok());
        // More than is free is refused, whatever was measured before.
        assert_eq!(
            space
                .check(free.saturating_add(1 << 30))
                .map_err(|e| matches!(e, Exceeded::DiskFull { .. })),
            Err(true)
        );
    }
}
