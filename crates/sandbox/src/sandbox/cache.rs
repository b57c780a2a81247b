//! The compile cache: components compiled once and stored by content hash
//! in a host-owned directory. Only files this cache wrote are ever
//! deserialized; `.cwasm` files found beside plugins are never loaded.
//!
//! The cache is bounded: after each store, the least recently used entries
//! are removed until the entries total at most [`DEFAULT_MAX_BYTES`] (the
//! entry just stored is always kept). A hit counts as a use: it sets the
//! entry's modification time, which is the "last used" the eviction sorts
//! by. `trainbox cache` shows and clears the directory
//! ([`cache_usage`](super::cache_usage),
//! [`clear_cache`](super::clear_cache)). Several processes may
//! share the directory: an entry removed under another process's feet only
//! costs that process a compile.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The default bound on the entries' total size: 1 GiB, room for some
/// twenty compiled Python plugins (the largest kind) or hundreds in Rust.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// A temporary file older than this was left by a process that died while
/// storing; the next store removes it.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Where compiled components are kept, and how much of them.
pub struct CompileCache {
    dir: Option<PathBuf>,
    max_bytes: u64,
}

/// The default cache directory: `$TRAINBOX_CACHE/compiled`, else
/// `~/.cache/trainbox/compiled`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TRAINBOX_CACHE") {
        return Some(PathBuf::from(dir).join("compiled"));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache/trainbox/compiled"))
}

impl CompileCache {
    /// A cache in `dir`, bounded by [`DEFAULT_MAX_BYTES`]; `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        CompileCache::with_limit(dir, DEFAULT_MAX_BYTES)
    }

    /// A cache in `dir` whose entries total at most `max_bytes` after a store.
    pub fn with_limit(dir: Option<PathBuf>, max_bytes: u64) -> Self {
        CompileCache { dir, max_bytes }
    }

    /// The cache file for `bytes` under this engine's configuration.
    fn entry(&self, engine: &Engine, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut h = Sha256::new();
        h.update(engine_hash.finish().to_le_bytes());
        h.update(bytes);
        let digest = h.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{hex}.cwasm")))
    }

    /// Compiles `bytes`, or loads the compiled form from the cache.
    /// Returns the component and whether it came from the cache.
    pub fn load(&self, engine: &Engine, bytes: &[u8], source: &Path) -> Result<(Component, bool)> {
        let entry = self.entry(engine, bytes);
        if let Some(path) = entry.as_ref().filter(|p| p.is_file()) {
            // SAFETY: the file was written by `store` below from
            // `Component::serialize` of this same engine configuration (its
            // compatibility hash is part of the name) in a directory the host owns.
            if let Ok(c) = unsafe { Component::deserialize_file(engine, path) } {
                // The use that keeps it off the eviction list; only costs order if lost.
                let _ = touch(path);
                return Ok((c, true));
            }
        }
        let component = Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{}: not a valid WebAssembly component", source.display()))?;
        if let Some(path) = entry {
            // A cache that cannot be written only costs speed.
            if store(&component, &path).is_ok() {
                let _ = evict(&path, self.max_bytes);
            }
        }
        Ok((component, false))
    }

    /// Compiles `bytes` into the cache without loading it (`trainbox
    /// plugins precompile`). Returns `false` when the cache already held it
    /// (the entry is then marked used, not compiled again). Without a cache
    /// directory there is nowhere to keep the result: an error.
    pub fn precompile(&self, engine: &Engine, bytes: &[u8], source: &Path) -> Result<bool> {
        let path = self
            .entry(engine, bytes)
            .context("the compile cache has no directory: set TRAINBOX_CACHE (or HOME)")?;
        if path.is_file() {
            let _ = touch(&path);
            return Ok(false);
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{}: not a valid WebAssembly component", source.display()))?;
        let dir = path.parent().context("cache path has a parent")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // Threads of one process may store at once: each its own temporary.
        static STORES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10_000;
        let tmp = path.with_extension(format!("tmp{}{n:04}", std::process::id()));
        crate::atomic_file::write_replacing(&path, &tmp, |tmp| Ok(std::fs::write(tmp, &compiled)?))
            .with_context(|| format!("writing {}", path.display()))?;
        let _ = evict(&path, self.max_bytes);
        Ok(true)
    }
}

/// What the cache directory holds: its entries and their total size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheUsage {
    pub entries: usize,
    pub bytes: u64,
}

/// The entries of the compile cache in `dir` (none if it does not exist).
pub fn cache_usage(dir: &Path) -> Result<CacheUsage> {
    let files = cache_files(dir)?;
    Ok(usage(files.iter().filter(|f| !f.temp)))
}

/// Removes every file the compile cache wrote in `dir` (entries and
/// temporary files; nothing else) and returns what the entries were.
pub fn clear_cache(dir: &Path) -> Result<CacheUsage> {
    let files = cache_files(dir)?;
    for f in &files {
        remove(&f.path).with_context(|| format!("removing {}", f.path.display()))?;
    }
    Ok(usage(files.iter().filter(|f| !f.temp)))
}

fn usage<'a>(files: impl Iterator<Item = &'a CacheFile>) -> CacheUsage {
    files.fold(CacheUsage::default(), |u, f| CacheUsage {
        entries: u.entries + 1,
        bytes: u.bytes + f.bytes,
    })
}

fn store(component: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has a parent")?;
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    crate::atomic_file::write_replacing(path, &tmp, |tmp| Ok(std::fs::write(tmp, bytes)?))
}

/// Marks an entry as used now.
fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::options()
        .append(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// After `kept` was stored: removes the least recently used other entries
/// until the entries total at most `max_bytes`, and stale temporary files.
fn evict(kept: &Path, max_bytes: u64) -> Result<()> {
    let dir = kept.parent().context("cache path has a parent")?;
    let mut files = cache_files(dir)?;
    let now = SystemTime::now();
    for f in files.iter().filter(|f| f.temp) {
        if now.duration_since(f.used).unwrap_or_default() > STALE_TEMP {
            remove(&f.path)?;
        }
    }
    files.retain(|f| !f.temp);
    let mut total: u64 = files.iter().map(|f| f.bytes).sum();
    files.sort_by_key(|f| f.used);
    for f in files.iter().filter(|f| f.path != kept) {
        if total <= max_bytes {
            break;
        }
        remove(&f.path)?;
        total -= f.bytes;
    }
    Ok(())
}

/// Removes a file; one that another process removed first is no error.
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A file this cache wrote: an entry (`<sha256>.cwasm`) or a temporary
/// file of a store (`<sha256>.tmp<pid>`).
struct CacheFile {
    path: PathBuf,
    bytes: u64,
    used: SystemTime,
    temp: bool,
}

/// The files of the cache in `dir`; other files are not the cache's and
/// are left out. A missing directory is an empty cache.
fn cache_files(dir: &Path) -> Result<Vec<CacheFile>> {
    let read = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.with_context(|| format!("reading {}", dir.display()))?,
    };
    let mut files = Vec::new();
    for item in read {
        let item = item.with_context(|| format!("reading {}", dir.display()))?;
        let name = item.file_name();
        let Some((stem, ext)) = name.to_str().and_then(|n| n.split_once('.')) else {
            continue;
        };
        let hashed = stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit());
        let temp = ext
            .strip_prefix("tmp")
            .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()));
        if !hashed || !(ext == "cwasm" || temp) {
            continue;
        }
        // Gone since the listing (another process evicted it): not ours to count.
        let Ok(meta) = item.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        files.push(CacheFile {
            path: item.path(),
            bytes: meta.len(),
            used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            temp,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble of an empty one.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    fn fresh(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("trainbox-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An entry named after `n`, of `bytes` bytes, last used `age` seconds ago.
    fn entry(dir: &Path, n: u8, ext: &str, bytes: usize, age: u64) -> PathBuf {
        let path = dir.join(format!("{}.{ext}", format!("{n:02x}").repeat(32)));
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
        path
    }

    #[test]
    fn eviction_removes_the_least_recently_used_until_under_the_bound() {
        let dir = fresh("evict");
        let oldest = entry(&dir, 1, "cwasm", 100, 300);
        let middle = entry(&dir, 2, "cwasm", 100, 200);
        let recent = entry(&dir, 3, "cwasm", 100, 100);
        let kept = entry(&dir, 4, "cwasm", 100, 400); // just stored, though its time is old
        let foreign = dir.join("notes.txt");
        std::fs::write(&foreign, vec![0u8; 1000]).unwrap();
        evict(&kept, 250).unwrap();
        assert!(!oldest.exists() && !middle.exists(), "two oldest evicted");
        assert!(recent.exists() && kept.exists());
        assert!(
            foreign.exists(),
            "files the cache did not write are left alone"
        );
        assert_eq!(
            cache_usage(&dir).unwrap(),
            CacheUsage {
                entries: 2,
                bytes: 200
            }
        );
        // Under the bound: nothing goes.
        evict(&kept, 250).unwrap();
        assert!(recent.exists());
        // The entry just stored stays even when it alone is over the bound.
        evict(&kept, 10).unwrap();
        assert!(kept.exists() && !recent.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn eviction_removes_stale_temporary_files_only() {
        let dir = fresh("temp");
        let kept = entry(&dir, 1, "cwasm", 10, 0);
        let stale = entry(&dir, 2, "tmp123", 10, 7200);
        let writing = entry(&dir, 3, "tmp456", 10, 1);
        evict(&kept, DEFAULT_MAX_BYTES).unwrap();
        assert!(!stale.exists() && writing.exists() && kept.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hit_marks_the_entry_used_and_a_store_evicts() {
        let dir = fresh("load");
        let engine = Engine::default();
        let cache = CompileCache::with_limit(Some(dir.clone()), 0);
        let old = entry(&dir, 9, "cwasm", 10, 1000);
        let (_, cached) = cache
            .load(&engine, EMPTY_COMPONENT, Path::new("x.wasm"))
            .unwrap();
        assert!(!cached);
        assert!(!old.exists(), "the store evicted the older entry");
        let stored = cache.entry(&engine, EMPTY_COMPONENT).unwrap();
        std::fs::File::options()
            .append(true)
            .open(&stored)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH)
            .unwrap();
        let (_, cached) = cache
            .load(&engine, EMPTY_COMPONENT, Path::new("x.wasm"))
            .unwrap();
        assert!(cached);
        let used = std::fs::metadata(&stored).unwrap().modified().unwrap();
        assert!(used > SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clearing_removes_entries_and_temporary_files() {
        let dir = fresh("clear");
        entry(&dir, 1, "cwasm", 30, 0);
        entry(&dir, 2, "cwasm", 12, 0);
        let temp = entry(&dir, 3, "tmp9", 5, 0);
        let foreign = dir.join("README");
        std::fs::write(&foreign, "mine").unwrap();
        let removed = clear_cache(&dir).unwrap();
        assert_eq!(
            removed,
            CacheUsage {
                entries: 2,
                bytes: 42
            }
        );
        assert!(!temp.exists() && foreign.exists());
        assert_eq!(cache_usage(&dir).unwrap(), CacheUsage::default());
        let missing = dir.join("missing");
        assert_eq!(cache_usage(&missing).unwrap(), CacheUsage::default());
        assert_eq!(clear_cache(&missing).unwrap(), CacheUsage::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
