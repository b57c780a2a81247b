//! The compile cache: components compiled once and stored by content hash
//! in a host-owned directory. Only files this cache wrote are ever
//! deserialized; `.cwasm` files found beside plugins are never loaded.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where compiled components are kept.
pub struct CompileCache {
    dir: Option<PathBuf>,
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
    /// A cache in `dir`; `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        CompileCache { dir }
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
                return Ok((c, true));
            }
        }
        let component = Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{}: not a valid WebAssembly component", source.display()))?;
        if let Some(path) = entry {
            // A cache that cannot be written only costs speed.
            let _ = store(&component, &path);
        }
        Ok((component, false))
    }
}

fn store(component: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has a parent")?;
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
