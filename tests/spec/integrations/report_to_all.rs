//! `--report_to all` as HF means it: the integrations whose configuration
//! is present load, the others are named in one line and skipped, and the
//! run trains. Without `MLFLOW_TRACKING_URI`, mlflow writes a local store in
//! its own folder that the real `MlflowClient` reads. A start that fails
//! leaves no empty folders behind.

use crate::util::{readers_python, Run};
use serde_json::Value;
use std::process::Command;

/// The run of the local store at `root`, read by the real mlflow: its info,
/// params, tags and the history of `loss`.
fn read_local_store(root: &std::path::Path) -> Value {
    let script = r#"
import json, sys
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
exps = client.search_experiments()
runs = client.search_runs([e.experiment_id for e in exps])
out = {"experiments": [e.name for e in exps], "runs": []}
for r in runs:
    loss = client.get_metric_history(r.info.run_id, "loss")
    out["runs"].append({"status": r.info.status, "name": r.info.run_name,
        "params": r.data.params, "tags": r.data.tags,
        "loss": [[m.step, m.value] for m in sorted(loss, key=lambda m: m.step)]})
print(json.dumps(out))
"#;
    let output = Command::new(readers_python())
        .arg("-c")
        .arg(script)
        .arg(root)
        // mlflow 3.17 opens a file store only when asked to.
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .output()
        .expect("running the readers' python");
    assert!(
        output.status.success(),
        "MlflowClient could not read {}:\n{}",
        root.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn report_to_all_without_configuration_trains_with_the_local_integrations() {
    let run = Run::regression("report_to_all");
    let trackio = run.dir.join("trackio");
    let done = run
        .args(&["--report_to", "all", "--logging_steps", "8"])
        .env("TRACKIO_DIR", trackio.to_str().unwrap())
        .ok();
    let skipped = "trainbox: --report_to all: not loading comet_ml (set COMET_START_ONLINE=0), dagshub (set MLFLOW_TRACKING_URI=https://dagshub.com/<owner>/<repo>.mlflow), neptune (set NEPTUNE_MODE=offline), wandb (set WANDB_MODE=offline): their configuration is not set";
    assert_eq!(
        done.stderr.matches(skipped).count(),
        1,
        "one line: {}",
        done.stderr
    );
    for loaded in [
        "dvclive",
        "mlflow",
        "tensorboard",
        "codecarbon",
        "clearml",
        "trackio",
    ] {
        // A row of the full table, or an entry of the one-line report.
        let row = format!("{loaded} ");
        let entry = |l: &str| {
            l.strip_prefix("plugins: ").is_some_and(|rest| {
                rest.split(", ")
                    .any(|e| e.starts_with(&format!("{loaded} ")))
            })
        };
        assert!(
            done.stderr.lines().any(|l| l.starts_with(&row) || entry(l)),
            "{loaded} in the report: {}",
            done.stderr
        );
    }
    for skipped in ["wandb", "comet_ml", "neptune", "dagshub"] {
        assert!(
            !done.out.join("plugins").join(skipped).exists(),
            "{skipped} was not started"
        );
    }
    assert!(!done.out.parent().unwrap().join("wandb").exists());

    // mlflow's local store, as HF + mlflow without a tracking URI.
    let store = done.out.join("plugins/mlflow/mlruns");
    let read = read_local_store(&store);
    assert_eq!(
        read["experiments"],
        serde_json::json!(["Default"]),
        "{read}"
    );
    let runs = read["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{read}");
    let r = &runs[0];
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["tags"]["mlflow.runName"], r["name"]);
    assert!(r["params"]["learning_rate"].is_string(), "{r}");
    assert_eq!(r["params"]["per_device_train_batch_size"], "8", "{r}");
    let state = done.state("trainer_state.json");
    let expected: Vec<(u64, f64)> = state["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["step"].as_u64()?, e["loss"].as_f64()?)))
        .collect();
    let got: Vec<(u64, f64)> = r["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(got, expected, "the loss history, step for step");
    assert!(
        done.stdout.contains(&format!(
            "[mlflow] MLFLOW_TRACKING_URI is not set: logging to the local store {}",
            std::path::absolute(&store).unwrap().display()
        )),
        "{}",
        done.stdout
    );
}

#[test]
fn a_failed_start_leaves_no_empty_folders_behind() {
    // wandb without WANDB_MODE refuses to start: the run stops before
    // training, and the folders made for it (and for tensorboard, started
    // before it) are gone.
    let run =
        Run::regression("report_to_failed_start").args(&["--report_to", "tensorboard", "wandb"]);
    let err = run.fails();
    assert!(err.contains("set WANDB_MODE=offline"), "{err}");
    assert!(!run.dir.join("wandb").exists(), "./wandb removed");
    for plugin in ["wandb", "tensorboard"] {
        assert!(
            !run.out().join("plugins").join(plugin).exists(),
            "the folder of {plugin} removed"
        );
    }
}
