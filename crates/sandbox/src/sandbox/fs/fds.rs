//! Open files: each plugin may hold at most `max_open_files` (its files,
//! directories and file streams, each an operating-system descriptor), and
//! all plugins together at most half of the process's open-file limit
//! (`RLIMIT_NOFILE`), so the other half stays with the host: its
//! checkpoints, libtorch, the compile cache, HTTP connections.
//!
//! At startup the host raises its soft limit to the hard one (as many tools
//! do), then the shared budget is computed once from the result: at the
//! common `ulimit -n 1024` (soft and hard) plugins share 512 and the host
//! keeps 512; at a soft 1024 under a hard 524288 (systemd's default) they
//! share 262144.

use super::Exceeded;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Descriptors all plugin stores hold together.
static IN_USE: AtomicUsize = AtomicUsize::new(0);
/// The plugin instances of the run, which share the budget evenly.
static INSTANCES: AtomicUsize = AtomicUsize::new(1);
/// The process's soft open-file limit when the budget was first needed.
static NOFILE: OnceLock<u64> = OnceLock::new();

/// The highest soft limit the host asks for (the Linux default of
/// `fs.nr_open`); a larger descriptor table helps nobody.
const MAX_SOFT_LIMIT: u64 = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` toward the hard limit; returns the soft
/// limit in force afterwards (`None` where it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    let (soft, hard) = nofile()?;
    let target = hard.min(MAX_SOFT_LIMIT);
    if soft < target && !set_soft(target, hard) {
        // macOS refuses more than OPEN_MAX (10240) whatever the hard limit.
        set_soft(target.min(10240), hard);
    }
    nofile().map(|(soft, _)| soft)
}

/// The soft open-file limit the shared budget is computed from.
pub fn open_file_limit() -> u64 {
    *NOFILE.get_or_init(|| nofile().map_or(1024, |(soft, _)| soft))
}

/// Says how many plugin instances the run has: each may then hold at most
/// an even share of [`shared_budget`], so that none can starve another
/// (call before the stores are made).
pub fn share_among(instances: usize) {
    INSTANCES.store(instances.max(1), Ordering::Relaxed);
}

/// Descriptors all plugins together may hold: half of [`open_file_limit`].
pub fn shared_budget() -> usize {
    budget_for(open_file_limit())
}

fn budget_for(nofile: u64) -> usize {
    (nofile.min(MAX_SOFT_LIMIT) / 2) as usize
}

/// Descriptors held by all plugins now.
#[cfg(test)]
pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

// `rlim_t` is not `u64` on every platform.
#[allow(clippy::unnecessary_cast)]
fn nofile() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    Some((lim.rlim_cur as u64, lim.rlim_max as u64))
}

fn set_soft(soft: u64, hard: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct it is given.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

/// What identifies an open file (wasmtime's `metadata-hash`, of its device
/// and inode), to know whether a file being unlinked is still held open.
pub type FileId = (u64, u64);

/// The descriptors one plugin store holds, counted against its cap and the
/// shared budget; what it still holds is given back when it is dropped
/// (with the store, or by the last stream that shares it).
pub struct OpenFiles {
    cap: usize,
    budget: usize,
    /// When `cap` is its share of the budget: among how many instances.
    share_of: Option<usize>,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    open: usize,
    ids: HashMap<FileId, usize>,
}

impl OpenFiles {
    /// At most `cap` open at once, and no more than its share of the
    /// shared budget (see [`share_among`]).
    pub fn new(cap: usize) -> OpenFiles {
        let budget = shared_budget();
        let instances = INSTANCES.load(Ordering::Relaxed);
        let share = budget / instances;
        let mut files = OpenFiles::with_budget(cap.min(share), budget);
        files.share_of = (share < cap).then_some(instances);
        files
    }

    /// At most `cap` open at once, and all stores with this `budget`.
    pub fn with_budget(cap: usize, budget: usize) -> OpenFiles {
        OpenFiles {
            cap,
            budget,
            share_of: None,
            held: Mutex::new(Held::default()),
        }
    }

    /// Takes one descriptor, or refuses past the plugin's cap or the
    /// shared budget.
    pub fn acquire(&self) -> Result<(), Exceeded> {
        let mut held = self.held.lock().unwrap();
        if held.open >= self.cap {
            return Err(match self.share_of {
                Some(plugins) => Exceeded::OpenFileShare {
                    limit: self.cap,
                    plugins,
                    nofile: open_file_limit(),
                },
                None => Exceeded::OpenFiles { limit: self.cap },
            });
        }
        let before = IN_USE.fetch_add(1, Ordering::Relaxed);
        if before >= self.budget {
            IN_USE.fetch_sub(1, Ordering::Relaxed);
            return Err(Exceeded::SharedOpenFiles {
                held: before,
                nofile: open_file_limit(),
            });
        }
        held.open += 1;
        Ok(())
    }

    /// Records that a descriptor taken with [`acquire`](Self::acquire) is on
    /// the file `id`.
    pub fn on_file(&self, id: FileId) {
        *self.held.lock().unwrap().ids.entry(id).or_default() += 1;
    }

    /// Gives back one descriptor (on the file `id`, if it was one).
    pub fn release(&self, id: Option<FileId>) {
        let mut held = self.held.lock().unwrap();
        if held.open == 0 {
            return;
        }
        held.open -= 1;
        IN_USE.fetch_sub(1, Ordering::Relaxed);
        if let Some(id) = id {
            if let Some(n) = held.ids.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    held.ids.remove(&id);
                }
            }
        }
    }

    /// Whether the plugin holds the file `id` open.
    pub fn holds(&self, id: FileId) -> bool {
        self.held.lock().unwrap().ids.contains_key(&id)
    }

    /// How many it holds now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.held.lock().unwrap().open
    }
}

impl Drop for OpenFiles {
    fn drop(&mut self) {
        let open = self.held.get_mut().map_or(0, |h| h.open);
        IN_USE.fetch_sub(open, Ordering::Relaxed);
    }
}

/// Unit tests that take descriptor slots share [`IN_USE`]: they run one at
/// a time (here, in `streams.rs` and in `http_policy.rs`).
#[cfg(test)]
pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_half_the_limit() {
        assert_eq!(budget_for(1024), 512);
        assert_eq!(budget_for(256), 128);
        assert_eq!(budget_for(u64::MAX), 1 << 19);
    }

    #[test]
    fn a_plugin_stops_at_its_cap_and_gives_back_on_drop() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let base = in_use();
        let files = OpenFiles::with_budget(3, usize::MAX);
        for _ in 0..3 {
            files.acquire().unwrap();
        }
        assert_eq!(
            files.acquire().unwrap_err(),
            Exceeded::OpenFiles { limit: 3 }
        );
        files.release(None);
        files.acquire().unwrap();
        assert_eq!(in_use(), base + 3);
        drop(files);
        assert_eq!(in_use(), base);
    }

    #[test]
    fn all_plugins_together_stop_at_the_shared_budget() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let base = in_use();
        let budget = base + 4;
        let a = OpenFiles::with_budget(100, budget);
        let b = OpenFiles::with_budget(100, budget);
        for _ in 0..3 {
            a.acquire().unwrap();
        }
        b.acquire().unwrap();
        assert!(matches!(
            b.acquire(),
            Err(Exceeded::SharedOpenFiles { held, .. }) if held == budget
        ));
        assert_eq!(b.open(), 1, "a refused descriptor is not counted");
        drop(a);
        b.acquire().unwrap();
        drop(b);
        assert_eq!(in_use(), base);
    }

    #[test]
    fn held_files_are_known_until_their_last_descriptor_closes() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let files = OpenFiles::with_budget(10, usize::MAX);
        for _ in 0..2 {
            files.acquire().unwrap();
            files.on_file((1, 7));
        }
        files.release(Some((1, 7)));
        assert!(files.holds((1, 7)));
        files.release(Some((1, 7)));
        assert!(!files.holds((1, 7)));
        // A release with nothing held never underflows.
        files.release(None);
        assert_eq!(files.open(), 0);
    }
}
