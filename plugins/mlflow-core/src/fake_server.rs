//! A small in-memory MLflow tracking server behind the [`Net`] trait, for
//! the engine's unit tests: the endpoints the plugin uses, mlflow's batch
//! limits and param rule, a clock that each request advances, and faults to
//! inject (down, denied, replies that time out after the work is done).

use crate::net::{Net, NetError, Reply};
use crate::wire::{self, Request};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    /// Connection refused.
    Down,
    /// The host refuses the origin.
    Denied,
    /// Does the work, but the reply comes too late.
    LateReply,
}

#[derive(Debug, Default, Clone)]
pub struct FakeRun {
    pub id: String,
    pub experiment_id: String,
    pub name: String,
    pub status: String,
    pub end_time: Option<u64>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// (key, value, step), in the order logged.
    pub metrics: Vec<(String, f64, u64)>,
    pub deleted: bool,
}

pub struct FakeServer {
    pub health: Health,
    /// Milliseconds each request takes; one longer than its timeout times
    /// out, undone.
    pub latency_ms: u64,
    pub clock: u64,
    pub experiments: Vec<(String, String)>,
    pub runs: Vec<FakeRun>,
    /// "METHOD endpoint" of every request that reached the server (or tried).
    pub requests: Vec<String>,
    /// Metric keys the server refuses with 400.
    pub bad_key: Option<String>,
    /// Every request refused with 401 (wrong credentials).
    pub unauthorized: bool,
    /// A cold server: the next `runs/create` times out, and its run appears
    /// this many milliseconds later.
    pub slow_create_ms: Option<u64>,
    /// Creates still being made: (due time, body).
    pending: Vec<(u64, Value)>,
    /// The files the plugin may read: (path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// Artifacts uploaded: (path under the artifact API, bytes).
    pub artifacts: Vec<(String, Vec<u8>)>,
}

impl FakeServer {
    pub fn new() -> FakeServer {
        FakeServer {
            health: Health::Up,
            latency_ms: 1,
            clock: 1_000_000,
            experiments: vec![("0".into(), "Default".into())],
            runs: Vec::new(),
            requests: Vec::new(),
            bad_key: None,
            unauthorized: false,
            slow_create_ms: None,
            pending: Vec::new(),
            files: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    /// The runs not deleted.
    pub fn live_runs(&self) -> Vec<&FakeRun> {
        self.runs.iter().filter(|r| !r.deleted).collect()
    }

    /// Makes the runs of slow creates that are due.
    fn settle(&mut self) {
        let now = self.clock;
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(t, _)| *t <= now);
        self.pending = later;
        for (_, body) in due {
            self.handle("runs/create", "", &body);
        }
    }

    pub fn run(&self, id: &str) -> &FakeRun {
        self.runs.iter().find(|r| r.id == id).expect("no such run")
    }

    /// The requests as "METHOD endpoint", endpoint without the API prefix and query.
    pub fn endpoints(&self) -> Vec<&str> {
        self.requests.iter().map(String::as_str).collect()
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            body: json!({"error_code": code, "message": message}).to_string(),
        }
    }

    fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body: body.to_string(),
        }
    }

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
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn handle(&mut self, endpoint: &str, path: &str, body: &Value) -> Reply {
        match endpoint {
            "experiments/get-by-name" => {
                let name = Self::query(path, "experiment_name");
                match self.experiments.iter().find(|(_, n)| *n == name) {
                    Some((id, n)) => Self::ok(
                        json!({"experiment": {"experiment_id": id, "name": n, "lifecycle_stage": "active"}}),
                    ),
                    None => {
                        Self::error(404, "RESOURCE_DOES_NOT_EXIST", "Could not find experiment")
                    }
                }
            }
            "experiments/create" => {
                let name = body["name"].as_str().unwrap().to_string();
                if self.experiments.iter().any(|(_, n)| *n == name) {
                    return Self::error(400, "RESOURCE_ALREADY_EXISTS", "exists");
                }
                let id = self.experiments.len().to_string();
                self.experiments.push((id.clone(), name));
                Self::ok(json!({ "experiment_id": id }))
            }
            "runs/create" => {
                let id = format!("run{}", self.runs.len());
                let tags: Vec<(String, String)> = pairs(&body["tags"]);
                self.runs.push(FakeRun {
                    id: id.clone(),
                    experiment_id: body["experiment_id"].as_str().unwrap().into(),
                    name: body["run_name"].as_str().unwrap_or("random-name").into(),
                    status: "RUNNING".into(),
                    tags,
                    ..FakeRun::default()
                });
                let artifacts = format!(
                    "mlflow-artifacts:/{}/{id}/artifacts",
                    body["experiment_id"].as_str().unwrap()
                );
                Self::ok(json!({"run": {"info": {"run_id": id, "artifact_uri": artifacts}}}))
            }
            "runs/search" => {
                // Only the plugin's filter: tags.`trainbox.create_id` = 'ID'.
                let filter = body["filter"].as_str().unwrap();
                let (key, value) = filter.split_once(" = ").unwrap();
                let key = key.trim_start_matches("tags.").trim_matches('`');
                let value = value.trim_matches('\'');
                let runs: Vec<Value> = self
                    .runs
                    .iter()
                    .filter(|r| !r.deleted && r.tags.iter().any(|(k, v)| k == key && v == value))
                    .map(|r| json!({"info": {"run_id": r.id, "run_name": r.name, "artifact_uri": format!("mlflow-artifacts:/{}/{}/artifacts", r.experiment_id, r.id)}}))
                    .collect();
                Self::ok(json!({ "runs": runs }))
            }
            "runs/get" => {
                let id = Self::query(path, "run_id");
                match self.runs.iter().find(|r| r.id == id) {
                    Some(r) => {
                        let params: Vec<Value> = r
                            .params
                            .iter()
                            .map(|(k, v)| json!({"key": k, "value": v}))
                            .collect();
                        let stage = if r.deleted { "deleted" } else { "active" };
                        Self::ok(
                            json!({"run": {"info": {"run_id": r.id, "experiment_id": r.experiment_id, "lifecycle_stage": stage, "artifact_uri": format!("mlflow-artifacts:/{}/{}/artifacts", r.experiment_id, r.id)}, "data": {"params": params, "tags": r.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}}}),
                        )
                    }
                    None => Self::error(404, "RESOURCE_DOES_NOT_EXIST", "Run not found"),
                }
            }
            "runs/delete" => {
                let id = body["run_id"].as_str().unwrap();
                match self.runs.iter_mut().find(|r| r.id == id) {
                    Some(run) => {
                        run.deleted = true;
                        Self::ok(json!({}))
                    }
                    None => Self::error(404, "RESOURCE_DOES_NOT_EXIST", "Run not found"),
                }
            }
            "runs/update" => {
                let id = body["run_id"].as_str().unwrap();
                let Some(run) = self.runs.iter_mut().find(|r| r.id == id) else {
                    return Self::error(404, "RESOURCE_DOES_NOT_EXIST", "Run not found");
                };
                run.status = body["status"].as_str().unwrap().into();
                run.end_time = body["end_time"].as_u64();
                if let Some(name) = body["run_name"].as_str() {
                    run.name = name.into();
                }
                Self::ok(json!({}))
            }
            "runs/log-batch" => self.log_batch(body),
            other => Self::error(404, "ENDPOINT_NOT_FOUND", other),
        }
    }

    fn log_batch(&mut self, body: &Value) -> Reply {
        let metrics = body["metrics"].as_array().cloned().unwrap_or_default();
        let params = pairs(&body["params"]);
        let tags = pairs(&body["tags"]);
        if metrics.len() > wire::MAX_METRICS_PER_BATCH
            || params.len() > wire::MAX_PARAMS_TAGS_PER_BATCH
            || tags.len() > wire::MAX_PARAMS_TAGS_PER_BATCH
        {
            return Self::error(400, "INVALID_PARAMETER_VALUE", "batch too large");
        }
        if let Some(bad) = &self.bad_key {
            if metrics.iter().any(|m| m["key"] == *bad.as_str()) {
                return Self::error(400, "INVALID_PARAMETER_VALUE", "bad key");
            }
        }
        let id = body["run_id"].as_str().unwrap();
        let Some(run) = self.runs.iter_mut().find(|r| r.id == id) else {
            return Self::error(404, "RESOURCE_DOES_NOT_EXIST", "Run not found");
        };
        for (k, v) in &params {
            if run.params.iter().any(|(k2, v2)| k2 == k && v2 != v) {
                return Self::error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "Changing param values is not allowed",
                );
            }
        }
        for p in params {
            if !run.params.contains(&p) {
                run.params.push(p);
            }
        }
        for (k, v) in tags {
            run.tags.retain(|(k2, _)| *k2 != k);
            run.tags.push((k, v));
        }
        for m in metrics {
            let value = match &m["value"] {
                Value::String(s) if s == "NaN" => f64::NAN,
                v => v.as_f64().unwrap(),
            };
            let point = (
                m["key"].as_str().unwrap().to_string(),
                value,
                m["step"].as_u64().unwrap(),
            );
            // mlflow drops exact duplicates (a batch sent twice).
            if !run
                .metrics
                .iter()
                .any(|p| p.0 == point.0 && p.2 == point.2 && p.1.to_bits() == point.1.to_bits())
            {
                run.metrics.push(point);
            }
        }
        Self::ok(json!({}))
    }
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["key"].as_str().unwrap().into(),
                        p["value"].as_str().unwrap().into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Net for FakeServer {
    fn send(&mut self, request: &Request, timeout_ms: u64) -> Result<Reply, NetError> {
        if let Some(upload) = &request.upload {
            let bytes = self
                .files
                .iter()
                .find(|(p, _)| *p == upload.file)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let path = request.path.strip_prefix(wire::ARTIFACTS_API).unwrap();
            self.requests.push(format!("PUT artifacts{path}"));
            self.clock += self.latency_ms;
            return match self.health {
                Health::Down => Err(NetError::Failed("connection refused".into())),
                Health::Denied => Err(NetError::Denied),
                Health::Up | Health::LateReply => {
                    self.artifacts
                        .push((path.trim_start_matches('/').into(), bytes));
                    Ok(Self::ok(json!({})))
                }
            };
        }
        let endpoint = request
            .path
            .strip_prefix(wire::API)
            .unwrap()
            .trim_start_matches('/')
            .split('?')
            .next()
            .unwrap()
            .to_string();
        self.requests.push(format!("{} {endpoint}", request.method));
        self.settle();
        if endpoint == "runs/create" && self.health == Health::Up {
            if let Some(ms) = self.slow_create_ms.take() {
                self.clock += timeout_ms;
                let body = serde_json::from_str(&request.body).unwrap();
                self.pending.push((self.clock + ms, body));
                return Err(NetError::Timeout("timed out waiting for the reply".into()));
            }
        }
        if self.latency_ms > timeout_ms {
            self.clock += timeout_ms;
            return Err(NetError::Timeout("timed out waiting for the reply".into()));
        }
        self.clock += self.latency_ms;
        match self.health {
            Health::Down => Err(NetError::Failed("connection refused".into())),
            Health::Denied => Err(NetError::Denied),
            Health::Up if self.unauthorized => Ok(Reply {
                status: 401,
                body: "You are not authenticated.".into(),
            }),
            Health::Up | Health::LateReply => {
                let body: Value = if request.body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&request.body).unwrap()
                };
                let reply = self.handle(&endpoint, &request.path, &body);
                if self.health == Health::LateReply {
                    Err(NetError::Timeout("timed out waiting for the reply".into()))
                } else {
                    Ok(reply)
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock
    }

    fn sleep_ms(&mut self, ms: u64) {
        self.clock += ms;
    }

    fn file_len(&mut self, path: &str) -> Result<u64, String> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.len() as u64)
            .ok_or_else(|| "No such file or directory (os error 44)".into())
    }
}
