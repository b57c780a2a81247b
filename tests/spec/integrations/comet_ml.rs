//! comet_ml: the plugin's offline archive must pass comet_ml 3.58's own
//! checks, the ones `comet upload` (`OfflineSender`) runs before sending:
//! the JSON Schemas of `experiment.json` and of every message, and
//! `MetricMessage` / `ParameterMessage.from_message_dict`. And its metric
//! and parameter messages must be the ones a real `comet_ml` offline
//! experiment writes when fed as HF's `CometCallback` feeds it (the run's
//! `log_history` from `trainer_state.json`), in the same order.

use crate::util::{plugin, readers_python, Run};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Checks the plugin's archive in `argv[1]` with comet_ml's validators and
/// parsers, then writes a real offline experiment into `argv[3]` the way
/// HF's `CometCallback` does (`comet_ml.start`, `{"args": …}` flattened,
/// `rewrite_logs` metrics with step and epoch), fed the log history of
/// `argv[2]` and the plugin's own `args|…` values; prints both.
const REFERENCE: &str = r#"
import glob, json, os, sys, zipfile
ours_dir, state, ref_dir, run_name = sys.argv[1:5]
os.environ.update({"COMET_START_ONLINE": "0", "COMET_OFFLINE_DIRECTORY": ref_dir})
# Nothing but what HF logs: no code, environment, system metrics or CO2.
for k in ["CODE", "ENV_DETAILS", "ENV_CPU", "ENV_GPU", "ENV_HOST", "ENV_NETWORK", "ENV_DISK",
          "GIT_METADATA", "GIT_PATCH", "CO2", "CLI_ARGUMENTS", "GRAPH"]:
    os.environ["COMET_AUTO_LOG_" + k] = "0"
os.environ["COMET_AUTO_LOG_OUTPUT_LOGGER"] = ""
import comet_ml
from comet_ml import schemas
from comet_ml.messages import MetricMessage, ParameterMessage

def archive(d):
    (path,) = glob.glob(os.path.join(d, "*.zip"))
    z = zipfile.ZipFile(path)
    assert z.testzip() is None
    lines = z.read("messages.json").decode().splitlines()
    return os.path.basename(path), sorted(z.namelist()), json.loads(z.read("experiment.json")), [json.loads(l) for l in lines]

def sequence(msgs):
    out = []
    for m in msgs:
        p = m["payload"]
        if m["type"] == "metric_msg":
            metric = dict(p["metric"])
            # comet's closing metric: whole seconds, which differ between runs.
            if metric["metricName"] == "process duration":
                assert isinstance(metric["metricValue"], int) and metric["metricValue"] >= 0
                metric["metricValue"] = "whole seconds"
            out.append(["metric", metric])
        elif m["type"] == "parameter_msg":
            out.append(["param" if "param" in p else "params", p.get("param") or p.get("params")])
        elif m["type"] == "log_other":
            out.append(["other", p["key"], p["value"]])
    return out

name, entries, exp, msgs = archive(ours_dir)
schemas.get_experiment_file_validator(allow_additional_properties=False).validate(exp)
validators = {"metric_msg": schemas.get_metric_msg_validator(False),
              "parameter_msg": schemas.get_parameter_msg_validator(False),
              "log_other": schemas.get_log_other_msg_validator(False)}
parsed = 0
args = {}
for i, m in enumerate(msgs):
    validators[m["type"]].validate(m["payload"])
    assert m["payload"]["message_id"] == i + 1
    if m["type"] == "metric_msg":
        parsed += MetricMessage.from_message_dict(m["payload"]).metric is not None
    elif m["type"] == "parameter_msg":
        p = ParameterMessage.from_message_dict(m["payload"])
        if p.get_source() == "manual":
            args[p.get_param_name()[len("args|"):]] = (p.param or p.params)["paramValue"]


history = json.load(open(state))["log_history"]
experiment = comet_ml.start(online=None, mode=None, experiment_config=comet_ml.ExperimentConfig(name=run_name))
experiment.__internal_api__log_parameters__({"args": args}, framework="transformers", source="manual", flatten_nested=True)
for entry in history:
    logs = {k: v for k, v in entry.items() if k != "step"}
    experiment.__internal_api__log_metrics__(rewrite_logs(logs), step=entry["step"], epoch=entry["epoch"], framework="transformers")
experiment.end()
ref_name, ref_entries, ref_exp, ref_msgs = archive(ref_dir)
print(json.dumps({"name": name, "entries": entries, "experiment": exp, "parsed": parsed,
                  "ours": sequence(msgs), "theirs": sequence(ref_msgs), "ref_name": ref_name,
                  "ref_entries": ref_entries, "ref_experiment": ref_exp, "history": history}))
"#;

fn reference(dir: &Path, state: &Path, run_name: &str) -> Value {
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(super::with_rewrite_logs(REFERENCE))
        .arg(dir.join(".cometml-runs"))
        .arg(state)
        .arg(dir.join("ref"))
        .arg(run_name)
        .env_remove("COMET_API_KEY")
        .output()
        .expect("running the comet_ml reference");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the comet_ml check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn comet_archive_passes_comets_checks_and_matches_a_real_offline_experiment() {
    let done = Run::regression("comet_ml_run")
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&["--report_to", "comet_ml", "--run_name", "comet-run"])
        .env("COMET_START_ONLINE", "0")
        .env("COMET_PROJECT_NAME", "trainbox-tests")
        .ok();
    let dir = done.out.parent().unwrap().to_path_buf();
    let r = reference(&dir, &done.out.join("trainer_state.json"), "comet-run");

    let name = r["name"].as_str().unwrap();
    let (key, id) = name.trim_end_matches(".zip").split_once('-').unwrap();
    assert!(
        key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    assert!(
        id.len() == 6 && id.chars().all(|c| c.is_ascii_alphabetic()),
        "{name}"
    );
    assert!(done.stdout.contains(name), "{}", done.stdout);
    assert_eq!(r["entries"], json!(["experiment.json", "messages.json"]));
    let exp = &r["experiment"];
    assert_eq!(exp["offline_id"], key);
    assert_eq!(exp["project_name"], "trainbox-tests");
    assert_eq!(
        exp["resume_strategy"],
        r["ref_experiment"]["resume_strategy"]
    );
    assert!(exp["start_time"].as_i64() <= exp["stop_time"].as_i64());
    // The same keys as comet's own experiment.json.
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(exp), keys(&r["ref_experiment"]));

    // Every metric message parsed; metrics and params as comet writes them.
    let history = r["history"].as_array().unwrap();
    let metric_count: usize = history
        .iter()
        .map(|e| e.as_object().unwrap().len() - 1)
        .sum::<usize>()
        + 1; // comet's `process duration`
    assert_eq!(r["parsed"], metric_count);
    let (ours, theirs) = (
        r["ours"].as_array().unwrap(),
        r["theirs"].as_array().unwrap(),
    );
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a, b, "message {i} of the metrics, params and others");
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{:?}",
        &theirs[ours.len().min(theirs.len())..]
    );

    // Values the test knows without the plugin.
    let param = |n: &str| {
        ours.iter()
            .find(|m| m[1]["paramName"] == n)
            .map(|m| m[1]["paramValue"].clone())
            .unwrap_or_else(|| panic!("no parameter {n}"))
    };
    assert_eq!(param("args|learning_rate"), 5e-05);
    assert_eq!(param("args|report_to"), json!(["comet_ml"]));
    assert_eq!(param("args|output_dir"), done.out.to_str().unwrap());
    assert_eq!(param("args|run_name"), "comet-run");
    let last = &history[history.len() - 1];
    let train_loss = ours
        .iter()
        .rfind(|m| m[1]["metricName"] == "train/train_loss")
        .unwrap();
    assert_eq!(train_loss[1]["metricValue"], last["train_loss"]);
    assert_eq!(train_loss[1]["step"], last["step"]);
    assert_eq!(train_loss[1]["epoch"], last["epoch"]);
}

#[test]
fn comet_online_mode_or_no_grant_fails_naming_the_fix() {
    let err = Run::regression("comet_ml_online")
        .args(&["--report_to", "comet_ml"])
        .fails();
    assert!(
        err.contains("COMET_START_ONLINE is not set, which is comet_ml's online mode")
            && err.contains("set COMET_START_ONLINE=0"),
        "{err}"
    );
    let err = Run::regression("comet_ml_no_grants")
        .arg("--plugin")
        .arg(plugin("comet_ml").to_str().unwrap())
        .env("COMET_START_ONLINE", "0")
        .fails();
    assert!(
        err.contains(
            "comet_ml.wasm: plugin comet_ml asks for `write-dir /comet`, which is not granted"
        ),
        "{err}"
    );
}

#[test]
fn comet_offline_directory_is_where_the_archive_goes_and_hfs_comet_mode_is_read() {
    let run = Run::regression("comet_ml_dir")
        .args(&["--max_steps", "2", "--report_to", "comet_ml"])
        .env("COMET_START_ONLINE", "0")
        .env("COMET_OFFLINE_DIRECTORY", "archives/comet");
    let done = run.ok();
    let dir = done.out.parent().unwrap().join("archives/comet");
    let zips: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(zips.len(), 1, "{}", dir.display());
    // HF 5.24 reads COMET_MODE as get/get_or_create/create; anything else
    // (the old "offline") disables Comet with its warning.
    let (ok, _, stderr) = Run::regression("comet_ml_old_mode")
        .args(&["--max_steps", "2", "--report_to", "comet_ml"])
        .env("COMET_START_ONLINE", "0")
        .env("COMET_MODE", "offline")
        .outcome();
    assert!(ok, "{stderr}");
    let runs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spec/comet_ml_old_mode/.cometml-runs");
    assert_eq!(
        std::fs::read_dir(&runs).map_or(0, |d| d.count()),
        0,
        "no archive"
    );
    assert!(
        stderr.contains("Invalid COMET_MODE env value \"offline\", Comet logging is disabled"),
        "{stderr}"
    );
}
