//! Where the built-in plugins (`progress.wasm`, `printer.wasm`, the
//! `report_to` integrations) are, found at run time by both hosts, never
//! baked in at build time: `$TRAINBOX_PLUGIN_DIR` when set, else
//! `share/trainbox/plugins` beside the program's folder (`PREFIX/bin/trainbox`
//! with `PREFIX/share/trainbox/plugins/*.wasm`, as `make install` lays it
//! out; for Python, `PREFIX/bin/python` of a virtual environment), else the
//! user's data folder (`~/.local/share/trainbox/plugins`, where `make
//! install` puts them by default).

use std::path::PathBuf;

/// The variable that names the built-in plugin folder.
pub const PLUGIN_DIR_VAR: &str = "TRAINBOX_PLUGIN_DIR";

/// The built-in plugin folder: `$TRAINBOX_PLUGIN_DIR`, else the first folder
/// of [`plugin_dir_candidates`] that exists (the first, if none does).
pub fn builtin_plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(PLUGIN_DIR_VAR) {
        return PathBuf::from(dir);
    }
    let candidates = plugin_dir_candidates();
    candidates
        .iter()
        .find(|dir| dir.is_dir())
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("share/trainbox/plugins"))
}

/// The folders searched for the built-in plugins when `$TRAINBOX_PLUGIN_DIR`
/// is not set, in order: `PREFIX/share/trainbox/plugins` for the program
/// `PREFIX/bin/…`, then `$XDG_DATA_HOME/trainbox/plugins` when that is set,
/// then `~/.local/share/trainbox/plugins` (where `make install` puts them by
/// default, whatever `XDG_DATA_HOME` says).
pub fn plugin_dir_candidates() -> Vec<PathBuf> {
    let beside_binary = std::env::current_exe().ok().and_then(|exe| {
        let exe = exe.canonicalize().unwrap_or(exe);
        Some(exe.parent()?.parent()?.join("share/trainbox/plugins"))
    });
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let local_share = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"));
    let mut dirs: Vec<PathBuf> = beside_binary.into_iter().collect();
    for dir in data_home.into_iter().chain(local_share) {
        let dir = dir.join("trainbox/plugins");
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Where [`builtin_plugin_dir`] looked, for an error message: the variable,
/// or the folders searched.
pub fn searched() -> String {
    match std::env::var_os(PLUGIN_DIR_VAR) {
        Some(_) => format!("${PLUGIN_DIR_VAR}"),
        None => {
            let searched: Vec<String> = plugin_dir_candidates()
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            format!("searched {}", searched.join(", "))
        }
    }
}
