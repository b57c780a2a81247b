//! azure_ml: `--report_to azure_ml` through the MLflow REST API of an Azure
//! ML workspace URI, against a real `mlflow server` under the workspace's
//! static prefix (`tools/with-mlflow-server.sh`, `TRAINBOX_MLFLOW_AZURE_URI`)
//! behind a capturing proxy that records each request's path and
//! `Authorization` header; read back with `MlflowClient`. Also HF's offline
//! fallback (outside Azure ML: printed), and the grants.

use super::mlflow::{expected_history, faults_of, mlflow_query_at, unique};
use crate::util::Run;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The workspace-prefixed server's URI.
fn azure_server() -> String {
    std::env::var("TRAINBOX_MLFLOW_AZURE_URI").unwrap_or_else(|_| {
        panic!("TRAINBOX_MLFLOW_AZURE_URI is not set: the azure_ml tests need the prefixed mlflow server; run them through `make test` (tools/with-mlflow-server.sh starts it)")
    })
}

/// (method, path, Authorization header) of each request the proxy passed on.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A proxy on 127.0.0.1 that passes each request to `upstream`
/// (`host:port`) with `connection: close`, and records it.
fn capturing_proxy(upstream: String) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (log, upstream) = (log.clone(), upstream.clone());
            std::thread::spawn(move || {
                let _ = pass(client, &upstream, &log);
            });
        }
    });
    (port, seen)
}

fn pass(client: TcpStream, upstream: &str, log: &Seen) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let (mut head, mut length, mut auth) = (first.clone(), 0, String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("authorization:") {
            auth = line["authorization:".len()..].trim().to_string();
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("connection: close\r\n\r\n");
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    log.lock()
        .unwrap()
        .push((method.to_string(), path.to_string(), auth));
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(head.as_bytes())?;
    up.write_all(&body)?;
    let mut reply = Vec::new();
    up.read_to_end(&mut reply)?;
    let mut client = client;
    client.write_all(&reply)
}

#[test]
fn azure_ml_logs_through_the_workspace_uri_with_the_bearer_token() {
    let server = azure_server();
    let rest = server.strip_prefix("http://").unwrap();
    let (authority, prefix) = rest.split_at(rest.find('/').unwrap());
    assert!(prefix.ends_with("/workspaces/ws1"), "{prefix}");
    let (port, seen) = capturing_proxy(authority.to_string());
    let uri = format!("azureml+http://127.0.0.1:{port}{prefix}");
    let experiment = unique("azure_ml");
    let done = Run::regression("azure_ml")
        .args(&["--report_to", "azure_ml", "--logging_steps", "5"])
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_TRACKING_TOKEN", "aad-token-123")
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .ok();
    assert_eq!(
        faults_of("azure_ml", &done.stderr),
        (0, 0),
        "{}",
        done.stderr
    );
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 4, "{seen:?}");
    for (method, path, auth) in &seen {
        assert!(
            path.starts_with(&format!("{prefix}/api/2.0/mlflow/")),
            "{method} {path}"
        );
        assert_eq!(auth, "Bearer aad-token-123", "{method} {path}");
    }
    let endpoints: Vec<&str> = seen.iter().map(|(_, p, _)| &p[prefix.len()..]).collect();
    assert!(
        endpoints.contains(&"/api/2.0/mlflow/runs/create"),
        "{endpoints:?}"
    );
    assert!(
        endpoints.contains(&"/api/2.0/mlflow/runs/log-batch"),
        "{endpoints:?}"
    );

    let runs = mlflow_query_at(&server, &[], "out = runs_of(sys.argv[2])", &[&experiment]);
    let runs = runs.as_array().expect("the experiment exists");
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run["status"], "FINISHED");
    // AzureMLCallback logs the numbers of each log, raw keys, nothing else.
    assert_eq!(run["params"], serde_json::json!({}));
    assert_eq!(run["history"], expected_history(&done));
}

#[test]
fn azure_ml_outside_azure_prints_what_azuremls_offline_run_prints() {
    let done = Run::regression("azure_ml_offline")
        .args(&["--report_to", "azure_ml", "--logging_steps", "5"])
        .ok();
    let state = done.state("trainer_state.json");
    let mut expected = Vec::new();
    for entry in state["log_history"].as_array().unwrap() {
        for (key, value) in entry.as_object().unwrap() {
            if key != "step" && value.is_number() {
                expected.push(format!("[azure_ml] Attempted to log scalar metric {key}:"));
            }
        }
    }
    let mut printed: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("[azure_ml] Attempted to log scalar metric"))
        .collect();
    // Each log's keys in its order (the JSON read here sorts them).
    assert_eq!(
        printed[..4],
        [
            "[azure_ml] Attempted to log scalar metric loss:",
            "[azure_ml] Attempted to log scalar metric grad_norm:",
            "[azure_ml] Attempted to log scalar metric learning_rate:",
            "[azure_ml] Attempted to log scalar metric epoch:",
        ]
    );
    printed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(printed, expected);
    // The value on the next line, as Python prints it.
    let lines: Vec<&str> = done.stdout.lines().collect();
    let i = lines
        .iter()
        .position(|l| *l == "[azure_ml] Attempted to log scalar metric loss:")
        .unwrap();
    let first_loss = state["log_history"][0]["loss"].as_f64().unwrap();
    let value: f64 = lines[i + 1]
        .trim_start_matches("[azure_ml] ")
        .parse()
        .unwrap();
    assert_eq!(value, first_loss);
    assert!(
        done.stderr
            .contains("MLFLOW_TRACKING_URI is not an azureml:// workspace URI"),
        "{}",
        done.stderr
    );
}

#[test]
fn azure_ml_loaded_without_grants_fails_at_load_naming_the_grant() {
    let stderr = Run::regression("azure_ml_no_grants")
        .plugin("azure_ml")
        .fails();
    assert!(
        stderr.contains(r#"plugin azure_ml asks for `env MLFLOW_TRACKING_URI`, which is not granted; add plugins.azure_ml.env = ["MLFLOW_TRACKING_URI"] to the run config"#),
        "{stderr}"
    );
}
