//! The Rust plugin SDK that `trainbox plugin new --lang rust` writes into
//! the new folder: `trainbox-sdk` and the `trainbox-pyformat` crate it
//! uses, with the WIT contract, compiled into the binary (`include_str!`),
//! so that an installed trainbox needs no source checkout and the plugin
//! builds against the contract of the host that made it.
//!
//! The files keep the repository's layout under `trainbox-sdk/`
//! (`wit/`, `plugins/sdk/`, `crates/pyformat/`), so the SDK's relative
//! paths hold; their manifests inherit from the repository's workspaces,
//! so those fields are written out in full (as `cargo package` does). The
//! plugins' `Cargo.lock` comes along, so the plugin builds offline with
//! the crate versions trainbox's own plugins were built with.

use anyhow::{anyhow, Context, Result};
use std::path::Path;

/// The folder, inside a new plugin, that holds the SDK.
pub const SDK_DIR: &str = "trainbox-sdk";

/// Where the plugin's `Cargo.toml` finds the SDK, relative to it.
pub const SDK_PATH: &str = "trainbox-sdk/plugins/sdk";

/// The source files, by their path in the repository.
pub const FILES: &[(&str, &str)] = &[
    (
        "wit/callback.wit",
        include_str!("../../../wit/callback.wit"),
    ),
    (
        "wit/0.1.0/callback.wit",
        include_str!("../../../wit/0.1.0/callback.wit"),
    ),
    (
        "plugins/sdk/build.rs",
        include_str!("../../../plugins/sdk/build.rs"),
    ),
    (
        "plugins/sdk/src/args.rs",
        include_str!("../../../plugins/sdk/src/args.rs"),
    ),
    (
        "plugins/sdk/src/export.rs",
        include_str!("../../../plugins/sdk/src/export.rs"),
    ),
    (
        "plugins/sdk/src/format.rs",
        include_str!("../../../plugins/sdk/src/format.rs"),
    ),
    (
        "plugins/sdk/src/http.rs",
        include_str!("../../../plugins/sdk/src/http.rs"),
    ),
    (
        "plugins/sdk/src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "plugins/sdk/src/progress.rs",
        include_str!("../../../plugins/sdk/src/progress.rs"),
    ),
    (
        "plugins/sdk/src/python.rs",
        include_str!("../../../plugins/sdk/src/python.rs"),
    ),
    (
        "plugins/sdk/src/state.rs",
        include_str!("../../../plugins/sdk/src/state.rs"),
    ),
    (
        "plugins/sdk/src/time.rs",
        include_str!("../../../plugins/sdk/src/time.rs"),
    ),
    (
        "plugins/sdk/src/views.rs",
        include_str!("../../../plugins/sdk/src/views.rs"),
    ),
    (
        "crates/pyformat/src/args.rs",
        include_str!("../../../crates/pyformat/src/args.rs"),
    ),
    (
        "crates/pyformat/src/float.rs",
        include_str!("../../../crates/pyformat/src/float.rs"),
    ),
    (
        "crates/pyformat/src/json.rs",
        include_str!("../../../crates/pyformat/src/json.rs"),
    ),
    (
        "crates/pyformat/src/lib.rs",
        include_str!("../../../crates/pyformat/src/lib.rs"),
    ),
    (
        "crates/pyformat/src/parse.rs",
        include_str!("../../../crates/pyformat/src/parse.rs"),
    ),
    (
        "crates/pyformat/src/text.rs",
        include_str!("../../../crates/pyformat/src/text.rs"),
    ),
    (
        "crates/pyformat/src/tree.rs",
        include_str!("../../../crates/pyformat/src/tree.rs"),
    ),
    (
        "crates/pyformat/src/wit.rs",
        include_str!("../../../crates/pyformat/src/wit.rs"),
    ),
];

/// A crate's manifest to write: (path, the crate's own, its workspace's,
/// the path of each path dependency in the written layout).
type Manifest = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The manifests of the SDK's two crates.
const MANIFESTS: &[Manifest] = &[
    (
        "plugins/sdk/Cargo.toml",
        include_str!("../../../plugins/sdk/Cargo.toml"),
        include_str!("../../../plugins/Cargo.toml"),
        &[("trainbox-pyformat", "../../crates/pyformat")],
    ),
    (
        "crates/pyformat/Cargo.toml",
        include_str!("../../../crates/pyformat/Cargo.toml"),
        include_str!("../../../Cargo.toml"),
        &[],
    ),
];

/// The lock file trainbox's plugins were built with.
pub const CARGO_LOCK: &str = include_str!("../../../plugins/Cargo.lock");

/// Writes the SDK under `dir/trainbox-sdk`.
pub fn write(dir: &Path) -> Result<()> {
    let root = dir.join(SDK_DIR);
    let mut files: Vec<(String, String)> = FILES
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    for (path, manifest, workspace, paths) in MANIFESTS {
        let text = standalone(manifest, workspace, paths)
            .with_context(|| format!("writing the SDK's {path}"))?;
        files.push((path.to_string(), text));
    }
    for (path, text) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `manifest` with every field it inherits from `workspace` written out,
/// path dependencies pointed at `paths`, and no `[lints]` (the new
/// plugin's workspace has none).
fn standalone(manifest: &str, workspace: &str, paths: &[(&str, &str)]) -> Result<String> {
    let mut doc: toml::Table = manifest.parse()?;
    let ws: toml::Table = workspace.parse()?;
    let ws = ws
        .get("workspace")
        .and_then(|w| w.as_table())
        .ok_or_else(|| anyhow!("the workspace manifest has no [workspace]"))?;
    let empty = toml::Table::new();
    let ws_package = ws
        .get("package")
        .and_then(|p| p.as_table())
        .unwrap_or(&empty);
    let ws_deps = ws
        .get("dependencies")
        .and_then(|p| p.as_table())
        .unwrap_or(&empty);
    let inherits = |v: &toml::Value| {
        v.as_table()
            .and_then(|t| t.get("workspace"))
            .and_then(|w| w.as_bool())
            == Some(true)
    };
    if let Some(package) = doc.get_mut("package").and_then(|p| p.as_table_mut()) {
        for (key, value) in package.iter_mut() {
            if inherits(value) {
                *value = ws_package
                    .get(key)
                    .cloned()
                    .ok_or_else(|| anyhow!("package.{key}: not in [workspace.package]"))?;
            }
        }
    }
    for section in ["dependencies", "build-dependencies", "dev-dependencies"] {
        let Some(deps) = doc.get_mut(section).and_then(|d| d.as_table_mut()) else {
            continue;
        };
        for (name, value) in deps.iter_mut() {
            if inherits(value) {
                let mut dep = match ws_deps.get(name) {
                    Some(toml::Value::String(v)) => {
                        let mut t = toml::Table::new();
                        t.insert("version".into(), toml::Value::String(v.clone()));
                        t
                    }
                    Some(toml::Value::Table(t)) => t.clone(),
                    _ => return Err(anyhow!("{section}.{name}: not in [workspace.dependencies]")),
                };
                for (k, v) in value.as_table().into_iter().flatten() {
                    if k == "features" {
                        let mut all = dep
                            .get("features")
                            .and_then(|f| f.as_array())
                            .cloned()
                            .unwrap_or_default();
                        all.extend(v.as_array().cloned().unwrap_or_default());
                        dep.insert(k.clone(), toml::Value::Array(all));
                    } else if k != "workspace" {
                        dep.insert(k.clone(), v.clone());
                    }
                }
                *value = toml::Value::Table(dep);
            }
            if let Some(table) = value.as_table_mut() {
                if table.contains_key("path") {
                    let path = paths
                        .iter()
                        .find(|(n, _)| n == name)
                        .ok_or_else(|| {
                            anyhow!("{section}.{name}: a path dependency the SDK does not carry")
                        })?
                        .1;
                    table.insert("path".into(), toml::Value::String(path.into()));
                }
            }
        }
    }
    doc.remove("lints");
    Ok(toml::to_string(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `.rs` and `.wit` file of the SDK's folders, by repository path.
    fn on_disk() -> BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut out = BTreeSet::new();
        for dir in [
            "wit",
            "wit/0.1.0",
            "plugins/sdk",
            "plugins/sdk/src",
            "crates/pyformat/src",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "rs" || e == "wit") {
                    let name = path.file_name().unwrap().to_string_lossy();
                    out.insert(format!("{dir}/{name}"));
                }
            }
        }
        out
    }

    #[test]
    fn every_sdk_source_file_is_embedded() {
        let embedded: BTreeSet<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            embedded,
            on_disk(),
            "add the new file to FILES in cli/sdk.rs"
        );
    }

    #[test]
    fn the_written_manifests_inherit_nothing() {
        for (path, manifest, workspace, paths) in MANIFESTS {
            let text = standalone(manifest, workspace, paths).unwrap();
            assert!(!text.contains("workspace"), "{path}:\n{text}");
            let doc: toml::Table = text.parse().unwrap();
            let package = doc["package"].as_table().unwrap();
            assert_eq!(package["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
            assert!(package["edition"].as_str().is_some(), "{path}");
        }
        let sdk = standalone(MANIFESTS[0].1, MANIFESTS[0].2, MANIFESTS[0].3).unwrap();
        let doc: toml::Table = sdk.parse().unwrap();
        let deps = doc["dependencies"].as_table().unwrap();
        assert_eq!(
            deps["trainbox-pyformat"]["path"].as_str(),
            Some("../../crates/pyformat")
        );
        assert_eq!(deps["url"]["optional"].as_bool(), Some(true), "{sdk}");
        assert!(deps["url"]["version"].as_str().is_some(), "{sdk}");
    }
}
