//! `wasi:filesystem/types` with limits: wasmtime-wasi's own implementation,
//! shadowed in the linker by a view that counts, before each call, the
//! descriptors a plugin holds (`fds.rs`) and what it keeps on disk
//! (`disk.rs`), and wraps the file streams it opens (`streams.rs`).
//! Going past a limit traps the call with [`Exceeded`]: a plugin fault,
//! reported with the plugin's name and the setting to raise, under the
//! plugin's `on_error` policy; never a failure of the host.
//!
//! Counted as open descriptors: every `open-at` until its descriptor is
//! dropped, every file stream until it is dropped (it keeps the file
//! open), and every directory listing (`read-directory`, which holds the
//! whole directory in host memory) until it is dropped. Not counted: the preopened directories, which the host opens
//! once per store (one, plus one per granted directory).

pub mod disk;
pub mod fds;
pub mod free;
pub mod hidden;
mod streams;
mod view;

use disk::{Baseline, Disk, Usage};
use fds::OpenFiles;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use view::add_to_linker;

/// The data of a store whose files are limited: its WASI filesystem view
/// and its [`FsGuard`] (the plugin host implements it; this module does not
/// know the host).
pub trait LimitedStore: Send + 'static {
    fn files(
        &mut self,
    ) -> (
        wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>,
        &mut FsGuard,
    );
}

/// A plugin went past one of its file limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// It holds as many descriptors as `max_open_files` allows.
    OpenFiles { limit: usize },
    /// It holds its even share of what the host lends the run's plugins.
    OpenFileShare {
        limit: usize,
        plugins: usize,
        nofile: u64,
    },
    /// All plugins together hold what the host lends them.
    SharedOpenFiles { held: usize, nofile: u64 },
    /// A write would take it past `disk_mb`.
    DiskBytes { adding: u64, used: u64, limit: u64 },
    /// One more entry would take it past `disk_files`.
    DiskFiles { limit: u64 },
    /// A write would leave less free space than the host keeps for its saves.
    DiskFull { free: u64, reserve: u64 },
}

impl Exceeded {
    /// The `[plugins.NAME]` setting that raises the limit, if one does.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            Exceeded::OpenFiles { .. } => Some("max_open_files"),
            Exceeded::SharedOpenFiles { .. }
            | Exceeded::OpenFileShare { .. }
            | Exceeded::DiskFull { .. } => None,
            Exceeded::DiskBytes { .. } => Some("disk_mb"),
            Exceeded::DiskFiles { .. } => Some("disk_files"),
        }
    }
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exceeded::OpenFiles { limit } => write!(
                f,
                "open-file limit exceeded: it already holds {limit} files and directories open"
            ),
            Exceeded::OpenFileShare {
                limit,
                plugins,
                nofile,
            } => write!(
                f,
                "open-file limit exceeded: it already holds {limit} files and directories open, its share of what the host lends the run's {plugins} plugins (half of the process's open-file limit of {nofile}; raise it with `ulimit -n`)"
            ),
            Exceeded::SharedOpenFiles { held, nofile } => write!(
                f,
                "open-file limit exceeded: the plugins together hold {held} files open, all the host lends them (half of the process's open-file limit of {nofile}; raise it with `ulimit -n`)"
            ),
            Exceeded::DiskBytes {
                adding,
                used,
                limit,
            } => write!(
                f,
                "disk quota exceeded: writing {adding} more bytes to the {used} it keeps (its directory and writable grants) would pass its quota of {limit} bytes"
            ),
            Exceeded::DiskFull { free, reserve } => write!(
                f,
                "the disk is nearly full: {free} bytes are free, and the host keeps {reserve} of them for its checkpoints"
            ),
            Exceeded::DiskFiles { limit } => write!(
                f,
                "disk quota exceeded: it already keeps {limit} files and directories (its directory and writable grants), its quota"
            ),
        }
    }
}

impl std::error::Error for Exceeded {}

/// One store's file limits: its open descriptors and its disk count.
pub struct FsGuard {
    files: Arc<OpenFiles>,
    disk: Arc<Disk>,
    /// The `open-at` descriptors and directory listings counted in `files`,
    /// by table index, with the file each is on (none for a directory).
    counted: HashMap<u32, Option<fds::FileId>>,
    /// The other plugins' folders, when a read-only grant holds them.
    hidden: Option<hidden::Hidden>,
}

impl FsGuard {
    /// Hides what `hidden` says (see `hidden.rs`), limits or not.
    pub fn hide(&mut self, hidden: Option<hidden::Hidden>) {
        self.hidden = hidden;
    }

    /// Its count of open descriptors, for what else holds one (a socket).
    pub fn open_files(&self) -> Arc<OpenFiles> {
        self.files.clone()
    }

    /// The limits of a store that holds `own_dir` and writable grants
    /// measured in `baseline`.
    pub fn new(
        max_open_files: usize,
        quota: Usage,
        own_dir: &Path,
        baseline: &Baseline,
    ) -> FsGuard {
        FsGuard {
            files: Arc::new(OpenFiles::new(max_open_files)),
            disk: Arc::new(Disk::measure(quota, own_dir, baseline)),
            counted: HashMap::new(),
            hidden: None,
        }
    }

    /// No limits, to measure what they cost (`Sandbox::without_limits`).
    pub fn unlimited() -> FsGuard {
        let all = Usage {
            bytes: u64::MAX,
            files: u64::MAX,
        };
        FsGuard {
            files: Arc::new(OpenFiles::with_budget(usize::MAX, usize::MAX)),
            disk: Arc::new(Disk::new(all, Usage::default())),
            counted: HashMap::new(),
            hidden: None,
        }
    }

    /// The limits of a store with no directory at all (where a plugin
    /// describes itself): nothing can be opened there.
    pub fn none() -> FsGuard {
        FsGuard {
            files: Arc::new(OpenFiles::new(0)),
            disk: Arc::new(Disk::new(Usage::default(), Usage::default())),
            counted: HashMap::new(),
            hidden: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::PluginFault;
    use std::time::Duration;

    #[test]
    fn a_limit_passed_is_a_fault_of_its_own_kind_naming_its_setting() {
        let deadline = Duration::from_millis(100);
        for (e, key) in [
            (Exceeded::OpenFiles { limit: 256 }, Some("max_open_files")),
            (
                Exceeded::SharedOpenFiles {
                    held: 512,
                    nofile: 1024,
                },
                None,
            ),
            (
                Exceeded::DiskBytes {
                    adding: 1,
                    used: 1 << 30,
                    limit: 1 << 30,
                },
                Some("disk_mb"),
            ),
            (Exceeded::DiskFiles { limit: 10_000 }, Some("disk_files")),
        ] {
            let err = wasmtime::Error::from(e);
            assert_eq!(PluginFault::classify(&err, deadline), PluginFault::Files(e));
            assert_eq!(e.key(), key);
        }
        let shared = Exceeded::SharedOpenFiles {
            held: 512,
            nofile: 1024,
        }
        .to_string();
        assert!(shared.contains("open-file limit of 1024"), "{shared}");
    }
}
