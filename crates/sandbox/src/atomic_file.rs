//! Files written whole or not at all: into a temporary beside the target,
//! then renamed over it. The one way the host replaces a file (the compile
//! cache's entries, the plugin owner record, the final model and state).

use anyhow::{Context, Result};
use std::path::Path;

/// Writes `path` through `write` into `tmp` (beside it, on the same
/// filesystem), then renames `tmp` over `path`; on failure `tmp` is removed
/// and `path` is left as it was.
pub fn write_replacing(
    path: &Path,
    tmp: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let written = write(tmp).and_then(|()| {
        std::fs::rename(tmp, path).with_context(|| format!("renaming into {}", path.display()))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// How the temporary of [`write_beside`] begins (`.tmp.model.safetensors`).
pub const TEMP_PREFIX: &str = ".tmp.";

/// [`write_replacing`] through the hidden file `.tmp.NAME` beside `path`.
/// It keeps `path`'s extension: tch picks the format it saves in from it
/// (`.safetensors`, or else torch's pickle).
pub fn write_beside(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!("{TEMP_PREFIX}{}", name.unwrap_or_default()));
    write_replacing(path, &tmp, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("trainbox-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, tmp) = (dir.join("f.json"), dir.join(".f.json.tmp"));
        std::fs::write(&path, "old").unwrap();
        let err = write_replacing(&path, &tmp, |t| {
            std::fs::write(t, "half")?;
            anyhow::bail!("disk full")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert!(!tmp.exists());
        write_replacing(&path, &tmp, |t| Ok(std::fs::write(t, "new")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!tmp.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
