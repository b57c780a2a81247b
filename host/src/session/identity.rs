//! Which file the user meant. A plugin names itself in `describe`, so a
//! name alone proves nothing: a run refuses two files that declare one name,
//! a `[plugins.NAME]` table that grants anything must say which file it is
//! for (`path`, optionally pinned by `sha256`, as Extism's manifest pins a
//! module by hash), and stored plugin states go back only to the file whose
//! directory they were written beside. With names unique and every granting
//! table bound to its file, the settings can then be looked up by name.
//!
//! The integrations `--report_to` selects are bound by the host: their
//! tables may grant without a `path`, since the file is the built-in one.

use super::setup::PluginSetup;
use crate::args::TrainingArguments;
use crate::sandbox::{read_owners, CompiledPlugin, Grants, NotGranted};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A loaded plugin: its compiled form and the integration it is, if any.
pub type Loaded<'a> = (CompiledPlugin, Option<&'a str>);

fn canonical(path: &Path) -> Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

/// Checks a run's plugins against its settings: one file per name, every
/// table's `path` and `sha256` matching a loaded plugin of that name, grants
/// only in tables bound to a file, no settings for a plugin not loaded.
pub fn check(setup: &PluginSetup, loaded: &[Loaded]) -> Result<()> {
    let mut files: BTreeMap<&str, (PathBuf, &Path)> = BTreeMap::new();
    for (c, _) in loaded {
        let path = canonical(&c.path)?;
        match files.get(c.info.name.as_str()) {
            Some((first, shown)) if *first != path => bail!(
                "two plugin files declare the name {:?}: {} and {}; load only one of them, or rename one \
                 (its `NAME`); to run one plugin twice, load the same file twice",
                c.info.name,
                shown.display(),
                c.path.display()
            ),
            Some(_) => {}
            None => {
                files.insert(&c.info.name, (path, &c.path));
            }
        }
    }
    let by_name = |name: &str| loaded.iter().find(|(c, _)| c.info.name == name);
    for (name, pin) in &setup.pins {
        if let Some(path) = &pin.path {
            check_path(name, path, loaded)?;
        }
        if let (Some(expected), Some((c, _))) = (&pin.sha256, by_name(name)) {
            if *expected != c.sha256 {
                bail!(
                    "{}: its sha256 is {}, but [plugins.{name}] pins sha256 = \"{expected}\"; \
                     if you changed the plugin on purpose, set sha256 = \"{}\" (or remove the pin), \
                     else restore the file you pinned",
                    c.path.display(),
                    c.sha256,
                    c.sha256
                );
            }
        }
    }
    for (name, s) in &setup.settings {
        let bound = setup.pins.get(name).is_some_and(|p| p.path.is_some())
            || loaded.iter().any(|(_, i)| *i == Some(name.as_str()));
        if s.grants != Grants::default() && !bound {
            let file = by_name(name).map_or_else(
                || "<the plugin's .wasm>".to_string(),
                |(c, _)| c.path.display().to_string(),
            );
            bail!(
                "[plugins.{name}] grants {} but does not say which file it is for, and any plugin may call itself {name:?}; \
                 add path = {file:?} to [plugins.{name}] (on the command line: --plugin_grant {name}.path={file})",
                granted(&s.grants)
            );
        }
    }
    for name in setup.config.keys().chain(setup.settings.keys()) {
        if by_name(name).is_none() {
            let names: Vec<&str> = loaded.iter().map(|(c, _)| c.info.name.as_str()).collect();
            bail!(
                "settings for plugin {name:?}, but no plugin of that name is loaded (loaded: {})",
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// A missing grant of a plugin whose table names no file: the fix names
/// the `path` too, since grants without it are refused.
pub fn path_hint(
    e: anyhow::Error,
    c: &CompiledPlugin,
    integration: Option<&str>,
    setup: &PluginSetup,
) -> anyhow::Error {
    let name = &c.info.name;
    let bound = integration.is_some() || setup.pins.get(name).is_some_and(|p| p.path.is_some());
    match e.downcast::<NotGranted>() {
        Ok(mut ng) if !bound => {
            ng.needs_path = Some(c.path.clone().into_boxed_path());
            ng.into()
        }
        Ok(ng) => ng.into(),
        Err(e) => e,
    }
}

/// What a table grants, in words.
fn granted(g: &Grants) -> String {
    let mut what = Vec::new();
    if !g.dirs.is_empty() {
        what.push("directories");
    }
    if !g.env.is_empty() {
        what.push("environment variables");
    }
    if !g.http.is_empty() {
        what.push("HTTP origins");
    }
    what.join(" and ")
}

/// A table's `path` names a loaded plugin file that declares the table's name.
fn check_path(name: &str, path: &Path, loaded: &[Loaded]) -> Result<()> {
    let wanted = canonical(path).map_err(|e| {
        anyhow!(
            "[plugins.{name}] path = {:?}: {e:#}; correct the path",
            path.display().to_string()
        )
    })?;
    let mut files = Vec::new();
    for (c, _) in loaded {
        if canonical(&c.path)? == wanted {
            if c.info.name != name {
                bail!(
                    "[plugins.{name}] path = {:?}: that plugin calls itself {:?}, not {name:?}; \
                     name the table [plugins.{}], or correct the path",
                    path.display().to_string(),
                    c.info.name,
                    c.info.name
                );
            }
            return Ok(());
        }
        files.push(c.path.display().to_string());
    }
    bail!(
        "[plugins.{name}] path = {:?}: no plugin is loaded from that file (loaded: {}); \
         load it (--plugin {}), or correct the path",
        path.display().to_string(),
        files.join(", "),
        path.display()
    )
}

/// The directory names of the stateful plugins, as the sandbox gives them
/// (`name`, then `name#2`, …), with their files.
fn stateful_dirs<'a>(loaded: &'a [Loaded]) -> Vec<(String, &'a Path)> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (c, _) in loaded {
        let n = seen.entry(&c.info.name).or_default();
        *n += 1;
        if c.info.stateful {
            let dir = match *n {
                1 => c.info.name.clone(),
                n => format!("{}#{n}", c.info.name),
            };
            out.push((dir, c.path.as_path()));
        }
    }
    out
}

/// With `--restore_callback_states_from_checkpoint`, the stored states go
/// only to the files that wrote them: those recorded as owners of the
/// plugin directories beside the checkpoint. Checked before the plugins
/// claim their directories, so that a deleted directory does not hand a
/// stored state to a new file.
pub fn check_stored_states(args: &TrainingArguments, loaded: &[Loaded]) -> Result<()> {
    if !args.restore_callback_states_from_checkpoint {
        return Ok(());
    }
    let Some(value) = args.resume_from_checkpoint.as_deref() else {
        return Ok(());
    };
    let run_dir = match value.to_ascii_lowercase().as_str() {
        "false" | "" => return Ok(()),
        "true" | "last" => PathBuf::from(&args.output_dir),
        _ => match Path::new(value).parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    let owners = read_owners(&run_dir.join("plugins"))?;
    for (dir, path) in stateful_dirs(loaded) {
        let Some(owner) = owners.get(&dir) else {
            continue;
        };
        if owner.path != canonical(path)? {
            bail!(
                "the checkpoint holds the state of plugin {dir} as saved by {}, but this run's {dir} is {}; \
                 load {}, or resume without --restore_callback_states_from_checkpoint",
                owner.path.display(),
                path.display(),
                owner.path.display()
            );
        }
    }
    Ok(())
}
