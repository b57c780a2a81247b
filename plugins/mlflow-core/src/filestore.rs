//! The local store of the `mlflow` plugin without `MLFLOW_TRACKING_URI`:
//! mlflow's file store (`FileStore`, the `./mlruns` folder HF + mlflow wrote
//! by default before mlflow 3.7), behind the [`Net`] trait, so that the
//! engine runs unchanged: each REST request it would send to a server is
//! answered here by reading and writing the folder, as mlflow's
//! `FileStore` does.
//!
//! The layout, as mlflow 3.17's `file_store.py` writes it: `<root>/<exp
//! id>/meta.yaml` per experiment (`0` is Default), `<root>/<exp id>/<run
//! id>/meta.yaml` per run with `metrics/<key>` (a line `timestamp value
//! step` per point; a key's `/` is a subfolder), `params/<key>` and
//! `tags/<key>` (the value alone), and an empty `artifacts/`. `mlflow ui
//! --backend-store-uri <root>` opens it (mlflow 3.17 asks for
//! `MLFLOW_ALLOW_FILE_STORE=true` to open a file store at all).

use crate::net::{Net, NetError, Reply};
use crate::wire;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use trainbox_sdk::python::float_repr;

/// A run's status as `meta.yaml` stores it (mlflow's `RunStatus`).
fn status_number(status: &str) -> u8 {
    match status {
        "RUNNING" => 1,
        "SCHEDULED" => 2,
        "FINISHED" => 3,
        "FAILED" => 4,
        _ => 5, // KILLED
    }
}

/// A YAML string: single-quoted, `'` doubled.
fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A run's `meta.yaml` fields.
#[derive(Debug, Clone)]
struct RunMeta {
    run_id: String,
    experiment_id: String,
    run_name: String,
    start_time: u64,
    end_time: Option<u64>,
    status: String,
    lifecycle_stage: String,
}

/// mlflow's file store in `root` (the plugin's own `mlruns`), as a server.
pub struct FileStore {
    /// The folder the plugin writes (its own directory's `mlruns`).
    root: PathBuf,
    /// The same folder as the user's machine names it, for `artifact_uri`
    /// and `artifact_location` (the host gives it).
    host_root: String,
    runs: Vec<RunMeta>,
}

impl FileStore {
    /// The store in `root`, made with its Default experiment if new;
    /// `host_root` is `root` as the user's machine names it.
    pub fn open(root: &Path, host_root: &str) -> Result<FileStore, String> {
        let store = FileStore {
            root: root.to_path_buf(),
            host_root: host_root.trim_end_matches('/').to_string(),
            runs: Vec::new(),
        };
        let io =
            |e: std::io::Error| format!("writing the local MLflow store {}: {e}", root.display());
        std::fs::create_dir_all(root.join(".trash")).map_err(io)?;
        if !root.join("0/meta.yaml").is_file() {
            store.write_experiment("0", "Default").map_err(io)?;
        }
        Ok(store)
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn write_experiment(&self, id: &str, name: &str) -> std::io::Result<()> {
        let dir = self.root.join(id);
        std::fs::create_dir_all(&dir)?;
        let now = Self::now();
        std::fs::write(
            dir.join("meta.yaml"),
            format!(
                "artifact_location: {}\ncreation_time: {now}\nexperiment_id: {}\nlast_update_time: {now}\nlifecycle_stage: active\nname: {}\n",
                yaml_str(&format!("{}/{id}", self.host_root)),
                yaml_str(id),
                yaml_str(name)
            ),
        )
    }

    fn run_dir(&self, run: &RunMeta) -> PathBuf {
        self.root.join(&run.experiment_id).join(&run.run_id)
    }

    fn artifact_uri(&self, run: &RunMeta) -> String {
        format!(
            "{}/{}/{}/artifacts",
            self.host_root, run.experiment_id, run.run_id
        )
    }

    fn write_run_meta(&self, run: &RunMeta) -> std::io::Result<()> {
        let end = run
            .end_time
            .map_or_else(|| "null".to_string(), |t| t.to_string());
        std::fs::write(
            self.run_dir(run).join("meta.yaml"),
            format!(
                "artifact_uri: {}\nend_time: {end}\nentry_point_name: ''\nexperiment_id: {}\nlifecycle_stage: {}\nrun_id: {}\nrun_name: {}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: {}\nstatus: {}\ntags: []\nuser_id: unknown\n",
                yaml_str(&self.artifact_uri(run)),
                yaml_str(&run.experiment_id),
                run.lifecycle_stage,
                run.run_id,
                yaml_str(&run.run_name),
                run.start_time,
                status_number(&run.status)
            ),
        )
    }

    /// The experiment named `name` in the store: (id, lifecycle stage).
    fn find_experiment(&self, name: &str) -> Option<(String, String)> {
        let entries = std::fs::read_dir(&self.root).ok()?;
        for entry in entries.filter_map(|e| e.ok()) {
            let Ok(meta) = std::fs::read_to_string(entry.path().join("meta.yaml")) else {
                continue;
            };
            let field = |key: &str| {
                meta.lines()
                    .find_map(|l| l.strip_prefix(&format!("{key}: ")))
                    .map(yaml_value)
            };
            if field("name").as_deref() == Some(name) {
                let stage = field("lifecycle_stage").unwrap_or_else(|| "active".into());
                return Some((entry.file_name().to_string_lossy().into_owned(), stage));
            }
        }
        None
    }

    fn run_mut(&mut self, id: &str) -> Option<&mut RunMeta> {
        self.runs.iter_mut().find(|r| r.run_id == id)
    }

    fn pairs_of(dir: &Path) -> Vec<Value> {
        let mut out = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), String::new())];
        while let Some((d, prefix)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.filter_map(|e| e.ok()) {
                let key = format!("{prefix}{}", e.file_name().to_string_lossy());
                if e.path().is_dir() {
                    stack.push((e.path(), format!("{key}/")));
                } else if let Ok(value) = std::fs::read_to_string(e.path()) {
                    out.push(json!({"key": key, "value": value}));
                }
            }
        }
        out
    }

    /// Writes `value` to `<run>/<kind>/<key>` (a key's `/` is a subfolder).
    fn write_value(
        &self,
        run: &RunMeta,
        kind: &str,
        key: &str,
        value: &str,
    ) -> std::io::Result<()> {
        let path = self.run_dir(run).join(kind).join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, value)
    }

    fn handle(
        &mut self,
        endpoint: &str,
        path: &str,
        body: &Value,
    ) -> Result<Reply, std::io::Error> {
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        Ok(match endpoint {
            "experiments/get-by-name" => {
                let name = query(path, "experiment_name");
                match self.find_experiment(&name) {
                    Some((id, stage)) => ok(
                        json!({"experiment": {"experiment_id": id, "name": name, "lifecycle_stage": stage}}),
                    ),
                    None => error(
                        404,
                        "RESOURCE_DOES_NOT_EXIST",
                        &format!("Could not find experiment with name {name}"),
                    ),
                }
            }
            "experiments/create" => {
                let name = text("name");
                if self.find_experiment(&name).is_some() {
                    return Ok(error(
                        400,
                        "RESOURCE_ALREADY_EXISTS",
                        &format!("Experiment '{name}' already exists."),
                    ));
                }
                let id = (trainbox_sdk::time::random_u64() >> 4).to_string();
                self.write_experiment(&id, &name)?;
                ok(json!({ "experiment_id": id }))
            }
            "runs/create" => {
                let experiment_id = text("experiment_id");
                if !self.root.join(&experiment_id).join("meta.yaml").is_file() {
                    return Ok(error(
                        404,
                        "RESOURCE_DOES_NOT_EXIST",
                        &format!("Could not find experiment with ID {experiment_id}"),
                    ));
                }
                let run_id = format!(
                    "{:016x}{:016x}",
                    trainbox_sdk::time::random_u64(),
                    trainbox_sdk::time::random_u64()
                );
                let run_name = body["run_name"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
                let run = RunMeta {
                    run_id: run_id.clone(),
                    experiment_id,
                    run_name: run_name.clone(),
                    start_time: body["start_time"].as_u64().unwrap_or_else(Self::now),
                    end_time: None,
                    status: "RUNNING".into(),
                    lifecycle_stage: "active".into(),
                };
                for sub in ["artifacts", "metrics", "params", "tags"] {
                    std::fs::create_dir_all(self.run_dir(&run).join(sub))?;
                }
                self.write_run_meta(&run)?;
                for tag in body["tags"].as_array().into_iter().flatten() {
                    let (k, v) = (
                        tag["key"].as_str().unwrap_or_default(),
                        tag["value"].as_str().unwrap_or_default(),
                    );
                    self.write_value(&run, "tags", k, v)?;
                }
                self.write_value(&run, "tags", "mlflow.runName", &run_name)?;
                let info = json!({"run_id": run_id, "run_name": run_name, "experiment_id": run.experiment_id, "artifact_uri": self.artifact_uri(&run), "status": "RUNNING", "lifecycle_stage": "active"});
                self.runs.push(run);
                ok(json!({"run": {"info": info}}))
            }
            "runs/search" => {
                // Only the engine's filter: tags.`trainbox.create_id` = 'ID'.
                let filter = text("filter");
                let wanted = filter
                    .split_once(" = ")
                    .map(|(_, v)| v.trim_matches('\'').to_string());
                let found: Vec<Value> = self
                    .runs
                    .iter()
                    .filter(|r| r.lifecycle_stage == "active")
                    .filter(|r| {
                        let tag = self.run_dir(r).join("tags").join(wire::CREATE_ID_TAG);
                        wanted.is_some() && std::fs::read_to_string(tag).ok() == wanted
                    })
                    .map(|r| json!({"info": {"run_id": r.run_id, "run_name": r.run_name, "artifact_uri": self.artifact_uri(r)}}))
                    .collect();
                ok(json!({ "runs": found }))
            }
            "runs/get" => {
                let id = query(path, "run_id");
                match self.runs.iter().find(|r| r.run_id == id) {
                    Some(r) => {
                        let dir = self.run_dir(r);
                        ok(json!({"run": {"info": {"run_id": r.run_id, "experiment_id": r.experiment_id, "lifecycle_stage": r.lifecycle_stage, "artifact_uri": self.artifact_uri(r)}, "data": {"params": Self::pairs_of(&dir.join("params")), "tags": Self::pairs_of(&dir.join("tags"))}}}))
                    }
                    None => error(404, "RESOURCE_DOES_NOT_EXIST", &format!("Run '{id}' not found (the local store {} holds only the runs this training made; set MLFLOW_TRACKING_URI to resume a run on a server)", self.host_root)),
                }
            }
            "runs/delete" | "runs/update" => {
                let id = text("run_id");
                let Some(run) = self.run_mut(&id) else {
                    return Ok(error(
                        404,
                        "RESOURCE_DOES_NOT_EXIST",
                        &format!("Run '{id}' not found"),
                    ));
                };
                if endpoint == "runs/delete" {
                    run.lifecycle_stage = "deleted".into();
                } else {
                    run.status = body["status"].as_str().unwrap_or("RUNNING").into();
                    run.end_time = body["end_time"].as_u64().or(run.end_time);
                    if let Some(name) = body["run_name"].as_str() {
                        run.run_name = name.into();
                    }
                }
                let run = run.clone();
                self.write_run_meta(&run)?;
                self.write_value(&run, "tags", "mlflow.runName", &run.run_name)?;
                ok(json!({}))
            }
            "runs/log-batch" => {
                let id = text("run_id");
                let Some(run) = self.runs.iter().find(|r| r.run_id == id).cloned() else {
                    return Ok(error(
                        404,
                        "RESOURCE_DOES_NOT_EXIST",
                        &format!("Run '{id}' not found"),
                    ));
                };
                for p in body["params"].as_array().into_iter().flatten() {
                    let (k, v) = (
                        p["key"].as_str().unwrap_or_default(),
                        p["value"].as_str().unwrap_or_default(),
                    );
                    let file = self.run_dir(&run).join("params").join(k);
                    match std::fs::read_to_string(&file) {
                        Ok(old) if old != v => {
                            return Ok(error(400, "INVALID_PARAMETER_VALUE", &format!("Changing param values is not allowed. Param with key='{k}' was already logged with value='{old}' for run ID='{id}'. Attempted logging new value '{v}'.")));
                        }
                        Ok(_) => {}
                        Err(_) => self.write_value(&run, "params", k, v)?,
                    }
                }
                for t in body["tags"].as_array().into_iter().flatten() {
                    let (k, v) = (
                        t["key"].as_str().unwrap_or_default(),
                        t["value"].as_str().unwrap_or_default(),
                    );
                    self.write_value(&run, "tags", k, v)?;
                }
                for m in body["metrics"].as_array().into_iter().flatten() {
                    let key = m["key"].as_str().unwrap_or_default();
                    let value = match &m["value"] {
                        Value::String(s) if s == "NaN" => f64::NAN,
                        Value::String(s) if s == "Infinity" => f64::INFINITY,
                        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
                        v => v.as_f64().unwrap_or(f64::NAN),
                    };
                    let line = format!(
                        "{} {} {}\n",
                        m["timestamp"].as_u64().unwrap_or_else(Self::now),
                        float_repr(value),
                        m["step"].as_u64().unwrap_or(0)
                    );
                    let path = self.run_dir(&run).join("metrics").join(key);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    use std::io::Write as _;
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?
                        .write_all(line.as_bytes())?;
                }
                ok(json!({}))
            }
            other => error(
                404,
                "ENDPOINT_NOT_FOUND",
                &format!("{other} is not served by the local store"),
            ),
        })
    }
}

/// A YAML scalar as mlflow or [`yaml_str`] wrote it.
fn yaml_value(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return inner.to_string();
    }
    raw.to_string()
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: body.to_string(),
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        body: json!({"error_code": code, "message": message}).to_string(),
    }
}

/// A query parameter of `path`, percent-decoded.
fn query(path: &str, key: &str) -> String {
    let q = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let raw = q
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or("");
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            raw.get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Net for FileStore {
    fn send(&mut self, request: &wire::Request, _timeout_ms: u64) -> Result<Reply, NetError> {
        if request.upload.is_some() {
            return Err(NetError::Failed(
                "HF_MLFLOW_LOG_ARTIFACTS needs a tracking server (the local store keeps no artifacts): set MLFLOW_TRACKING_URI".into(),
            ));
        }
        let Some(rest) = request.path.strip_prefix(wire::API) else {
            return Ok(error(404, "ENDPOINT_NOT_FOUND", &request.path));
        };
        let endpoint = rest
            .trim_start_matches('/')
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
        self.handle(&endpoint, &request.path, &body).map_err(|e| {
            NetError::Failed(format!(
                "writing the local MLflow store {}: {e}",
                self.root.display()
            ))
        })
    }

    fn now_ms(&self) -> u64 {
        Self::now()
    }

    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    fn file_len(&mut self, path: &str) -> Result<u64, String> {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Plan};
    use crate::metrics::Metric;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_engine_writes_mlflows_file_store_layout() {
        let root = std::env::temp_dir().join(format!("mlflow-filestore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut store = FileStore::open(&root, "/host/mlruns").unwrap();
        let mut e = Engine::new(Plan {
            uri: "/host/mlruns".into(),
            experiment_name: Some("my exp".into()),
            run_id: None,
            parent_run_id: None,
            job_run: false,
            run_name: Some("demo".into()),
            params: vec![("learning_rate".into(), "5e-05".into())],
            tags: vec![("team".into(), "nlp".into())],
            create_id: "c0ffee".into(),
        });
        e.pump(&mut store, 1000, false);
        let metric = |key: &str, value: f64, step| Metric {
            key: key.into(),
            value,
            timestamp: 1000 + step,
            step,
        };
        e.log(vec![
            metric("loss", 0.5, 2),
            metric("eval/loss", f64::NAN, 2),
        ]);
        e.log(vec![metric("loss", 0.25, 4)]);
        e.finish(&mut store, "FINISHED", 8000);
        assert!(read(&root.join("0/meta.yaml")).contains("name: 'Default'"));
        let exp = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|d| d.ok())
            .map(|d| d.path())
            .find(|p| p.join("meta.yaml").is_file() && !p.ends_with("0"))
            .expect("the experiment's folder");
        assert!(read(&exp.join("meta.yaml")).contains("name: 'my exp'"));
        let runs: Vec<PathBuf> = std::fs::read_dir(&exp)
            .unwrap()
            .filter_map(|d| d.ok().map(|d| d.path()))
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let run = &runs[0];
        let meta = read(&run.join("meta.yaml"));
        assert!(meta.contains("status: 3\n"), "FINISHED: {meta}");
        assert!(meta.contains("run_name: 'demo'\n"), "{meta}");
        assert!(meta.contains("artifact_uri: '/host/mlruns/"), "{meta}");
        assert_eq!(read(&run.join("metrics/loss")), "1002 0.5 2\n1004 0.25 4\n");
        assert_eq!(read(&run.join("metrics/eval/loss")), "1002 nan 2\n");
        assert_eq!(read(&run.join("params/learning_rate")), "5e-05");
        assert_eq!(read(&run.join("tags/team")), "nlp");
        assert_eq!(read(&run.join("tags/mlflow.runName")), "demo");
        assert!(run.join("artifacts").is_dir());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
