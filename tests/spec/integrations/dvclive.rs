//! dvclive: the plugin's `./dvclive` folder must hold, byte for byte, what
//! dvclive 3.49 itself writes when fed the same params and logs the way HF's
//! `DVCLiveCallback` feeds them, and DVC 3.67 must read it in a Git + DVC
//! repository: `dvc metrics show`, `dvc params diff --all` and
//! `dvc plots show`, through the plugin's `dvclive/dvc.yaml`.

use crate::util::{plugin, readers_bin, Run};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Real dvclive fed as HF's `DVCLiveCallback` feeds it: `Live()`,
/// `log_params`, then per log `log_metric(standardize_metric_name(k))` and
/// `next_step()`, then `end()`. The params are the plugin's `params.yaml`
/// read back (so that key order and values match; their format is what is
/// compared). Prints the params and whether the plugin's `metrics.json` is
/// exactly `json.dumps(…, indent=4)` of itself.
const REFERENCE: &str = r#"
import json, os, sys
import dvclive.live
# Outside a Git repository dvclive would `dvc init` whatever repository
# encloses the test folder: keep it from looking.
dvclive.live.get_dvc_repo = lambda: None
from dvclive import Live
from dvclive.serialize import load_yaml
from dvclive.utils import standardize_metric_name

trace, ours, ref = sys.argv[1:4]
# The logs, parsed by Python: exactly the floats the plugin got.
logs = [e["logs"] for e in map(json.loads, open(trace)) if e["event"] == "on_log"]
params = load_yaml(os.path.join(ours, "params.yaml"))
os.makedirs(ref)
os.chdir(ref)
live = Live(save_dvc_exp=False)
live.log_params(params)
for entry in logs:
    for key, value in entry.items():
        live.log_metric(standardize_metric_name(key, "dvclive.huggingface"), value)
    live.next_step()
live.end()
text = open(os.path.join(ours, "metrics.json")).read()
print(json.dumps({"params": params, "metrics_roundtrip": json.dumps(json.loads(text), indent=4) + "\n" == text}))
"#;

/// Runs the reference into `<dir>/ref` on the `on_log` entries of `trace`
/// (the recorder's format, read by Python: serde_json's float parsing is
/// not exact); returns its report.
fn reference(dir: &Path, trace: &Path) -> Value {
    let out = Command::new(readers_bin("python3"))
        .arg("-c")
        .arg(REFERENCE)
        .arg(trace)
        .arg(dir.join("dvclive"))
        .arg(dir.join("ref"))
        .env("DVC_NO_ANALYTICS", "1")
        .output()
        .expect("running the dvclive reference");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the dvclive reference failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The files under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().into());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts the plugin's folder is what dvclive wrote: every file byte-equal,
/// `metrics.json` too unless `metrics_in_any_order` (then equal as JSON and
/// formatted as Python's `json.dumps(indent=4)`), and `dvclive/dvc.yaml`
/// equal to dvclive's root `dvc.yaml` with paths relative to `dvclive/`.
fn assert_same_as_dvclive(dir: &Path, report: &Value, metrics_in_any_order: bool) {
    let (ours, theirs) = (dir.join("dvclive"), dir.join("ref/dvclive"));
    let mut expected = files(&theirs);
    expected.push("dvc.yaml".into());
    expected.sort();
    assert_eq!(files(&ours), expected);
    for name in files(&theirs) {
        let (a, b) = (read(&ours.join(&name)), read(&theirs.join(&name)));
        if name == "metrics.json" && metrics_in_any_order {
            let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap();
            assert_eq!(parse(&a), parse(&b), "metrics.json");
            assert_eq!(
                report["metrics_roundtrip"], true,
                "json.dumps(indent=4) format: {a}"
            );
        } else {
            assert_eq!(a, b, "{name}");
        }
    }
    let root_dvcyaml = read(&dir.join("ref/dvc.yaml"));
    assert_eq!(
        read(&ours.join("dvc.yaml")),
        root_dvcyaml.replace("dvclive/", "")
    );
}

/// `dvc ARGS --json` in `dir`, parsed.
fn dvc(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(readers_bin("dvc"))
        .args(args)
        .current_dir(dir)
        .env("DVC_NO_ANALYTICS", "1")
        .output()
        .expect("running dvc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dvc {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("dvc {args:?}: {e}: {stdout}"))
}

/// Makes `dir` a Git repository with a commit and a DVC project.
fn git_and_dvc_init(dir: &Path) {
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=trainbox",
                "-c",
                "user.email=trainbox@localhost",
            ])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(dir)
            .status()
            .expect("running git");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "init"]);
    let out = Command::new(readers_bin("dvc"))
        .args(["init", "-q"])
        .current_dir(dir)
        .env("DVC_NO_ANALYTICS", "1")
        .output()
        .expect("running dvc init");
    assert!(
        out.status.success(),
        "dvc init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// dvclive's `standardize_metric_name` for HF.
fn standardize(key: &str) -> String {
    key.replace("train_", "train/").replace("eval_", "eval/")
}

#[test]
fn dvclive_run_matches_dvclive_and_is_read_by_dvc() {
    let done = Run::regression("dvclive_run")
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&[
            "--report_to",
            "dvclive",
            "--plugin_config",
            "recorder.values=true",
        ])
        .ok();
    let dir = done.out.parent().unwrap().to_path_buf();
    let logs: Vec<Value> = done
        .events()
        .into_iter()
        .filter(|e| e["event"] == "on_log")
        .map(|e| e["logs"].clone())
        .collect();
    assert_eq!(logs.len(), 8, "4 training logs, 3 evaluations, the summary");

    // The recorder's logs have their keys sorted, not in the trainer's
    // order, so metrics.json is compared as JSON (and its format apart).
    let trace = done.out.join("plugins/recorder/events.jsonl");
    let report = reference(&dir, &trace);
    assert_same_as_dvclive(&dir, &report, true);
    let params = &report["params"];
    assert_eq!(params["learning_rate"], 5e-05);
    assert_eq!(params["num_train_epochs"], 3.0);
    assert_eq!(params["eval_strategy"], "epoch");
    assert_eq!(params["eval_steps"], Value::Null);
    assert_eq!(params["report_to"], json!(["dvclive"]));
    assert_eq!(params["output_dir"], done.out.to_str().unwrap());

    // Only the plugin's folder is left for DVC to find.
    std::fs::remove_dir_all(dir.join("ref")).unwrap();
    git_and_dvc_init(&dir);
    let metrics: Value = serde_json::from_str(&read(&dir.join("dvclive/metrics.json"))).unwrap();
    assert_eq!(metrics["step"], 7, "one dvclive step per log, from 0");
    assert_eq!(metrics["eval"]["loss"], logs[6]["eval_loss"]);
    assert_eq!(metrics["train"]["loss"], logs[7]["train_loss"]);
    let shown = dvc(&dir, &["metrics", "show", "--json"]);
    assert_eq!(shown[""]["data"]["dvclive/metrics.json"]["data"], metrics);

    let diff = dvc(&dir, &["params", "diff", "--all", "--json"]);
    let diff = diff["dvclive/params.yaml"].as_object().unwrap();
    assert_eq!(diff.len(), params.as_object().unwrap().len(), "{diff:?}");
    assert_eq!(diff["learning_rate"], json!({"old": null, "new": 5e-05}));
    assert_eq!(diff["seed"], json!({"old": null, "new": 42}));

    // Every history, as dvc plots it: a row per log that had the key, at
    // dvclive's step (the log's index), the values as the TSVs hold them.
    let plots = dvc(&dir, &["plots", "show", "--json"]);
    let plots = plots["data"].as_object().unwrap();
    let mut expected: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (step, entry) in logs.iter().enumerate() {
        for key in entry.as_object().unwrap().keys() {
            expected
                .entry(standardize(key))
                .or_default()
                .push(step.to_string());
        }
    }
    assert_eq!(plots.len(), expected.len(), "{:?}", plots.keys());
    for (name, steps) in &expected {
        let file = format!("dvclive/plots/metrics/{name}.tsv");
        let leaf = name.rsplit('/').next().unwrap();
        let rows: Vec<(String, String)> = read(&dir.join(&file))
            .lines()
            .skip(1)
            .map(|l| {
                let (step, value) = l.split_once('\t').unwrap();
                (step.to_string(), value.to_string())
            })
            .collect();
        let row_steps: Vec<&String> = rows.iter().map(|(s, _)| s).collect();
        assert_eq!(row_steps, steps.iter().collect::<Vec<_>>(), "{file}");
        let values = plots[&file][0]["content"]["data"]["values"]
            .as_array()
            .unwrap();
        let shown: Vec<(String, String)> = values
            .iter()
            .map(|v| {
                (
                    v["step"].as_str().unwrap().into(),
                    v[leaf].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(shown, rows, "{file}");
    }
}

#[test]
fn dvclive_files_are_byte_equal_to_dvclives_for_odd_values_and_params() {
    // A replayed trace (keys sorted, as the reference reads them) with
    // values and params a regression run does not have.
    let wasm = plugin("dvclive");
    let run = Run::command(
        "dvclive_replay",
        &[
            "replay",
            "trace.jsonl",
            wasm.to_str().unwrap(),
            "--config",
            "run.toml",
        ],
    )
    .args(&["--output_dir", "out dir/with 'quotes' and: colons"])
    .args(&["--run_name", "it's \"my\" run: é\ttab"])
    .args(&[
        "--learning_rate",
        "1e-05",
        "--metric_for_best_model",
        "eval_loss",
    ])
    .env("HF_DVCLIVE_LOG_MODEL", "all");
    let logs = [
        json!({"epoch": 0.5, "flag": true, "grad_norm": 0.30000000000000004, "loss": 1e16, "steps": 7}),
        json!({"epoch": 1.0, "eval_loss": -2.5e-07, "eval_note": "tab\there \"quoted\" é", "eval_train_x": 1}),
        json!({"epoch": 1.0, "loss": 0.0001, "total_flos": 0.0, "train_loss": 12.75, "train_runtime": 1.5}),
    ];
    let mut trace = vec![json!({"event": "on_train_begin", "global_step": 0})];
    for (i, entry) in logs.iter().enumerate() {
        trace.push(json!({"event": "on_log", "global_step": 2 * i + 2, "logs": entry}));
    }
    trace.push(json!({"event": "on_train_end", "global_step": 6}));
    let lines: Vec<String> = trace.iter().map(Value::to_string).collect();
    std::fs::write(run.dir.join("trace.jsonl"), lines.join("\n")).unwrap();
    std::fs::create_dir(run.dir.join("dvclive")).unwrap();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.dvclive]\npath = {:?}\nwrite_dirs = {{ \"/dvclive\" = \"dvclive\" }}\nenv = [\"HF_DVCLIVE_LOG_MODEL\"]\n",
            wasm.to_str().unwrap()
        ),
    )
    .unwrap();
    let done = run.ok();
    assert!(
        (done.stdout.clone() + &done.stderr).contains(
            "HF_DVCLIVE_LOG_MODEL=all: logging the model as a DVC artifact is not supported"
        ),
        "{}\n{}",
        done.stdout,
        done.stderr
    );

    let report = reference(&run.dir, &run.dir.join("trace.jsonl"));
    assert_same_as_dvclive(&run.dir, &report, false);
    assert_eq!(report["params"]["run_name"], "it's \"my\" run: é\ttab");
    assert_eq!(
        report["params"]["output_dir"],
        "out dir/with 'quotes' and: colons"
    );
    assert_eq!(report["params"]["learning_rate"], 1e-05);
    let tsv = read(&run.dir.join("dvclive/plots/metrics/eval/note.tsv"));
    assert_eq!(tsv, "step\tnote\n1\t\"tab\there \"\"quoted\"\" é\"\n");
}

#[test]
fn dvclive_loaded_without_grants_fails_at_load_naming_the_grant() {
    let stderr = Run::regression("dvclive_no_grants")
        .plugin("dvclive")
        .fails();
    assert!(
        stderr.contains(
            "plugin dvclive asks for `write-dir /dvclive`, which is not granted; \
             add plugins.dvclive.write_dirs = { \"/dvclive\" = \"<host dir>\" } to the run config"
        ),
        "{stderr}"
    );
}
