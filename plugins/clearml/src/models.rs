//! `CLEARML_LOG_MODEL`: each checkpoint as the output model HF's
//! `ClearMLCallback.on_save` makes of it (`OutputModel(task, name=
//! "checkpoint-<step>")`, then `update_weights_package(weights_path=
//! <output_dir>/checkpoint-<step>, target_filename="checkpoint-<step>",
//! iteration=<step>)`), as clearml 2.1.12 keeps one offline
//! (`OutputModel._update_weights_offline`): the checkpoint's files stored
//! (not deflated) in a zip, `models/model_package.<8 chars>.zip` in the
//! session folder, and one entry of `offline_output_models` in `task.json`,
//! which `Task.import_offline_session` turns into `OutputModel(**init)` and
//! `update_weights(**weights)`. The checkpoints are read through the
//! read-only grant of `output_dir` as [`OUTPUT`].

use crate::session::Session;
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use trainbox_sdk::format::py_str;
use trainbox_sdk::time::random_u64;

/// Where the host grants `output_dir` (read-only).
pub const OUTPUT: &str = "/output";

/// One logged checkpoint: its `offline_output_models` entry and its zip
/// (as the plugin sees it).
pub struct Logged {
    pub entry: Value,
    pub zip: PathBuf,
}

/// The files and folders below `dir`, relative to it, sorted (clearml's
/// `rglob("*")`, in a fixed order).
fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, bool)>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = e.file_type()?.is_dir();
        out.push((rel.clone(), is_dir));
        if is_dir {
            walk(&e.path(), &rel, out)?;
        }
    }
    Ok(())
}

/// `mkstemp`'s eight characters.
fn temp_name() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let mut bits = random_u64();
    (0..8)
        .map(|_| {
            let c = CHARS[(bits % CHARS.len() as u64) as usize];
            bits /= CHARS.len() as u64;
            c as char
        })
        .collect()
}

/// Packages `checkpoint-<step>` of `output_dir` (`host_output`, the path
/// the user knows, for the model's comment) into the session.
pub fn package(s: &Session, host_output: &str, step: u64) -> io::Result<Logged> {
    let ckpt = format!("checkpoint-{step}");
    let src = Path::new(OUTPUT).join(&ckpt);
    let mut items = Vec::new();
    walk(&src, "", &mut items).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "reading {}: {e}; CLEARML_LOG_MODEL reads checkpoints through the read-only grant of output_dir as {OUTPUT}",
                src.display()
            ),
        )
    })?;
    let file_name = format!("model_package.{}.zip", temp_name());
    let dir = s.folder.join("models");
    fs::create_dir_all(&dir)?;
    let zip_path = dir.join(&file_name);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut zip = zip::ZipWriter::new(File::create(&zip_path)?);
    for (rel, is_dir) in &items {
        if *is_dir {
            zip.add_directory(rel.as_str(), options)
                .map_err(io::Error::other)?;
        } else {
            zip.start_file(rel.as_str(), options)
                .map_err(io::Error::other)?;
            io::copy(&mut File::open(src.join(rel))?, &mut zip)?;
        }
    }
    zip.finish().map_err(io::Error::other)?.flush()?;
    let host_src = format!("{}/{ckpt}", host_output.trim_end_matches('/'));
    let listed: Vec<String> = items
        .iter()
        .map(|(rel, _)| py_str(&format!("{host_src}/{rel}")))
        .collect();
    let entry = json!({
        "id": format!("offline-{:016x}{:016x}", random_u64(), random_u64()),
        "init": {
            "comment": format!(
                "snapshot [{}] stored\nCreated by task id: {}",
                listed.join(", "),
                s.id
            ),
            "config_dict": {},
            "config_text": "",
            "framework": null,
            "label_enumeration": null,
            "name": ckpt,
            "tags": null,
        },
        "output_uri": null,
        "weights": {
            "is_package": false,
            "iteration": step,
            "register_uri": null,
            "target_filename": format!("{ckpt}.zip"),
            "update_comment": false,
            "upload_uri": null,
            "weights_filename": format!("{}/models/{file_name}", s.host_folder),
        },
    });
    Ok(Logged {
        entry,
        zip: zip_path,
    })
}
