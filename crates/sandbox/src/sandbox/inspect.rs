//! What both hosts say of plugin files alike: which files a folder holds,
//! in dispatch order, a compiled plugin's description (`trainbox plugins
//! inspect` and `trainbox._native.describe`), and the settings a plugin
//! starts with once narrowed to what it declared.

use super::{narrow_grants, CompiledPlugin, PluginSettings};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The `.wasm` files of a folder, sorted by file name: the order in which
/// their plugins receive events.
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugin folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

impl CompiledPlugin {
    /// What the plugin says of itself, and what its file is, one field a line.
    pub fn summary(&self) -> String {
        let events: Vec<&str> = self.info.events.iter().map(|e| e.hf_name()).collect();
        let caps: Vec<String> = self
            .info
            .capabilities
            .iter()
            .map(ToString::to_string)
            .collect();
        format!(
            "{}\n  name:         {}\n  version:      {}\n  api:          trainbox:callback@{}\n  events:       {}\n  stateful:     {}\n  capabilities: {}\n  size:         {} bytes\n  sha256:       {}\n  validates:    yes\n  compiled:     {}",
            self.path.display(),
            self.info.name,
            self.info.version,
            self.api.as_str(),
            events.join(", "),
            self.info.stateful,
            if caps.is_empty() { "none".to_string() } else { caps.join(", ") },
            self.size,
            self.sha256,
            if self.cached { "from the cache" } else { "now" }
        )
    }

    /// `settings` with only the grants this plugin declared in `describe`;
    /// a grant it did not ask for is left out, with a warning when `warn`.
    pub fn narrow(&self, mut settings: PluginSettings, warn: bool) -> PluginSettings {
        let (grants, unused) = narrow_grants(&self.info.capabilities, settings.grants);
        settings.grants = grants;
        if warn && !unused.is_empty() {
            crate::ui::warn(&format!(
                "{}: plugin {} does not ask for {}, so it is not granted (a grant applies only to what the plugin declares; `trainbox plugins inspect` lists it)",
                self.path.display(),
                self.info.name,
                unused.join(", ")
            ));
        }
        settings
    }
}
