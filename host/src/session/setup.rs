//! What the user says of a run's plugins: the folders and files to load,
//! in order, and per plugin name its config, its host-side settings and
//! the file those settings are for. Plain data; `plugins` acts on it.

use crate::sandbox::PluginSettings;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where user plugins come from, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Every `.wasm` in a folder, sorted by file name.
    Dir(PathBuf),
    File(PathBuf),
}

/// The file a `[plugins.NAME]` table is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginPin {
    /// `path`: the plugin file (relative to the config file's folder).
    pub path: Option<PathBuf>,
    /// `sha256`: its content's hash, lowercase hex.
    pub sha256: Option<String>,
}

/// The user's plugins and how the host runs each, by plugin name.
///
/// By default: no plugin folders or files, no config, default
/// [`PluginSettings`] (limits, no grants) for every plugin, no pins.
#[derive(Debug, Clone, Default)]
pub struct PluginSetup {
    /// Folders and files, in dispatch order.
    pub sources: Vec<PluginSource>,
    /// `configure` pairs per plugin name (`--plugin_config NAME.KEY=VALUE`).
    pub config: BTreeMap<String, Vec<(String, String)>>,
    /// Host-side settings (limits, grants, `on_error`) per plugin name.
    pub settings: BTreeMap<String, PluginSettings>,
    /// The file each `[plugins.NAME]` table is for (`path`, `sha256`).
    pub pins: BTreeMap<String, PluginPin>,
}

impl PluginSetup {
    /// The settings plugin `name` starts with: its table's, with its
    /// `configure` pairs.
    pub fn settings_for(&self, name: &str) -> PluginSettings {
        let mut settings = self.settings.get(name).cloned().unwrap_or_default();
        settings.config = self.config.get(name).cloned().unwrap_or_default();
        settings
    }
}
