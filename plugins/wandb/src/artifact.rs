//! W&B artifacts as an offline `run.log_artifact` leaves them: each file is
//! copied into wandb's staging folder (`$WANDB_DATA_DIR/artifacts/staging`,
//! a fresh `tmp…` name per file, as `Artifact.add_file` with the `mutable`
//! policy does) and listed in the manifest with `base64(md5)`, its size and
//! the staged copy's host path, which `wandb sync` uploads from. The
//! manifest's digest is wandb's `ArtifactManifestV1.digest`. `Run` writes
//! the record; this module reads and copies files.

use crate::artifact_proto::{ArtifactRecord, Manifest, ManifestEntry, PolicyItem};
use crate::digest::{base64, hex, Md5};
use std::io::{Read, Write};
use std::path::Path;
use trainbox_sdk::time::random_u64;

/// Where `--report_to wandb` mounts the staging folder when
/// `WANDB_LOG_MODEL` asks for artifacts.
pub const STAGING: &str = "/wandb-staging";

/// The staging folder: the plugin's path and the host's.
pub struct Stager {
    /// The host path of [`STAGING`] (config `staging_dir`).
    pub host_dir: String,
}

/// An artifact being assembled.
pub struct Artifact {
    pub name: String,
    pub kind: String,
    /// JSON text of the metadata.
    pub metadata: String,
    entries: Vec<ManifestEntry>,
}

impl Artifact {
    pub fn new(name: String, kind: &str, metadata: String) -> Artifact {
        Artifact {
            name,
            kind: kind.into(),
            metadata,
            entries: Vec::new(),
        }
    }

    /// `artifact.add_dir(dir)`: every file under `dir`, by its relative path.
    pub fn add_dir(&mut self, stager: &Stager, dir: &str) -> Result<(), String> {
        let mut files = Vec::new();
        walk(Path::new(dir), "", &mut files)?;
        for (path, rel) in files {
            let entry = stager.stage(&rel, &mut open(&path)?, false)?;
            self.entries.push(entry);
        }
        Ok(())
    }

    /// `artifact.add_file(path, name)` of one file (`skip_cache` as
    /// `new_file` sets it, for a file written in a temporary folder).
    pub fn add_file(
        &mut self,
        stager: &Stager,
        path: &str,
        name: &str,
        skip_cache: bool,
    ) -> Result<(), String> {
        let entry = stager.stage(name, &mut open(Path::new(path))?, skip_cache)?;
        self.entries.push(entry);
        Ok(())
    }

    /// `artifact.new_file(name)` holding `bytes`.
    pub fn new_file(&mut self, stager: &Stager, name: &str, bytes: &[u8]) -> Result<(), String> {
        let entry = stager.stage(name, &mut &bytes[..], true)?;
        self.entries.push(entry);
        Ok(())
    }

    /// The `ArtifactRecord` of `run.log_artifact(artifact, aliases)`: wandb
    /// appends `latest` to the aliases and sorts the entries by path.
    pub fn record(
        mut self,
        run_id: &str,
        project: &str,
        entity: &str,
        aliases: &[String],
    ) -> ArtifactRecord {
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        let mut aliases = aliases.to_vec();
        if !aliases.iter().any(|a| a == "latest") {
            aliases.push("latest".into());
        }
        ArtifactRecord {
            run_id: run_id.into(),
            project: project.into(),
            entity: entity.into(),
            r#type: self.kind,
            name: self.name,
            digest: manifest_digest(&self.entries),
            metadata: self.metadata,
            aliases,
            manifest: Some(Manifest {
                version: 1,
                storage_policy: "wandb-storage-policy-v1".into(),
                storage_policy_config: vec![PolicyItem {
                    key: "storageLayout".into(),
                    value_json: "\"V2\"".into(),
                }],
                contents: self.entries,
            }),
            finalize: true,
            client_id: fast_id(128),
            sequence_client_id: fast_id(128),
            digest_algorithm: "MANIFEST_MD5".into(),
        }
    }
}

impl Stager {
    /// Copies `src` to a fresh staging file, hashing it on the way.
    fn stage(
        &self,
        name: &str,
        src: &mut dyn Read,
        skip_cache: bool,
    ) -> Result<ManifestEntry, String> {
        let file = format!("tmp{}", fast_id(8));
        let guest = format!("{STAGING}/{file}");
        let mut out = std::fs::File::create(&guest).map_err(|e| {
            format!(
                "creating {guest}: {e}; WANDB_LOG_MODEL stages artifact files in wandb's staging folder, \
                 which `--report_to wandb` grants as {STAGING} when WANDB_LOG_MODEL is checkpoint or end"
            )
        })?;
        let mut md5 = Md5::default();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| format!("reading {name} for the artifact: {e}"))?;
            if n == 0 {
                break;
            }
            md5.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| format!("writing {guest}: {e}"))?;
            size += n as u64;
        }
        out.flush().map_err(|e| format!("writing {guest}: {e}"))?;
        Ok(ManifestEntry {
            path: name.into(),
            digest: base64(&md5.finish()),
            size: size as i64,
            local_path: format!("{}/{file}", self.host_dir.trim_end_matches('/')),
            skip_cache,
        })
    }
}

fn open(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(path).map_err(|e| {
        format!(
            "reading {}: {e}; WANDB_LOG_MODEL reads checkpoints through the read-only grant of output_dir as /output",
            path.display()
        )
    })
}

/// The files under `dir`, recursively: (path, `/`-separated relative name).
fn walk(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(std::path::PathBuf, String)>,
) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "reading {}: {e}; WANDB_LOG_MODEL reads checkpoints through the read-only grant of output_dir as /output",
            dir.display()
        )
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        let kind = entry
            .file_type()
            .map_err(|e| format!("reading {rel}: {e}"))?;
        if kind.is_dir() {
            walk(&entry.path(), &format!("{rel}/"), out)?;
        } else if kind.is_file() {
            out.push((entry.path(), rel));
        }
    }
    Ok(())
}

/// wandb's `ArtifactManifestV1.digest`: MD5 of the header line and one
/// `path:digest` line per entry, by path.
fn manifest_digest(entries: &[ManifestEntry]) -> String {
    let mut sorted: Vec<&ManifestEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut md5 = Md5::default();
    md5.update(b"wandb-artifact-manifest-v1\n");
    for e in sorted {
        md5.update(format!("{}:{}\n", e.path, e.digest).as_bytes());
    }
    hex(&md5.finish())
}

/// wandb's `generate_fast_id`-style id: `n` characters of `[a-z0-9]`.
fn fast_id(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    let mut bits = 0u64;
    for i in 0..n {
        if i % 12 == 0 {
            bits = random_u64();
        }
        out.push(ALPHABET[(bits % 36) as usize] as char);
        bits /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, digest: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            digest: digest.into(),
            ..Default::default()
        }
    }

    #[test]
    fn manifest_digest_as_wandb() {
        // wandb 0.31's digest of a real offline artifact with these entries.
        let entries = [
            entry("sub/b.bin", "yXXUYKxFg9glpGIKLKrvoQ=="),
            entry("a.txt", "b1kCrCNwJL3QwXbLkwY9xA=="),
            entry("empty", "1B2M2Y8AsgTpgAmY7PhCfg=="),
        ];
        assert_eq!(
            manifest_digest(&entries),
            "7562cdfb30a6f73975bca3f390f80268"
        );
        let arch = [entry("model_architecture.txt", "1hlMaPzH55u1dAG+YDyxzA==")];
        assert_eq!(manifest_digest(&arch), "12f01237f9fbba2259ac0b9e43688bb9");
    }

    #[test]
    fn ids_are_lowercase_alphanumerics() {
        let id = fast_id(128);
        assert_eq!(id.len(), 128);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }
}
