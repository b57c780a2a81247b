//! The other plugins' folders, hidden from a read-only grant that holds
//! them. A plugin that may read its run's checkpoints is granted
//! `output_dir` read-only, and `output_dir/plugins/` lies inside it: the
//! record of owners and every other plugin's folder. WASI cannot preopen a
//! directory minus a subtree, so the filesystem view checks where each
//! descriptor it opens really is (the kernel's own answer,
//! `/proc/self/fd/N`) and refuses, as `access`, anything in `plugins/`
//! but the plugin's own folder; the path-taking metadata calls resolve
//! their path the same way. The names in `plugins/` stay listable in
//! `output_dir` itself; nothing below them can be opened, listed or
//! stat'ed. Writable grants that hold `plugins/` are refused before any
//! store is made (`owners::check_grants`), so nothing here has to stop
//! writes.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// What a store hides: `plugins_dir` except `own_dir`.
#[derive(Debug, Clone)]
pub struct Hidden {
    plugins_dir: PathBuf,
    own_dir: PathBuf,
}

impl Hidden {
    /// What to hide from a plugin whose (canonical) folder is `own_dir`
    /// and whose granted host folders are `granted`: nothing (`None`, the
    /// common case, which costs nothing per call) unless one of them holds
    /// the plugin folders.
    pub fn new<'a>(own_dir: &Path, granted: impl Iterator<Item = &'a Path>) -> Option<Hidden> {
        let plugins_dir = own_dir.parent()?;
        let exposes = granted
            .filter_map(|d| d.canonicalize().ok())
            .any(|d| plugins_dir.starts_with(d));
        exposes.then(|| Hidden {
            plugins_dir: plugins_dir.to_path_buf(),
            own_dir: own_dir.to_path_buf(),
        })
    }

    /// Whether the real path `real` is one a plugin may not reach.
    pub fn hides(&self, real: &Path) -> bool {
        real.starts_with(&self.plugins_dir) && !real.starts_with(&self.own_dir)
    }

    /// Whether the open file `file` is one a plugin may not reach; also
    /// when the kernel cannot say where it is (fail closed).
    pub fn hides_open(&self, file: &std::fs::File) -> bool {
        real_path(file).is_none_or(|p| self.hides(&p))
    }

    /// Whether `name`, an entry of the open directory `dir`, is one a
    /// plugin may not reach; `follow` resolves a final symbolic link first.
    pub fn hides_entry(&self, dir: &std::fs::File, name: &str, follow: bool) -> bool {
        let Some(dir) = real_path(dir) else {
            return true;
        };
        let entry = dir.join(name);
        if !follow {
            return self.hides(&entry);
        }
        match entry.canonicalize() {
            Ok(real) => self.hides(&real),
            // A link that does not resolve is hidden; a missing entry is
            // left to the call, which finds nothing.
            Err(_) => entry.symlink_metadata().is_ok() || self.hides(&entry),
        }
    }
}

/// Where the kernel says the open file `file` is.
fn real_path(file: &std::fs::File) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_other_plugins_folders_are_hidden() {
        let root = std::env::temp_dir().join(format!("trainbox-hidden-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let own = root.join("out/plugins/me");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::create_dir_all(root.join("out/plugins/other")).unwrap();
        std::fs::create_dir_all(root.join("out/checkpoint-1")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        let root = root.canonicalize().unwrap();
        let own = own.canonicalize().unwrap();
        assert!(Hidden::new(&own, [root.join("data").as_path()].into_iter()).is_none());
        let h = Hidden::new(&own, [root.join("out").as_path()].into_iter()).unwrap();
        assert!(h.hides(&root.join("out/plugins")));
        assert!(h.hides(&root.join("out/plugins/.owners.json")));
        assert!(h.hides(&root.join("out/plugins/other/x")));
        assert!(!h.hides(&own.join("x")));
        assert!(!h.hides(&root.join("out/checkpoint-1/model.safetensors")));
        let out = std::fs::File::open(root.join("out")).unwrap();
        assert!(h.hides_entry(&out, "plugins", false));
        assert!(!h.hides_entry(&out, "checkpoint-1", true));
        let other = std::fs::File::open(root.join("out/plugins/other")).unwrap();
        assert!(h.hides_open(&other));
        assert!(!h.hides_open(&out));
        let _ = std::fs::remove_dir_all(&root);
    }
}
