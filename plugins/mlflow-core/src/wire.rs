//! The MLflow REST API 2.0 as this plugin speaks it: the requests (path and
//! JSON body), the server's limits, and what is read back from replies.
//! Pure functions; `net.rs` sends them.

use crate::metrics::Metric;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

/// The API prefix under the tracking URI.
pub const API: &str = "/api/2.0/mlflow";
/// mlflow's `MAX_METRICS_PER_BATCH`.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// mlflow's `MAX_PARAMS_TAGS_PER_BATCH` (HF chunks params by it too).
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// A batch body stays under this (the server refuses more than 1,000,000 bytes).
pub const MAX_BODY_BYTES: usize = 900_000;

/// An HTTP request relative to the tracking URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    /// Path and query, starting with `/`.
    pub path: String,
    /// JSON, empty for a GET.
    pub body: String,
    /// The file a `PUT` (an artifact upload) sends instead of a JSON body.
    pub upload: Option<Upload>,
}

/// A file to send as a request's body, streamed from the plugin's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The plugin's path of the file.
    pub file: String,
    /// Its size in bytes.
    pub len: u64,
}

fn get(path: String) -> Request {
    Request {
        method: "GET",
        path,
        body: String::new(),
        upload: None,
    }
}

fn post(endpoint: &str, body: Value) -> Request {
    Request {
        method: "POST",
        path: format!("{API}/{endpoint}"),
        body: body.to_string(),
        upload: None,
    }
}

/// What a query value keeps unencoded: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept,
/// the rest as `%XX` of their UTF-8 bytes).
pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// A metric value: JSON number, or the strings mlflow's parser takes for
/// NaN and the infinities (JSON has no literal for them).
fn metric_value(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

fn metric_json(m: &Metric) -> Value {
    json!({"key": m.key, "value": metric_value(m.value), "timestamp": m.timestamp, "step": m.step})
}

/// `GET experiments/get-by-name`.
pub fn get_experiment_by_name(name: &str) -> Request {
    get(format!(
        "{API}/experiments/get-by-name?experiment_name={}",
        url_encode(name)
    ))
}

/// `POST experiments/create`.
pub fn create_experiment(name: &str) -> Request {
    post("experiments/create", json!({ "name": name }))
}

/// `POST runs/create`; the server names the run when `run_name` is none.
pub fn create_run(
    experiment_id: &str,
    start_time: u64,
    run_name: Option<&str>,
    tags: &[(String, String)],
) -> Request {
    let mut body =
        json!({"experiment_id": experiment_id, "start_time": start_time, "tags": tags_json(tags)});
    if let Some(name) = run_name {
        body["run_name"] = json!(name);
    }
    post("runs/create", body)
}

/// The tag each `runs/create` carries: an id the plugin draws once per
/// run, so that a create whose reply was lost can be found, and a duplicate
/// told apart from another process's run.
pub const CREATE_ID_TAG: &str = "trainbox.create_id";

/// The tag of a nested run naming its parent (mlflow's `MLFLOW_PARENT_RUN_ID`).
pub const PARENT_RUN_TAG: &str = "mlflow.parentRunId";

/// `POST runs/search` for the runs created with `create_id` (after a
/// `runs/create` whose reply never came).
pub fn search_run(experiment_id: &str, create_id: &str) -> Request {
    post(
        "runs/search",
        json!({"experiment_ids": [experiment_id], "filter": format!("tags.`{CREATE_ID_TAG}` = '{create_id}'"), "max_results": 10}),
    )
}

/// `POST runs/delete` (MLflow's soft delete: the run can be restored).
pub fn delete_run(run_id: &str) -> Request {
    post("runs/delete", json!({ "run_id": run_id }))
}

/// `GET runs/get`.
pub fn get_run(run_id: &str) -> Request {
    get(format!("{API}/runs/get?run_id={}", url_encode(run_id)))
}

/// `POST runs/update`: a status (RUNNING, FINISHED, FAILED, KILLED), and
/// the end time and a new name when given.
pub fn update_run(
    run_id: &str,
    status: &str,
    end_time: Option<u64>,
    run_name: Option<&str>,
) -> Request {
    let mut body = json!({"run_id": run_id, "status": status});
    if let Some(t) = end_time {
        body["end_time"] = json!(t);
    }
    if let Some(name) = run_name {
        body["run_name"] = json!(name);
    }
    post("runs/update", body)
}

/// `POST runs/log-batch`. The caller keeps within the batch limits
/// ([`chunks`] does).
pub fn log_batch(
    run_id: &str,
    metrics: &[Metric],
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Request {
    let mut body = json!({"run_id": run_id});
    if !metrics.is_empty() {
        body["metrics"] = Value::Array(metrics.iter().map(metric_json).collect());
    }
    if !params.is_empty() {
        body["params"] = tags_json(params);
    }
    if !tags.is_empty() {
        body["tags"] = tags_json(tags);
    }
    post("runs/log-batch", body)
}

/// The JSON size of a metric in a batch body (with its separator).
pub fn metric_size(m: &Metric) -> usize {
    metric_json(m).to_string().len() + 1
}

/// The JSON size of a param or tag in a batch body (with its separator).
pub fn pair_size(p: &(String, String)) -> usize {
    json!({"key": p.0, "value": p.1}).to_string().len() + 1
}

/// Splits `items` into runs of at most `max_count` items and about
/// `max_bytes` bytes (an item larger than that goes alone).
pub fn chunks<T>(
    items: Vec<T>,
    max_count: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item);
        match out.last_mut() {
            Some(last) if last.len() < max_count && bytes + n <= max_bytes => {
                bytes += n;
                last.push(item);
            }
            _ => {
                bytes = n;
                out.push(vec![item]);
            }
        }
    }
    out
}

/// An error reply: HTTP status, mlflow's `error_code` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "HTTP {} {code}: {}", self.status, self.message),
            None => write!(f, "HTTP {}: {}", self.status, self.message),
        }
    }
}

impl ApiError {
    /// Reads an error reply; a body that is not mlflow's JSON is quoted (cut short).
    pub fn parse(status: u16, body: &str) -> ApiError {
        let json: Option<Value> = serde_json::from_str(body).ok();
        let field = |k: &str| {
            json.as_ref()
                .and_then(|j| j.get(k))
                .and_then(Value::as_str)
                .map(String::from)
        };
        let message = field("message").unwrap_or_else(|| {
            let text = body.trim();
            let cut: String = text.chars().take(200).collect();
            if cut.is_empty() {
                "(empty reply)".into()
            } else if cut.len() < text.len() {
                format!("{cut}…")
            } else {
                cut
            }
        });
        ApiError {
            status,
            code: field("error_code"),
            message,
        }
    }

    /// Whether asking again later may succeed (server trouble, throttling).
    pub fn is_transient(&self) -> bool {
        self.status >= 500 || matches!(self.status, 408 | 429)
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

fn parse(body: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| format!("a reply that is not JSON ({e})"))
}

fn text_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// An experiment as `get-by-name` returns it: (id, lifecycle stage).
pub fn experiment(body: &str) -> Result<(String, String), String> {
    let v = parse(body)?;
    let id =
        text_at(&v, &["experiment", "experiment_id"]).ok_or("no experiment_id in the reply")?;
    let stage = text_at(&v, &["experiment", "lifecycle_stage"]).unwrap_or("active");
    Ok((id.to_string(), stage.to_string()))
}

/// The id `experiments/create` returns.
pub fn created_experiment(body: &str) -> Result<String, String> {
    let v = parse(body)?;
    text_at(&v, &["experiment_id"])
        .map(String::from)
        .ok_or_else(|| "no experiment_id in the reply".into())
}

/// The run id and artifact URI `runs/create` returns.
pub fn created_run(body: &str) -> Result<(String, String), String> {
    let v = parse(body)?;
    let id = text_at(&v, &["run", "info", "run_id"]).ok_or("no run.info.run_id in the reply")?;
    let artifacts = text_at(&v, &["run", "info", "artifact_uri"]).unwrap_or_default();
    Ok((id.to_string(), artifacts.to_string()))
}

/// The artifact proxy's API under the tracking URI (`mlflow server
/// --serve-artifacts`, the default since mlflow 2).
pub const ARTIFACTS_API: &str = "/api/2.0/mlflow-artifacts/artifacts";

/// The path under [`ARTIFACTS_API`] of a run whose `artifact_uri` is
/// proxied (`mlflow-artifacts:/1/<run>/artifacts`, or with an authority
/// `mlflow-artifacts://host:port/…`), or why a plugin cannot upload to it.
pub fn artifact_root(artifact_uri: &str) -> Result<String, String> {
    let not_proxied = || {
        format!("the run's artifact_uri is {artifact_uri:?}, which the server does not proxy, so a plugin cannot upload to it; start the server with --serve-artifacts --artifacts-destination DIR (not --default-artifact-root)")
    };
    let rest = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .ok_or_else(not_proxied)?;
    let path = match rest.strip_prefix("//") {
        Some(with_authority) => with_authority.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    Ok(path.trim_matches('/').to_string())
}

/// What a path segment keeps unencoded.
const SEGMENT: &AsciiSet = &UNRESERVED.remove(b'/');

/// `PUT` of one file (`upload`) as the artifact `path` of the run whose
/// artifact root is `root` ([`artifact_root`]).
pub fn upload_artifact(root: &str, path: &str, upload: Upload) -> Request {
    let full = if root.is_empty() {
        path.to_string()
    } else {
        format!("{root}/{path}")
    };
    Request {
        method: "PUT",
        path: format!("{ARTIFACTS_API}/{}", utf8_percent_encode(&full, SEGMENT)),
        body: String::new(),
        upload: Some(upload),
    }
}

/// A run as `runs/get` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub experiment_id: String,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
    pub params: Vec<(String, String)>,
}

/// Reads `runs/get`.
pub fn run_info(body: &str) -> Result<RunInfo, String> {
    let v = parse(body)?;
    let experiment_id = text_at(&v, &["run", "info", "experiment_id"])
        .ok_or("no run.info.experiment_id in the reply")?;
    let stage = text_at(&v, &["run", "info", "lifecycle_stage"]).unwrap_or("active");
    let params = v["run"]["data"]["params"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| Some((p["key"].as_str()?.into(), p["value"].as_str()?.into())))
                .collect()
        })
        .unwrap_or_default();
    Ok(RunInfo {
        experiment_id: experiment_id.into(),
        artifact_uri: text_at(&v, &["run", "info", "artifact_uri"])
            .unwrap_or_default()
            .into(),
        lifecycle_stage: stage.into(),
        params,
    })
}

/// The (id, artifact URI) of the runs `runs/search` found, in its order.
pub fn found_runs(body: &str) -> Result<Vec<(String, String)>, String> {
    let v = parse(body)?;
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    Ok(runs
        .iter()
        .filter_map(|r| {
            let id = text_at(r, &["info", "run_id"])?;
            let artifacts = text_at(r, &["info", "artifact_uri"]).unwrap_or_default();
            Some((id.to_string(), artifacts.to_string()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Request) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn experiment_names_are_url_encoded() {
        let r = get_experiment_by_name("my exp/ü&x");
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.path,
            "/api/2.0/mlflow/experiments/get-by-name?experiment_name=my%20exp%2F%C3%BC%26x"
        );
    }

    #[test]
    fn create_run_has_name_and_tags() {
        let r = create_run("3", 1700, Some("demo"), &[("team".into(), "nlp".into())]);
        assert_eq!(r.path, "/api/2.0/mlflow/runs/create");
        assert_eq!(
            body(&r),
            json!({"experiment_id": "3", "start_time": 1700, "run_name": "demo", "tags": [{"key": "team", "value": "nlp"}]})
        );
        assert!(body(&create_run("3", 1, None, &[]))
            .get("run_name")
            .is_none());
    }

    #[test]
    fn log_batch_writes_non_finite_values_as_strings() {
        let m = |key: &str, value| Metric {
            key: key.into(),
            value,
            timestamp: 5,
            step: 2,
        };
        let r = log_batch(
            "r1",
            &[
                m("loss", 0.25),
                m("a", f64::NAN),
                m("b", f64::INFINITY),
                m("c", f64::NEG_INFINITY),
            ],
            &[("lr".into(), "5e-05".into())],
            &[],
        );
        let b = body(&r);
        assert_eq!(
            b["metrics"][0],
            json!({"key": "loss", "value": 0.25, "timestamp": 5, "step": 2})
        );
        assert_eq!(b["metrics"][1]["value"], "NaN");
        assert_eq!(b["metrics"][2]["value"], "Infinity");
        assert_eq!(b["metrics"][3]["value"], "-Infinity");
        assert_eq!(b["params"], json!([{"key": "lr", "value": "5e-05"}]));
        assert!(b.get("tags").is_none());
        assert_eq!(
            metric_size(&m("loss", 0.25)),
            b["metrics"][0].to_string().len() + 1
        );
    }

    #[test]
    fn update_run_sets_status_end_time_and_name() {
        assert_eq!(
            body(&update_run("r", "FAILED", Some(9), None)),
            json!({"run_id": "r", "status": "FAILED", "end_time": 9})
        );
        assert_eq!(
            body(&update_run("r", "RUNNING", None, Some("again"))),
            json!({"run_id": "r", "status": "RUNNING", "run_name": "again"})
        );
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let c = chunks((0..250).collect(), 100, usize::MAX, |_| 1);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50]);
        let c = chunks(vec![5, 5, 5, 20, 1], 100, 10, |n| *n);
        assert_eq!(c, [vec![5, 5], vec![5], vec![20], vec![1]]);
        assert!(chunks(Vec::<u8>::new(), 100, 10, |_| 1).is_empty());
    }

    #[test]
    fn errors_are_read_from_mlflow_json_or_quoted() {
        let e = ApiError::parse(
            404,
            r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Could not find experiment"}"#,
        );
        assert!(e.is("RESOURCE_DOES_NOT_EXIST") && !e.is_transient());
        assert_eq!(
            e.to_string(),
            "HTTP 404 RESOURCE_DOES_NOT_EXIST: Could not find experiment"
        );
        let e = ApiError::parse(
            403,
            "Invalid Host header - possible DNS rebinding attack detected",
        );
        assert_eq!(e.code, None);
        assert_eq!(
            e.message,
            "Invalid Host header - possible DNS rebinding attack detected"
        );
        assert!(ApiError::parse(503, "").is_transient());
        assert!(ApiError::parse(429, "").is_transient());
        assert_eq!(
            ApiError::parse(500, &"x".repeat(300))
                .message
                .chars()
                .count(),
            201
        );
    }

    #[test]
    fn artifacts_go_through_the_proxy_only() {
        assert_eq!(
            artifact_root("mlflow-artifacts:/1/abc/artifacts").unwrap(),
            "1/abc/artifacts"
        );
        assert_eq!(
            artifact_root("mlflow-artifacts://127.0.0.1:5000/1/abc/artifacts").unwrap(),
            "1/abc/artifacts"
        );
        let err = artifact_root("/tmp/mlruns/1/abc/artifacts").unwrap_err();
        assert!(err.contains("--serve-artifacts"), "{err}");
        assert!(artifact_root("s3://bucket/1/abc").is_err());
        let file = Upload {
            file: "/output/checkpoint-8/a b.json".into(),
            len: 2,
        };
        let r = upload_artifact("1/abc/artifacts", "checkpoint-8/a b.json", file.clone());
        assert_eq!(r.method, "PUT");
        assert_eq!(
            r.path,
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/checkpoint-8/a%20b.json"
        );
        assert_eq!(r.upload, Some(file));
    }

    #[test]
    fn replies_are_read() {
        assert_eq!(
            experiment(r#"{"experiment": {"experiment_id": "7", "name": "x", "lifecycle_stage": "deleted"}}"#).unwrap(),
            ("7".to_string(), "deleted".to_string())
        );
        assert_eq!(
            created_experiment(r#"{"experiment_id": "8"}"#).unwrap(),
            "8"
        );
        assert_eq!(
            created_run(r#"{"run": {"info": {"run_id": "abc", "artifact_uri": "mlflow-artifacts:/0/abc/artifacts"}}}"#).unwrap(),
            ("abc".to_string(), "mlflow-artifacts:/0/abc/artifacts".to_string())
        );
        assert!(created_run("{}").is_err());
        let info = run_info(
            r#"{"run": {"info": {"experiment_id": "2", "lifecycle_stage": "active"}, "data": {"params": [{"key": "a", "value": "1"}]}}}"#,
        )
        .unwrap();
        assert_eq!(info.params, [("a".to_string(), "1".to_string())]);
        let found = r#"{"runs": [{"info": {"run_id": "r1", "run_name": "x"}}, {"info": {"run_id": "r2", "run_name": "mine"}}]}"#;
        let ids: Vec<String> = found_runs(found)
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(ids, ["r1", "r2"]);
        assert!(found_runs("{}").unwrap().is_empty());
        let search = search_run("3", "ab12");
        assert_eq!(
            serde_json::from_str::<Value>(&search.body).unwrap()["filter"],
            "tags.`trainbox.create_id` = 'ab12'"
        );
    }
}
