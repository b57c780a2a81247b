//! dagshub: `--report_to dagshub` against a real MLflow server in DagsHub's
//! shape (`tools/with-mlflow-server.sh`: mlflow's basic-auth app under the
//! static prefix `/alice/repo.mlflow`, `TRAINBOX_MLFLOW_AUTH_URI`), read
//! back with `MlflowClient` and the admin's credentials: the run, params,
//! every metric, and `HF_DAGSHUB_LOG_ARTIFACTS`' upload of `output_dir`.
//! Also: a wrong password, a stopped server, a URI that is not DagsHub's,
//! and the grants.

use super::mlflow::{
    closed_port, expected_history, faults_of, mlflow_query_at, point_count, unique,
};
use crate::util::{Done, Run};
use serde_json::Value;

/// The DagsHub-shaped server's URI and admin password.
fn auth_server() -> (String, String) {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: the dagshub tests need the basic-auth mlflow server; run them through `make test` (tools/with-mlflow-server.sh starts it)")
        })
    };
    (
        get("TRAINBOX_MLFLOW_AUTH_URI"),
        get("TRAINBOX_MLFLOW_AUTH_PASSWORD"),
    )
}

fn dagshub_run(test: &str) -> Run {
    Run::regression(test).args(&["--report_to", "dagshub", "--logging_steps", "5"])
}

/// A query on the auth server as its admin.
fn query(script: &str, args: &[&str]) -> Value {
    let (uri, password) = auth_server();
    let env = [
        ("MLFLOW_TRACKING_USERNAME", "admin"),
        ("MLFLOW_TRACKING_PASSWORD", password.as_str()),
    ];
    mlflow_query_at(&uri, &env, script, args)
}

#[test]
fn dagshub_logs_the_run_to_the_owner_repo_server_with_basic_auth() {
    let (uri, password) = auth_server();
    assert!(uri.ends_with("/alice/repo.mlflow"), "{uri}");
    let experiment = unique("dagshub_full");
    let run = dagshub_run("dagshub_full");
    // A file larger than the plugin's memory (64 MB; a real model's
    // weights): streamed from the file, never held whole.
    std::fs::create_dir_all(run.out()).unwrap();
    let big: Vec<u8> = (0..80u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(run.out().join("big.bin"), &big).unwrap();
    let done = run
        .args(&["--run_name", "dagshub-run", "--save_steps", "24"])
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_TRACKING_USERNAME", "admin")
        .env("MLFLOW_TRACKING_PASSWORD", &password)
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .env("HF_DAGSHUB_LOG_ARTIFACTS", "1")
        .ok();
    assert_eq!(
        faults_of("dagshub", &done.stderr),
        (0, 0),
        "{}",
        done.stderr
    );
    let runs = query("out = runs_of(sys.argv[2])", &[&experiment]);
    let runs = runs.as_array().expect("the experiment exists");
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run["name"], "dagshub-run");
    assert_eq!(run["status"], "FINISHED");
    assert_eq!(run["params"]["learning_rate"], "5e-05");
    assert_eq!(run["params"]["report_to"], "['dagshub']");
    assert_eq!(run["history"], expected_history(&done));
    // HF_DAGSHUB_LOG_ARTIFACTS: output_dir under artifacts/ at train end.
    let local = done.out.join("checkpoint-24/trainer_state.json");
    let same = query(
        r#"
import filecmp, tempfile
got = client.download_artifacts(sys.argv[2], "artifacts/checkpoint-24/trainer_state.json", tempfile.mkdtemp())
out = filecmp.cmp(got, sys.argv[3], shallow=False)
"#,
        &[run["run_id"].as_str().unwrap(), local.to_str().unwrap()],
    );
    assert_eq!(same, Value::Bool(true));
    let same = query(
        r#"
import filecmp, tempfile
got = client.download_artifacts(sys.argv[2], "artifacts/big.bin", tempfile.mkdtemp())
out = filecmp.cmp(got, sys.argv[3], shallow=False)
"#,
        &[
            run["run_id"].as_str().unwrap(),
            done.out.join("big.bin").to_str().unwrap(),
        ],
    );
    assert_eq!(same, Value::Bool(true), "the 80 MB file, streamed");
}

/// The `[dagshub]` lines of stderr that mention `text`.
fn count(done: &Done, text: &str) -> usize {
    done.stderr
        .lines()
        .filter(|l| l.starts_with("[dagshub]") && l.contains(text))
        .count()
}

#[test]
fn dagshub_with_a_wrong_password_trains_on_and_names_the_variable_once() {
    let (uri, _) = auth_server();
    let done = dagshub_run("dagshub_wrong_password")
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_TRACKING_USERNAME", "admin")
        .env("MLFLOW_TRACKING_PASSWORD", "not-the-password")
        .ok();
    assert_eq!(done.events().last().unwrap()["event"], "on_train_end");
    let refused = format!("[dagshub] {uri} refused the credentials (HTTP 401");
    assert!(done.stderr.contains(&refused), "{}", done.stderr);
    assert!(
        done.stderr.contains("MLFLOW_TRACKING_PASSWORD"),
        "{}",
        done.stderr
    );
    assert_eq!(
        count(&done, "refused the credentials"),
        1,
        "{}",
        done.stderr
    );
    let points = point_count(&expected_history(&done));
    assert!(
        done.stdout.contains(&format!(
            "[dagshub] {points} metrics could not be sent to {uri}: the credentials were refused (HTTP 401)\n"
        )),
        "the count names the cause, the fix is said once: {}",
        done.stdout
    );
    assert_eq!(faults_of("dagshub", &done.stderr), (0, 0));
}

#[test]
fn dagshub_against_a_stopped_server_trains_on_and_reports_once() {
    let uri = format!("http://127.0.0.1:{}/alice/repo.mlflow", closed_port());
    let done = dagshub_run("dagshub_stopped")
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("DAGSHUB_USER_TOKEN", "token")
        .ok();
    assert_eq!(done.events().last().unwrap()["event"], "on_train_end");
    assert_eq!(count(&done, "cannot reach"), 1, "{}", done.stderr);
    let points = point_count(&expected_history(&done));
    assert!(
        done.stdout.contains(&format!(
            "[dagshub] {points} metrics could not be sent to {uri}: connection refused"
        )),
        "{}",
        done.stdout
    );
}

#[test]
fn dagshub_needs_a_dagshub_uri_as_hf_does() {
    let err = dagshub_run("dagshub_plain_uri")
        .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        .fails();
    assert!(
        err.contains(r#"MLFLOW_TRACKING_URI="http://127.0.0.1:9" is not a DagsHub repository's MLflow URI: DagsHubCallback takes the owner and the repository from https://dagshub.com/<owner>/<repo>.mlflow"#),
        "{err}"
    );
    let err = dagshub_run("dagshub_no_uri").fails();
    assert!(
        err.contains(
            "DagsHubCallback requires the `MLFLOW_TRACKING_URI` environment variable to be set"
        ),
        "{err}"
    );
}

#[test]
fn dagshub_loaded_without_grants_fails_at_load_naming_the_grant() {
    let stderr = Run::regression("dagshub_no_grants")
        .plugin("dagshub")
        .fails();
    assert!(
        stderr.contains(r#"plugin dagshub asks for `env MLFLOW_TRACKING_URI`, which is not granted; add plugins.dagshub.env = ["MLFLOW_TRACKING_URI"] to the run config"#),
        "{stderr}"
    );
}
