//! Folders made for the plugins of a run that then failed to start, removed
//! again, so that a run that does not start leaves no empty folders behind
//! (`./wandb`, `output_dir/plugins/wandb`, ...). Only folders that did not
//! exist before are removed, and only while they hold no file; a symlink
//! counts as a file.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

thread_local! {
    /// Folders made since the last [`forget`], and folders watched for new
    /// entries, by the thread that starts the plugins.
    static MADE: RefCell<Made> = const { RefCell::new(Made { dirs: Vec::new(), watched: Vec::new() }) };
}

struct Made {
    dirs: Vec<PathBuf>,
    watched: Vec<(PathBuf, HashSet<OsString>)>,
}

fn with<T>(f: impl FnOnce(&mut Made) -> T) -> T {
    MADE.with(|m| f(&mut m.borrow_mut()))
}

/// Notes the topmost folder of `path` that does not exist yet; call it
/// before creating `path`.
pub fn note(path: &Path) {
    let mut top = None;
    let mut at = Some(path);
    while let Some(dir) = at {
        if dir.as_os_str().is_empty() || dir.symlink_metadata().is_ok() {
            break;
        }
        top = Some(dir.to_path_buf());
        at = dir.parent();
    }
    if let Some(top) = top {
        with(|m| m.dirs.push(top));
    }
}

/// Watches `dir`: an entry that appears in it from now on counts as made
/// (`output_dir/plugins`, where each plugin's own folder is made).
pub fn watch(dir: &Path) {
    note(dir);
    let names = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    with(|m| m.watched.push((dir.to_path_buf(), names)));
}

/// Forgets what was noted: the plugins started.
pub fn forget() {
    with(|m| {
        m.dirs.clear();
        m.watched.clear();
    });
}

/// Removes the folders made since [`forget`] that hold no file, and
/// forgets them. Returns the folders removed.
pub fn remove_empty() -> Vec<PathBuf> {
    let (mut dirs, watched) =
        with(|m| (std::mem::take(&mut m.dirs), std::mem::take(&mut m.watched)));
    for (dir, before) in watched {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            dirs.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| !before.contains(&e.file_name()))
                    .map(|e| e.path()),
            );
        }
    }
    // Deepest first, so a parent is tried once its children are gone.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.into_iter().filter(|d| remove_if_empty(d)).collect()
}

/// Removes `dir` and the folders in it when none holds a file.
fn remove_if_empty(dir: &Path) -> bool {
    let Ok(meta) = dir.symlink_metadata() else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for entry in entries.filter_map(|e| e.ok()) {
        empty &= remove_if_empty(&entry.path());
    }
    empty && std::fs::remove_dir(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_made_since_and_holding_no_file_are_removed() {
        let root = std::env::temp_dir().join(format!("trainbox-fresh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let kept = root.join("kept");
        std::fs::create_dir_all(&kept).unwrap();
        let plugins = root.join("plugins");
        std::fs::create_dir_all(plugins.join("older")).unwrap();
        forget();
        watch(&plugins);
        let empty = root.join("made/a/b");
        note(&empty);
        std::fs::create_dir_all(&empty).unwrap();
        let full = root.join("full");
        note(&full);
        std::fs::create_dir_all(full.join("sub")).unwrap();
        std::fs::write(full.join("sub/file"), b"x").unwrap();
        note(&kept);
        std::fs::create_dir_all(plugins.join("new/inner")).unwrap();
        let removed = remove_empty();
        assert!(!root.join("made").exists(), "{removed:?}");
        assert!(!plugins.join("new").exists(), "{removed:?}");
        assert!(full.join("sub/file").exists(), "a folder with a file stays");
        assert!(kept.exists(), "a folder that existed before stays");
        assert!(plugins.join("older").exists(), "an entry from before stays");
        assert!(remove_empty().is_empty(), "forgotten once removed");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
