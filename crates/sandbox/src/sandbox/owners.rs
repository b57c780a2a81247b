//! Who owns each plugin directory of an output folder: the file that made
//! `<output_dir>/plugins/<dir>/`, by canonical path and sha256, recorded in
//! `<output_dir>/plugins/.owners.json`. No plugin can reach that file: a
//! plugin sees only its own directory below `plugins/` (never `plugins/`
//! itself), and no plugin name starts with `.`.
//!
//! A directory that exists belongs to its recorded file: the same path
//! (rebuilt or not) keeps it, and another file is refused, so that no
//! plugin inherits data another plugin wrote. A directory with no record
//! was not made by this trainbox (the user seeded it by hand, or an older
//! trainbox kept no record): the plugin loaded under that name takes it over
//! with a warning. A directory that was deleted is free again.

use super::grants::DirGrant;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record file, inside `<output_dir>/plugins/`.
pub const OWNERS_FILE: &str = ".owners.json";

/// The lock held while the record is changed, beside it.
const LOCK_FILE: &str = ".owners.lock";

/// The file a plugin directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The canonical path of the plugin file.
    pub path: PathBuf,
    /// The sha256 of its content when it last claimed the directory.
    pub sha256: String,
}

/// The owners recorded in `plugins_dir` (`<output_dir>/plugins`), by
/// directory name; empty when there is no record file.
pub fn read_owners(plugins_dir: &Path) -> Result<BTreeMap<String, Owner>> {
    let file = plugins_dir.join(OWNERS_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: not a plugin owner record ({e}); delete {} and its plugin folders, or use a new output_dir",
            file.display(),
            plugins_dir.display()
        )
    })
}

/// Claims `plugins_dir/dir` for the plugin file `path` (content hash
/// `sha256`): refused when the directory exists and belongs to another
/// file; recorded before the directory is made.
pub fn claim(plugins_dir: &Path, dir: &str, path: &Path, sha256: &str) -> Result<()> {
    let path = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?;
    std::fs::create_dir_all(plugins_dir)
        .with_context(|| format!("creating {}", plugins_dir.display()))?;
    // The ranks of a multi-process run claim their folders at once: one at
    // a time reads, changes and writes the record.
    let lock_file = plugins_dir.join(LOCK_FILE);
    let lock = std::fs::File::create(&lock_file)
        .with_context(|| format!("creating {}", lock_file.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_file.display()))?;
    let mut owners = read_owners(plugins_dir)?;
    let own_dir = plugins_dir.join(dir);
    if own_dir.exists() {
        match owners.get(dir) {
            Some(o) if o.path == path => {}
            Some(o) => bail!(
                "{}: this folder belongs to the plugin file {} (sha256 {}), and {} (sha256 {sha256}) now declares the same name; \
                 delete {} to give it to the new file, or use a new output_dir",
                own_dir.display(),
                o.path.display(),
                o.sha256,
                path.display(),
                own_dir.display()
            ),
            // Not made by this trainbox: the user's own (seeded by hand, or
            // left by a trainbox that kept no record). The plugin the user
            // loads under that name takes it, and it is recorded from now on.
            None => crate::ui::warn(&format!(
                "{}: this folder has no owner record; {} takes it over",
                own_dir.display(),
                path.display()
            )),
        }
    }
    let owner = Owner {
        path,
        sha256: sha256.to_string(),
    };
    if owners.get(dir) != Some(&owner) {
        owners.insert(dir.to_string(), owner);
        write_owners(plugins_dir, &owners)?;
    }
    Ok(())
}

/// Refuses a granted directory that would open the plugin folders to a
/// plugin beyond its own (canonical) `own_dir`: a writable one that holds
/// `plugins/` (and so the record and every plugin's folder), one above
/// `output_dir` (other runs' plugin folders), or one inside another
/// plugin's folder. A read-only grant of `output_dir` itself (or of
/// `plugins/`) is allowed, for a plugin that reads the run's checkpoints:
/// the filesystem view hides the other folders from it (`fs/hidden.rs`).
/// A directory that does not resolve is left to the preopen, which fails
/// on it.
pub fn check_grants<'a>(own_dir: &Path, dirs: impl Iterator<Item = &'a DirGrant>) -> Result<()> {
    let Some(plugins_dir) = own_dir.parent() else {
        return Ok(());
    };
    for grant in dirs {
        let dir = &grant.host;
        let Ok(host) = dir.canonicalize() else {
            continue;
        };
        if grant.writable && plugins_dir.starts_with(&host) {
            bail!(
                "{}: a writable granted directory may not hold the plugin folders {}; grant it read-only (read_dirs) or grant a folder outside it (write_dirs)",
                dir.display(),
                plugins_dir.display()
            );
        }
        // Only this run's plugin folders are hidden: a folder above
        // output_dir would show other runs' (and their owner records).
        let output_dir = plugins_dir.parent().unwrap_or(plugins_dir);
        if output_dir.starts_with(&host) && host != output_dir {
            bail!(
                "{}: a granted directory may not hold the output_dir {}; grant the output_dir itself (read-only) or a folder outside it",
                dir.display(),
                output_dir.display()
            );
        }
        if host.starts_with(plugins_dir) && host != plugins_dir && !host.starts_with(own_dir) {
            bail!(
                "{}: a granted directory may not be inside another plugin's folder in {}; grant a folder outside it (in the plugin's read_dirs or write_dirs)",
                dir.display(),
                plugins_dir.display()
            );
        }
    }
    Ok(())
}

/// Writes the record whole or not at all (a temporary file, then a rename).
fn write_owners(plugins_dir: &Path, owners: &BTreeMap<String, Owner>) -> Result<()> {
    let file = plugins_dir.join(OWNERS_FILE);
    let tmp = plugins_dir.join(format!("{OWNERS_FILE}.tmp"));
    let text = serde_json::to_string_pretty(owners).context("encoding the owner record")?;
    crate::atomic_file::write_replacing(&file, &tmp, |tmp| {
        std::fs::write(tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("trainbox-owners-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_same_file_keeps_its_folder_and_another_is_refused() {
        let root = scratch("claim");
        let (a, b) = (root.join("a.wasm"), root.join("b.wasm"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let plugins = root.join("out/plugins");
        claim(&plugins, "rec", &a, "11").unwrap();
        std::fs::create_dir_all(plugins.join("rec")).unwrap();
        claim(&plugins, "rec", &a, "22").expect("a rebuild at the same path keeps it");
        assert_eq!(read_owners(&plugins).unwrap()["rec"].sha256, "22");
        let err = claim(&plugins, "rec", &b, "33").unwrap_err().to_string();
        assert!(
            err.contains("belongs to the plugin file") && err.contains("a.wasm"),
            "{err}"
        );
        assert!(
            err.contains("b.wasm") && err.contains("new output_dir"),
            "{err}"
        );
        std::fs::remove_dir_all(plugins.join("rec")).unwrap();
        claim(&plugins, "rec", &b, "33").expect("a deleted folder is free again");
        std::fs::create_dir_all(plugins.join("other")).unwrap();
        claim(&plugins, "other", &a, "11").expect("a folder made by hand is taken over");
        let err = claim(&plugins, "other", &b, "33").unwrap_err().to_string();
        assert!(
            err.contains("belongs to the plugin file"),
            "and then owned: {err}"
        );
        std::fs::write(plugins.join(OWNERS_FILE), "{").unwrap();
        let err = read_owners(&plugins).unwrap_err().to_string();
        assert!(err.contains("not a plugin owner record"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn no_grant_opens_the_plugin_folders() {
        let root = scratch("grants").canonicalize().unwrap();
        let own = root.join("out/plugins/me");
        let other = root.join("out/plugins/other/sub");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let grant = |host: PathBuf, writable: bool| DirGrant {
            host,
            guest: "/g".into(),
            writable,
        };
        for bad in [
            grant(root.clone(), false),
            grant(root.join("out"), true),
            grant(root.join("out/plugins"), true),
            grant(other.clone(), true),
            grant(other, false),
        ] {
            let err = check_grants(&own, [&bad].into_iter()).unwrap_err();
            assert!(err.to_string().contains("may not"), "{err}");
        }
        let data = root.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(own.join("sub")).unwrap();
        let fine = [
            grant(data, true),
            grant(own.join("sub"), true),
            grant(root.join("out"), false),
            grant(root.join("out/plugins"), false),
        ];
        check_grants(&own, fine.iter()).unwrap();
        let _ = std::fs::remove_dir_all(&root);
    }
}
