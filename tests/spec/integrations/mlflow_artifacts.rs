//! mlflow, what the first tests left out: checkpoints as artifacts
//! (`HF_MLFLOW_LOG_ARTIFACTS`, uploaded through the server's artifact proxy
//! and downloaded back by `MlflowClient`), nested runs
//! (`MLFLOW_NESTED_RUN`), flattened params (`MLFLOW_FLATTEN_PARAMS`).

use super::mlflow::{expected_history, mlflow_query, mlflow_run, runs_of, server, unique};

/// Downloads every `checkpoint-N` the run logged and compares it, file by
/// file and byte by byte, with `out/checkpoint-N`; `out` is the list of
/// checkpoints compared, with their file counts.
const COMPARE_CHECKPOINTS: &str = r#"
import filecmp, os, tempfile
run_id, out_dir = sys.argv[2], sys.argv[3]
logged = sorted(a.path for a in client.list_artifacts(run_id))
result = {}
for name in logged:
    dst = tempfile.mkdtemp()
    got = client.download_artifacts(run_id, name, dst)
    local = os.path.join(out_dir, name)
    files = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local) for f in fs)
    down = sorted(os.path.relpath(os.path.join(d, f), got) for d, _, fs in os.walk(got) for f in fs)
    assert files == down, (name, files, down)
    for f in files:
        assert filecmp.cmp(os.path.join(local, f), os.path.join(got, f), shallow=False), (name, f)
    result[name] = len(files)
out = result
"#;

#[test]
fn mlflow_uploads_each_checkpoint_and_mlflow_downloads_it_byte_equal() {
    let experiment = unique("mlflow_artifacts");
    let done = mlflow_run("mlflow_artifacts")
        .args(&["--save_steps", "8"])
        .env("MLFLOW_TRACKING_URI", &server())
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .env("HF_MLFLOW_LOG_ARTIFACTS", "TRUE")
        .env("MLFLOW_FLATTEN_PARAMS", "1")
        .ok();
    let runs = runs_of(&experiment);
    let run = &runs[0];
    let run_id = run["run_id"].as_str().unwrap();
    let compared = mlflow_query(COMPARE_CHECKPOINTS, &[run_id, done.out.to_str().unwrap()]);
    let compared = compared.as_object().unwrap();
    let names: Vec<&str> = compared.keys().map(String::as_str).collect();
    assert_eq!(names, ["checkpoint-16", "checkpoint-24", "checkpoint-8"]);
    let files: u64 = compared.values().map(|n| n.as_u64().unwrap()).sum();
    assert!(files >= 9, "a checkpoint holds several files: {compared:?}");
    assert!(
        done.stdout.contains(&format!(
            "[mlflow] run {run_id}: {} metrics logged, {files} artifact files uploaded, ended FINISHED",
            super::mlflow::point_count(&run["history"])
        )),
        "{}",
        done.stdout
    );
    assert_eq!(run["history"], expected_history(&done));

    // MLFLOW_FLATTEN_PARAMS: HF's flatten_dict of args.to_dict() (whose
    // values here are never dicts, so the params are the same).
    let args_file = done.out.join("checkpoint-24/training_args.json");
    let flat = mlflow_query(
        r#"
def flatten_dict(d, parent_key="", delimiter="."):
    out = {}
    for k, v in d.items():
        key = str(parent_key) + delimiter + str(k) if parent_key else k
        if v and isinstance(v, dict):
            out.update(flatten_dict(v, key, delimiter))
        else:
            out[key] = v
    return out
out = {k: str(v) for k, v in flatten_dict(json.load(open(sys.argv[2]))).items()}
"#,
        &[args_file.to_str().unwrap()],
    );
    for (key, value) in run["params"].as_object().unwrap() {
        assert_eq!(flat.get(key), Some(value), "param {key}");
    }
}

#[test]
fn mlflow_without_hf_mlflow_log_artifacts_uploads_nothing() {
    let experiment = unique("mlflow_no_artifacts");
    mlflow_run("mlflow_no_artifacts")
        .args(&["--save_steps", "8"])
        .env("MLFLOW_TRACKING_URI", &server())
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .env("HF_MLFLOW_LOG_ARTIFACTS", "no")
        .ok();
    let runs = runs_of(&experiment);
    let logged = mlflow_query(
        "out = [a.path for a in client.list_artifacts(sys.argv[2])]",
        &[runs[0]["run_id"].as_str().unwrap()],
    );
    assert_eq!(logged, serde_json::json!([]));
}

#[test]
fn mlflow_nested_run_is_a_child_of_the_run_mlflow_run_id_names() {
    let experiment = unique("mlflow_nested");
    let parent = mlflow_query(
        r#"
exp = client.create_experiment(sys.argv[2])
out = client.create_run(exp, run_name="sweep").info.run_id
"#,
        &[&experiment],
    );
    let parent = parent.as_str().unwrap();
    let done = mlflow_run("mlflow_nested")
        .args(&["--run_name", "trial-1"])
        .env("MLFLOW_TRACKING_URI", &server())
        .env("MLFLOW_RUN_ID", parent)
        .env("MLFLOW_NESTED_RUN", "true")
        .ok();
    let runs = runs_of(&experiment);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let child = runs.iter().find(|r| r["run_id"] != parent).unwrap();
    let outer = runs.iter().find(|r| r["run_id"] == parent).unwrap();
    assert_eq!(child["tags"]["mlflow.parentRunId"], parent);
    assert_eq!(child["name"], "trial-1");
    assert_eq!(child["status"], "FINISHED");
    assert_eq!(child["history"], expected_history(&done));
    assert_eq!(
        outer["status"], "RUNNING",
        "the parent is its caller's to end"
    );
    assert_eq!(outer["history"], serde_json::json!({}));
    assert_eq!(outer["params"], serde_json::json!({}));
}

#[test]
fn mlflow_artifacts_without_the_output_grant_name_it_once_and_training_goes_on() {
    let run = crate::util::Run::regression("mlflow_artifacts_no_grant").plugin("mlflow");
    // Every variable granted, no folder.
    let env = super::mlflow::granted_env();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.mlflow]\npath = {:?}\nenv = [{env}]\nallow_http = [{:?}]\n",
            crate::util::plugin("mlflow").to_str().unwrap(),
            server()
        ),
    )
    .unwrap();
    let experiment = unique("mlflow_artifacts_no_grant");
    let out = run.out();
    let done = run
        .args(&[
            "--config",
            "run.toml",
            "--logging_steps",
            "5",
            "--save_steps",
            "8",
        ])
        .env("MLFLOW_TRACKING_URI", &server())
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .env("HF_MLFLOW_LOG_ARTIFACTS", "1")
        .ok();
    let message = format!(
        "): output_dir is not granted to this plugin; add plugins.mlflow.read_dirs = {{ \"/output\" = {:?} }} to the run config",
        out.to_str().unwrap()
    );
    assert!(
        done.stderr
            .contains("[mlflow] cannot list /output/checkpoint-8 to upload it ("),
        "{}",
        done.stderr
    );
    assert_eq!(
        done.stderr.matches("output_dir is not granted").count(),
        1,
        "once for three saves: {}",
        done.stderr
    );
    assert!(done.stderr.contains(&message), "{}", done.stderr);
    let runs = runs_of(&experiment);
    assert_eq!(runs[0]["history"], expected_history(&done));
}
