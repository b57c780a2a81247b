//! The disk quota: what a plugin keeps in its own directory and in its
//! writable granted directories, in bytes (`disk_mb`, default 1 GiB) and in
//! entries (files, directories and links: `disk_files`, default 10,000).
//!
//! When a store is made (first start and every restart) its own directory
//! is measured whole, and each writable granted directory by its growth
//! since the plugin was loaded (what was there before is the user's). From
//! then on every change is counted as it happens, by file growth: a write
//! past the end of a file or a larger `set-size` adds what the file grows,
//! a truncation, a smaller `set-size` or an unlink gives it back, so
//! rewriting one state file every step costs nothing. Sizes are apparent
//! sizes (a sparse file counts whole). A file unlinked while the plugin
//! still holds it open keeps its bytes counted until the store is made
//! again: its space is only freed when the last descriptor closes.
//!
//! The defaults fit what a logger writes over a long run (the recorder's
//! trace of 100,000 steps is about 100 MB; a TensorBoard event file
//! less) with room to spare, and stop a runaway plugin long before it
//! fills a disk or a directory.

use super::free::FreeSpace;
use super::Exceeded;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes and entries on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
}

/// Measures everything under `dir` (not `dir` itself), without following
/// symbolic links: each entry counts one, a file its length, a link the
/// length of its target. Entries that cannot be read are skipped.
pub fn measure(dir: &Path) -> Usage {
    let mut usage = Usage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            usage.files += 1;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                usage.bytes = usage.bytes.saturating_add(meta.len());
            }
        }
    }
    usage
}

/// The writable granted directories of one plugin, measured when it was
/// loaded: their growth since counts against its quota.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    dirs: Vec<(PathBuf, Usage)>,
}

impl Baseline {
    /// Measures `dirs` as they are now.
    pub fn measure<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Baseline {
        Baseline {
            dirs: dirs
                .into_iter()
                .map(|d| (d.to_path_buf(), measure(d)))
                .collect(),
        }
    }

    /// What the directories grew by since they were measured.
    fn growth(&self) -> Usage {
        let mut grown = Usage::default();
        for (dir, then) in &self.dirs {
            let now = measure(dir);
            grown.bytes = grown
                .bytes
                .saturating_add(now.bytes.saturating_sub(then.bytes));
            grown.files = grown
                .files
                .saturating_add(now.files.saturating_sub(then.files));
        }
        grown
    }
}

/// One store's count against the quota, shared with its file streams.
pub struct Disk {
    limit: Usage,
    used: Mutex<Usage>,
    /// The free space its growth must leave to the host (none in tests).
    free: Option<FreeSpace>,
}

impl Disk {
    /// A count starting from what `own_dir` holds and what the granted
    /// directories grew by since `baseline`.
    pub fn measure(limit: Usage, own_dir: &Path, baseline: &Baseline) -> Disk {
        let own = measure(own_dir);
        let grown = baseline.growth();
        let mut disk = Disk::new(
            limit,
            Usage {
                bytes: own.bytes.saturating_add(grown.bytes),
                files: own.files.saturating_add(grown.files),
            },
        );
        disk.free = Some(FreeSpace::new(own_dir));
        disk
    }

    /// A count of `used` against `limit`, with no free-space check.
    pub fn new(limit: Usage, used: Usage) -> Disk {
        Disk {
            limit,
            used: Mutex::new(used),
            free: None,
        }
    }

    /// What is counted now.
    #[cfg(test)]
    pub fn used(&self) -> Usage {
        *self.used.lock().unwrap()
    }

    /// Counts `bytes` more, or refuses (counting nothing) past the quota.
    pub fn grow(&self, bytes: u64) -> Result<(), Exceeded> {
        if bytes == 0 {
            return Ok(());
        }
        let mut used = self.used.lock().unwrap();
        let total = used.bytes.saturating_add(bytes);
        if total > self.limit.bytes {
            return Err(Exceeded::DiskBytes {
                adding: bytes,
                used: used.bytes,
                limit: self.limit.bytes,
            });
        }
        if let Some(free) = &self.free {
            free.check(bytes)?;
        }
        used.bytes = total;
        Ok(())
    }

    /// Gives back `bytes`.
    pub fn shrink(&self, bytes: u64) {
        let mut used = self.used.lock().unwrap();
        used.bytes = used.bytes.saturating_sub(bytes);
    }

    /// Refuses, counting nothing, when one more entry would pass the quota.
    pub fn check_entry(&self) -> Result<(), Exceeded> {
        let used = self.used.lock().unwrap();
        if used.files >= self.limit.files {
            return Err(Exceeded::DiskFiles {
                limit: self.limit.files,
            });
        }
        Ok(())
    }

    /// Counts one entry more (after [`check_entry`](Self::check_entry)).
    pub fn add_entry(&self) {
        self.used.lock().unwrap().files += 1;
    }

    /// Gives back one entry.
    pub fn remove_entry(&self) {
        let mut used = self.used.lock().unwrap();
        used.files = used.files.saturating_sub(1);
    }
}

/// What writing `len` bytes at `offset` into a file of `size` bytes adds.
pub fn growth(size: u64, offset: u64, len: u64) -> u64 {
    offset.saturating_add(len).saturating_sub(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(bytes: u64, files: u64) -> Usage {
        Usage { bytes, files }
    }

    #[test]
    fn only_growth_past_the_end_counts() {
        assert_eq!(growth(100, 0, 100), 0, "a rewrite in place");
        assert_eq!(growth(100, 50, 100), 50);
        assert_eq!(
            growth(0, 1 << 40, 1),
            (1 << 40) + 1,
            "a sparse file counts whole"
        );
        assert_eq!(growth(10, u64::MAX, 10), u64::MAX - 10);
    }

    #[test]
    fn a_write_past_the_quota_is_refused_and_not_counted() {
        let disk = Disk::new(limit(100, 10), Usage::default());
        disk.grow(60).unwrap();
        let err = disk.grow(41).unwrap_err();
        assert_eq!(
            err,
            Exceeded::DiskBytes {
                adding: 41,
                used: 60,
                limit: 100
            }
        );
        assert_eq!(disk.used().bytes, 60);
        disk.grow(40).unwrap();
        disk.shrink(1000);
        assert_eq!(disk.used().bytes, 0, "never below zero");
    }

    #[test]
    fn rewriting_one_file_every_step_never_uses_up_the_quota() {
        // open with truncate gives the old size back; the write adds it again.
        let disk = Disk::new(limit(1000, 10), Usage::default());
        let mut size = 0;
        for _ in 0..10_000 {
            disk.shrink(size);
            disk.grow(growth(0, 0, 700)).unwrap();
            size = 700;
        }
        assert_eq!(disk.used().bytes, 700);
    }

    #[test]
    fn entries_stop_at_the_quota() {
        let disk = Disk::new(limit(100, 2), Usage::default());
        for _ in 0..2 {
            disk.check_entry().unwrap();
            disk.add_entry();
        }
        assert_eq!(
            disk.check_entry().unwrap_err(),
            Exceeded::DiskFiles { limit: 2 }
        );
        disk.remove_entry();
        disk.check_entry().unwrap();
    }

    #[test]
    fn a_store_starts_from_its_directory_and_the_growth_of_its_grants() {
        let root = std::env::temp_dir().join(format!("trainbox-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (own, outbox) = (root.join("own"), root.join("outbox"));
        std::fs::create_dir_all(own.join("sub")).unwrap();
        std::fs::create_dir_all(&outbox).unwrap();
        std::fs::write(own.join("a"), [0u8; 300]).unwrap();
        std::fs::write(own.join("sub").join("b"), [0u8; 20]).unwrap();
        std::fs::write(outbox.join("users-own"), [0u8; 5000]).unwrap();
        assert_eq!(
            measure(&own),
            Usage {
                bytes: 320,
                files: 3
            }
        );
        let baseline = Baseline::measure([outbox.as_path()]);
        std::fs::write(outbox.join("new"), [0u8; 7]).unwrap();
        let disk = Disk::measure(limit(1000, 10), &own, &baseline);
        assert_eq!(
            disk.used(),
            Usage {
                bytes: 327,
                files: 4
            }
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
