//! mlflow: `--report_to mlflow` against a real MLflow tracking server
//! (`tools/with-mlflow-server.sh`, which `make test` runs the tests under and
//! which exports `TRAINBOX_MLFLOW_URI`), read back with mlflow's own
//! `MlflowClient`: the experiment, the run, its name, status, params and
//! tags, and the full history of every metric against `trainer_state.json`.
//! Also: a resumed run (`MLFLOW_RUN_ID`), a server that is not there, an
//! aborted run, and the grants.

use crate::util::{readers_python, Done, Run};
use serde_json::{json, Value};
use std::process::Command;

/// The tracking server's URI, or a failure that says how to get one.
pub(super) fn server() -> String {
    std::env::var("TRAINBOX_MLFLOW_URI").unwrap_or_else(|_| {
        panic!(
            "TRAINBOX_MLFLOW_URI is not set: the mlflow tests need a tracking server; run them through `make test` \
             (or `tools/with-mlflow-server.sh $TRAINBOX_CACHE/readers-env/bin/mlflow cargo test --release --test spec integrations::mlflow`)"
        )
    })
}

/// A name no other test, and no earlier run on the same server, used.
pub(super) fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// Python helpers every query starts with: `client` on the server
/// (`sys.argv[1]`) and `run_json(run)`: info, params, tags and the history
/// of every metric as sorted [step, value] pairs.
const PRELUDE: &str = r#"
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
def run_json(run):
    history = {}
    for key in run.data.metrics:
        points = client.get_metric_history(run.info.run_id, key)
        history[key] = [[m.step, m.value] for m in sorted(points, key=lambda m: (m.step, m.timestamp))]
    return {"run_id": run.info.run_id, "name": run.info.run_name, "status": run.info.status,
            "experiment_id": run.info.experiment_id, "params": run.data.params,
            "tags": run.data.tags, "history": history}
def runs_of(experiment_name):
    exp = client.get_experiment_by_name(experiment_name)
    return [run_json(r) for r in client.search_runs([exp.experiment_id])] if exp else None
"#;

/// Runs `script` after [`PRELUDE`] with `args` after the server's URI; the
/// script sets `out`, which comes back as JSON.
pub(super) fn mlflow_query(script: &str, args: &[&str]) -> Value {
    mlflow_query_at(&server(), &[], script, args)
}

/// [`mlflow_query`] against the server at `uri`, with `env` (credentials).
pub(super) fn mlflow_query_at(
    uri: &str,
    env: &[(&str, &str)],
    script: &str,
    args: &[&str],
) -> Value {
    let program = format!("{PRELUDE}\n{script}\nprint(json.dumps(out))\n");
    let output = Command::new(readers_python())
        .arg("-c")
        .arg(&program)
        .arg(uri)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running the readers' python");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "the MlflowClient query failed:\n{stderr}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad query output ({e}):\n{stdout}\n{stderr}"))
}

/// The runs of an experiment, by name (null when it does not exist).
pub(super) fn runs_of(experiment: &str) -> Value {
    mlflow_query("out = runs_of(sys.argv[2])", &[experiment])
}

/// What `log_history` says MLflow must hold: for each metric key, its
/// [step, value] points in step order (every number of every entry, the
/// `step` field excepted, as HF's `on_log` receives them).
pub(super) fn expected_history(done: &Done) -> Value {
    let state = done.state("trainer_state.json");
    let mut history = serde_json::Map::new();
    for entry in state["log_history"].as_array().unwrap() {
        let step = entry["step"].clone();
        for (key, value) in entry.as_object().unwrap() {
            if key != "step" && value.is_number() {
                let points = history.entry(key.clone()).or_insert_with(|| json!([]));
                points.as_array_mut().unwrap().push(json!([step, value]));
            }
        }
    }
    Value::Object(history)
}

/// The number of metric points a run logs.
pub(super) fn point_count(history: &Value) -> usize {
    history
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_array().unwrap().len())
        .sum()
}

/// The plugin report's row of `mlflow`: (faults, restarts).
pub(super) fn faults(done_stderr: &str) -> (u64, u64) {
    faults_of("mlflow", done_stderr)
}

/// The plugin report's row of `plugin`: (faults, restarts); (0, 0) when
/// the report is its one line (no plugin faulted, restarted or was slow).
pub(super) fn faults_of(plugin: &str, done_stderr: &str) -> (u64, u64) {
    let listed = done_stderr
        .lines()
        .find_map(|l| l.strip_prefix("plugins: "))
        .and_then(|l| l.split("; ").next())
        .is_some_and(|list| {
            list.split(", ")
                .any(|each| each.split_whitespace().next() == Some(plugin))
        });
    if listed {
        return (0, 0);
    }
    let row = done_stderr
        .lines()
        .find(|l| l.split_whitespace().next() == Some(plugin))
        .unwrap_or_else(|| panic!("no report row for {plugin}:\n{done_stderr}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    (f[5].parse().unwrap(), f[6].parse().unwrap())
}

/// The training arguments the host keeps to itself (not in the WIT record).
fn host_only_args() -> Vec<&'static str> {
    trainbox_pyformat::args::TRAINING_ARGS
        .iter()
        .filter(|f| !f.in_wit)
        .map(|f| f.name)
        .collect()
}

/// A regression run (log every 5 steps, evaluate every epoch) reporting to MLflow.
pub(super) fn mlflow_run(test: &str) -> Run {
    Run::regression(test).args(&[
        "--report_to",
        "mlflow",
        "--logging_steps",
        "5",
        "--eval_strategy",
        "epoch",
    ])
}

/// A port on 127.0.0.1 where nothing listens.
pub(super) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn mlflow_logs_the_experiment_run_params_tags_and_every_metric() {
    let uri = server();
    let experiment = unique("mlflow_full");
    let done = mlflow_run("mlflow_full")
        .args(&["--run_name", "trainbox-full", "--save_steps", "8"])
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .env("MLFLOW_TAGS", r#"{"team": "nlp", "attempt": 3}"#)
        .ok();
    assert_eq!(faults(&done.stderr), (0, 0), "{}", done.stderr);
    assert!(
        !done.stdout.contains("could not be sent"),
        "{}",
        done.stdout
    );

    let runs = runs_of(&experiment);
    let runs = runs.as_array().expect("the experiment exists");
    assert_eq!(runs.len(), 1, "one run: {runs:?}");
    let run = &runs[0];
    assert_eq!(run["name"], "trainbox-full");
    assert_eq!(run["status"], "FINISHED");
    assert!(
        done.stdout.contains(&format!(
            "[mlflow] run {}: {} metrics logged, ended FINISHED",
            run["run_id"].as_str().unwrap(),
            point_count(&run["history"])
        )),
        "{}",
        done.stdout
    );

    // Tags: MLFLOW_TAGS, values as Python's str().
    assert_eq!(run["tags"]["team"], "nlp");
    assert_eq!(run["tags"]["attempt"], "3");
    assert_eq!(run["tags"]["mlflow.runName"], "trainbox-full");

    // Params: str(value) of every training argument, as training_args.json
    // (HF's args.to_dict()) holds them.
    let args_file = done.out.join("checkpoint-24/training_args.json");
    let expected = mlflow_query(
        "out = {k: str(v) for k, v in json.load(open(sys.argv[2])).items()}",
        &[args_file.to_str().unwrap()],
    );
    let params = run["params"].as_object().unwrap();
    for (key, value) in expected.as_object().unwrap() {
        if host_only_args().contains(&key.as_str()) {
            continue; // not a TrainingArguments field the plugin sees
        }
        assert_eq!(params.get(key), Some(value), "param {key}: {params:?}");
    }
    assert_eq!(
        params.len(),
        expected.as_object().unwrap().len() - host_only_args().len(),
        "{params:?}"
    );
    assert_eq!(params["learning_rate"], "5e-05");
    assert_eq!(params["report_to"], "['mlflow']");

    // Metrics: the full history of each, raw keys, step = global_step.
    let history = &run["history"];
    assert_eq!(history, &expected_history(&done));
    let loss_steps: Vec<u64> = history["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect();
    assert_eq!(loss_steps, [5, 10, 15, 20]);
    assert_eq!(history["eval_loss"].as_array().unwrap().len(), 3);
    assert!(history.get("train_loss").is_some() && history.get("train/loss").is_none());
}

#[test]
fn mlflow_without_an_experiment_name_logs_to_default_and_caps_params() {
    let uri = server();
    let name = unique("mlflow_default");
    mlflow_run("mlflow_default")
        .args(&["--run_name", &name])
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_MAX_LOG_PARAMS", "3")
        .ok();
    let runs = mlflow_query(
        "out = [run_json(r) for r in client.search_runs(['0'], filter_string=f\"attributes.run_name = '{sys.argv[2]}'\")]",
        &[&name],
    );
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["experiment_id"], "0", "the Default experiment");
    assert_eq!(
        runs[0]["params"].as_object().unwrap().len(),
        3,
        "MLFLOW_MAX_LOG_PARAMS=3"
    );
    assert_eq!(runs[0]["status"], "FINISHED");
}

#[test]
fn mlflow_resumes_the_run_of_mlflow_run_id() {
    let uri = server();
    let experiment = unique("mlflow_resume");
    // A finished run with a param of another value and one loss point.
    let first = mlflow_query(
        r#"
exp = client.create_experiment(sys.argv[2])
run = client.create_run(exp, run_name="first")
client.log_param(run.info.run_id, "learning_rate", "0.001")
client.log_metric(run.info.run_id, "loss", 99.0, step=0)
client.set_terminated(run.info.run_id)
out = run.info.run_id
"#,
        &[&experiment],
    );
    let run_id = first.as_str().unwrap();
    let done = mlflow_run("mlflow_resume")
        .args(&["--run_name", "resumed"])
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_RUN_ID", run_id)
        .env("MLFLOW_TAGS", r#"{"phase": "two"}"#)
        .ok();
    assert!(
        done.stderr.contains(
            r#"[mlflow] param learning_rate of the resumed run stays "0.001" (MLflow does not allow changing a param; this run has "5e-05")"#
        ),
        "{}",
        done.stderr
    );
    let runs = runs_of(&experiment);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "no new run: {runs:?}");
    let run = &runs[0];
    assert_eq!(run["run_id"], run_id);
    assert_eq!(
        run["name"], "resumed",
        "renamed as HF's start_run(run_name=…) does"
    );
    assert_eq!(run["status"], "FINISHED");
    assert_eq!(run["params"]["learning_rate"], "0.001");
    assert_eq!(run["params"]["seed"], "42");
    assert_eq!(run["tags"]["phase"], "two");
    let mut loss = vec![json!([0, 99.0])];
    loss.extend(
        expected_history(&done)["loss"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    assert_eq!(run["history"]["loss"], Value::Array(loss));
}

#[test]
fn mlflow_against_a_stopped_server_trains_on_and_counts_what_was_not_sent() {
    let uri = format!("http://127.0.0.1:{}", closed_port());
    let started = std::time::Instant::now();
    let done = mlflow_run("mlflow_stopped")
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_EXPERIMENT_NAME", "never-created")
        .ok();
    let took = started.elapsed();
    assert_eq!(done.events().last().unwrap()["event"], "on_train_end");
    assert_eq!(faults(&done.stderr), (0, 0), "{}", done.stderr);
    let points = point_count(&expected_history(&done));
    assert!(
        done.stdout.contains(&format!(
            "[mlflow] {points} metrics could not be sent to {uri}: connection refused"
        )),
        "{}",
        done.stdout
    );
    assert_eq!(
        done.stderr
            .matches(&format!("[mlflow] cannot reach {uri}"))
            .count(),
        1,
        "reported once: {}",
        done.stderr
    );
    assert!(took.as_secs() < 30, "a dead server cost {took:?}");
}

#[test]
fn mlflow_run_of_an_aborted_training_ends_failed() {
    let uri = server();
    let experiment = unique("mlflow_abort");
    let run = Run::regression("mlflow_abort")
        .args(&["--report_to", "mlflow", "--logging_steps", "1"])
        .plugin("hostile")
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_EXPERIMENT_NAME", &experiment);
    std::fs::write(
        run.dir.join("run.toml"),
        "[plugins.hostile]\non_error = \"abort\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = run
        .args(&[
            "--config",
            "run.toml",
            "--plugin_config",
            "hostile.mode=panic",
        ])
        .outcome();
    assert!(!ok, "on_error = abort stops the run");
    assert!(
        stderr.contains("aborting the run (on_error = abort)"),
        "{stderr}"
    );
    let runs = runs_of(&experiment);
    let run = &runs[0];
    assert_eq!(run["status"], "FAILED", "{stderr}");
    let steps: Vec<u64> = run["history"]["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2], "the logs before the abort (step 3)");
}

#[test]
fn mlflow_loaded_without_grants_fails_at_load_naming_the_grant() {
    let stderr = Run::regression("mlflow_no_grants").plugin("mlflow").fails();
    assert!(
        stderr.contains(r#"plugin mlflow asks for `env MLFLOW_TRACKING_URI`, which is not granted; add plugins.mlflow.env = ["MLFLOW_TRACKING_URI"] to the run config"#),
        "{stderr}"
    );
}

/// Every variable the mlflow plugin declares, as a run config's `env` list.
pub fn granted_env() -> String {
    let vars = [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_TAGS",
        "MLFLOW_NESTED_RUN",
        "MLFLOW_RUN_ID",
        "MLFLOW_FLATTEN_PARAMS",
        "MLFLOW_MAX_LOG_PARAMS",
        "HF_MLFLOW_LOG_ARTIFACTS",
        "DISABLE_MLFLOW_INTEGRATION",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
    ];
    vars.map(|v| format!("{v:?}")).join(", ")
}

#[test]
fn mlflow_denied_http_names_the_grant_and_training_goes_on() {
    let run = Run::regression("mlflow_denied").plugin("mlflow");
    let env = granted_env();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.mlflow]\npath = {:?}\nenv = [{env}]\n",
            crate::util::plugin("mlflow").to_str().unwrap()
        ),
    )
    .unwrap();
    let done = run
        .args(&["--config", "run.toml", "--logging_steps", "5"])
        .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        .ok();
    assert!(
        done.stderr.contains(
            r#"[mlflow] HTTP to http://127.0.0.1:9 is not granted to this plugin; add plugins.mlflow.allow_http = ["http://127.0.0.1:9"] to the run config"#
        ),
        "{}",
        done.stderr
    );
    let points = point_count(&expected_history(&done));
    assert!(
        done.stdout.contains(&format!(
            "[mlflow] {points} metrics could not be sent to http://127.0.0.1:9"
        )),
        "{}",
        done.stdout
    );
    assert_eq!(faults(&done.stderr), (0, 0));
}

#[test]
fn mlflow_tags_that_are_not_a_json_object_stop_the_run_with_the_fix() {
    let stderr = Run::regression("mlflow_bad_tags")
        .args(&["--report_to", "mlflow"])
        .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        .env("MLFLOW_TAGS", "team=nlp")
        .fails();
    assert!(
        stderr.contains(r#"MLFLOW_TAGS="team=nlp" is not valid JSON"#)
            && stderr.contains(
                r#"set it to a JSON object, e.g. MLFLOW_TAGS='{"team": "nlp", "stage": "dev"}'"#
            ),
        "{stderr}"
    );
}
