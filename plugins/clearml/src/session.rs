//! A clearml 2.1 offline session, as `Task.init` in offline mode keeps it:
//! the folder `offline-<32 hex>/` with `metrics.jsonl` (per flush, one JSON
//! array of `training_stats_scalar` events), `log.jsonl` (console lines as
//! `log` events), with `CLEARML_LOG_MODEL` `models/` (see [`crate::models`])
//! and, at `close()`, `task.json`; then the folder zipped beside it to
//! `offline-<32 hex>.zip`, what `Task.import_offline_session` takes.

use serde_json::{json, Map, Value};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use trainbox_sdk::time::{random_u64, unix_now, Utc};

/// clearml's iteration of a single value (`report_single_value`).
pub const SUMMARY_ITER: i64 = -2_147_483_648;

/// An open offline session.
pub struct Session {
    pub id: String,
    pub(crate) folder: PathBuf,
    /// The folder as the host names it (`offline_folder` in `task.json`).
    pub(crate) host_folder: String,
    worker: String,
}

fn now_ms() -> i64 {
    (unix_now() * 1000.0) as i64
}

impl Session {
    /// Creates `offline-<id>/` in `root`; `host_root` is `root` as the
    /// user sees it.
    pub fn create(root: &Path, host_root: &str, worker: &str) -> io::Result<Session> {
        let id = format!("offline-{:016x}{:016x}", random_u64(), random_u64());
        let folder = root.join(&id);
        fs::create_dir_all(&folder)?;
        let host_folder = format!("{}/{id}", host_root.trim_end_matches('/'));
        let session = Session {
            id,
            folder,
            host_folder,
            worker: worker.into(),
        };
        session.log(&format!(
            "ClearML Task: created new task id={}\nClearML running in offline mode, session stored in {}",
            session.id, session.host_folder
        ))?;
        Ok(session)
    }

    fn append(&self, file: &str, events: &[Value]) -> io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.folder.join(file))?;
        writeln!(f, "{}", Value::Array(events.to_vec()))
    }

    /// A console line, as clearml's reporter keeps it.
    pub fn log(&self, msg: &str) -> io::Result<()> {
        let event = json!({
            "timestamp": now_ms(), "type": "log", "task": self.id, "level": "info",
            "worker": self.worker, "msg": msg, "method": "get",
        });
        self.append("log.jsonl", &[event])
    }

    /// A scalar event (`report_scalar`; `report_single_value` is title
    /// `Summary` at [`SUMMARY_ITER`]).
    pub fn scalar(&self, iter: i64, title: &str, series: &str, value: f64) -> Value {
        json!({
            "timestamp": now_ms(), "type": "training_stats_scalar", "task": self.id,
            "iter": iter, "metric": title, "variant": series, "value": value, "method": "get",
        })
    }

    /// Appends one flush of events to `metrics.jsonl`.
    pub fn report(&self, events: &[Value]) -> io::Result<()> {
        self.append("metrics.jsonl", events)
    }

    /// `close()`: writes `task.json` (with the output models' entries,
    /// `offline_output_models`) and zips the folder beside it.
    pub fn close(
        &self,
        name: &str,
        project: &str,
        hyperparams: Map<String, Value>,
        models: Vec<Value>,
    ) -> io::Result<PathBuf> {
        let task = json!({
            "id": self.id,
            "name": name,
            "project_name": project,
            "type": "training",
            "hyperparams": hyperparams,
            "execution": {
                "artifacts": [], "docker_cmd": "", "model": "", "model_desc": {},
                "model_labels": {}, "parameters": {},
            },
            "output": {},
            "offline_folder": self.host_folder,
            "offline_output_models": models,
        });
        let text = serde_json::to_string_pretty(&task).map_err(io::Error::other)?;
        fs::write(self.folder.join("task.json"), text + "\n")?;
        self.log(&format!(
            "ClearML Task: Offline session stored in {}.zip",
            self.host_folder
        ))?;
        let zip_path = self.folder.with_extension("zip");
        self.zip(&zip_path)?;
        Ok(zip_path)
    }

    fn zip(&self, to: &Path) -> io::Result<()> {
        let t = Utc::now();
        let time = zip::DateTime::from_date_and_time(
            t.year.clamp(1980, 2107) as u16,
            t.month as u8,
            t.day as u8,
            t.hour as u8,
            t.minute as u8,
            t.second as u8,
        )
        .unwrap_or_default();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(time);
        let mut zip = zip::ZipWriter::new(File::create(to)?);
        let mut names = Vec::new();
        for e in fs::read_dir(&self.folder)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.file_type()?.is_dir() {
                names.push(name);
                continue;
            }
            // `models/`: clearml zips the session folder with its subfolders.
            for f in fs::read_dir(e.path())? {
                let f = f?.file_name().to_string_lossy().into_owned();
                names.push(format!("{name}/{f}"));
            }
        }
        names.sort();
        for name in names {
            zip.start_file(name.as_str(), options)
                .map_err(io::Error::other)?;
            io::copy(&mut File::open(self.folder.join(&name))?, &mut zip)?;
        }
        zip.finish().map_err(io::Error::other)?;
        Ok(())
    }
}
