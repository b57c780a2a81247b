//! wandb `WANDB_WATCH`: HF's `wandb.watch(model, log=…,
//! log_freq=max(100, logging_steps))` histograms in the plugin's offline
//! run, read by `wandb leet inspect`: `gradients/<name>` and
//! `parameters/<name>` (wandb-core's `_type`, `values`, `bins` fields) in
//! the rows of the steps wandb's hooks log them at, 64 bins counting every
//! element, and the parameters' histograms equal to what wandb's
//! `log_tensor_stats` computes with torch (`histc` over min..max,
//! `linspace` edges) from the checkpoint holding those parameters.

use super::wandb::{leet, run_folder};
use crate::util::{run_torch_python, Run};
use serde_json::Value;
use std::collections::BTreeSet;

/// argv[1]: the history rows (JSON lines), argv[2]: checkpoint-99. Checks
/// the step-100 parameter histograms against torch; prints `ok`.
const TORCH_CHECK: &str = r#"
import json, sys, torch
from safetensors.torch import load_file
rows = [json.loads(l) for l in open(sys.argv[1])]
params = load_file(sys.argv[2] + "/model.safetensors")
row = next(r for r in rows if r["train/global_step"] == 100)
for name, t in params.items():
    flat = t.detach().reshape(-1).float()
    lo, hi = flat.min().item(), flat.max().item()
    counts = flat.histc(bins=64, min=lo, max=hi).tolist()
    bins = torch.linspace(lo, hi, steps=65).tolist()
    key = "parameters/" + name
    assert row[key + ".values"] == counts, (name, row[key + ".values"], counts)
    assert row[key + ".bins"] == bins, (name, row[key + ".bins"], bins)
print("ok")
"#;

fn watch_run(test: &str, watch: &str) -> Run {
    let run = Run::command(test, &["train"]);
    let out = run.dir.join("out");
    // A generous deadline: the test machine is shared, and the point here
    // is the histograms, not the plugin's speed.
    std::fs::write(
        run.dir.join("run.toml"),
        "[plugins.wandb]\ndeadline_ms = 5000\n",
    )
    .unwrap();
    run.args(&["--config", "run.toml", "--task", "sort", "--disable_tqdm"])
        .args(&[
            "--task_option",
            "train_size=512",
            "--task_option",
            "d_model=16",
        ])
        .args(&["--task_option", "layers=1", "--task_option", "heads=2"])
        .args(&["--per_device_train_batch_size", "8", "--max_steps", "210"])
        .args(&[
            "--logging_steps",
            "50",
            "--save_strategy",
            "steps",
            "--save_steps",
            "99",
        ])
        .args(&[
            "--report_to",
            "wandb",
            "--output_dir",
            out.to_str().unwrap(),
        ])
        .env("WANDB_MODE", "offline")
        .env("WANDB_WATCH", watch)
}

/// The history rows of the run in `run`, as `leet` flattens them.
fn rows(run: &Run) -> Vec<serde_json::Map<String, Value>> {
    let (folder, id) = run_folder(&run.dir.join("wandb"));
    leet(&["--json"], &folder.join(format!("run-{id}.wandb")))
        .into_iter()
        .filter(|r| r["type"] == "history")
        .map(|r| r["history"]["item"].as_object().unwrap().clone())
        .collect()
}

/// The histogram keys (`gradients/…`, `parameters/…`) of a row.
fn histogram_keys(row: &serde_json::Map<String, Value>) -> BTreeSet<String> {
    row.keys()
        .filter_map(|k| k.strip_suffix("._type"))
        .map(String::from)
        .collect()
}

#[test]
fn watch_all_logs_64_bin_histograms_every_log_freq_steps_as_wandb_watch() {
    let run = watch_run("wandb_watch_all", "all");
    run.ok();
    let rows = rows(&run);
    let names: Vec<String> = {
        let state = std::fs::read_to_string(run.dir.join("out/checkpoint-99/trainer_state.json"));
        assert!(state.is_ok(), "checkpoint-99 saved");
        let py = "import sys\nfrom safetensors.torch import load_file\nprint('\\n'.join(load_file(sys.argv[1])))";
        run_torch_python(py, &[&run.dir.join("out/checkpoint-99/model.safetensors")])
            .lines()
            .map(String::from)
            .collect()
    };
    assert!(names.len() > 10, "{names:?}");
    let expected: BTreeSet<String> = names
        .iter()
        .flat_map(|n| [format!("gradients/{n}"), format!("parameters/{n}")])
        .collect();
    // log_freq = max(100, logging_steps=50) = 100: the 100th and 200th
    // micro-batch, committed with HF's logs at steps 100 and 200.
    let mut logged = Vec::new();
    for row in &rows {
        let keys = histogram_keys(row);
        if keys.is_empty() {
            continue;
        }
        logged.push(row["train/global_step"].as_u64().unwrap());
        assert_eq!(keys, expected);
        for key in &keys {
            assert_eq!(row[&format!("{key}._type")], "histogram");
            let values = row[&format!("{key}.values")].as_array().unwrap();
            let bins = row[&format!("{key}.bins")].as_array().unwrap();
            assert_eq!(values.len(), 64, "{key}");
            assert_eq!(bins.len(), 65, "{key}");
            let edges: Vec<f64> = bins.iter().map(|b| b.as_f64().unwrap()).collect();
            assert!(edges.windows(2).all(|w| w[0] < w[1]), "{key}: {edges:?}");
        }
    }
    assert_eq!(logged, [100, 200]);
    // Every element counted once (the parameters are finite).
    let py = "import sys\nfrom safetensors.torch import load_file\nfor k, t in load_file(sys.argv[1]).items(): print(k, t.numel())";
    let numel = run_torch_python(py, &[&run.dir.join("out/checkpoint-99/model.safetensors")]);
    let row = rows.iter().find(|r| r["train/global_step"] == 100).unwrap();
    for line in numel.lines() {
        let (name, n) = line.split_once(' ').unwrap();
        for kind in ["gradients", "parameters"] {
            let total: u64 = row[&format!("{kind}/{name}.values")]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert_eq!(total.to_string(), n, "{kind}/{name}");
        }
    }
    // The parameters of the 100th forward pass are checkpoint-99's.
    let file = run.dir.join("rows.jsonl");
    let lines: Vec<String> = rows
        .iter()
        .map(|r| Value::from(r.clone()).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let ckpt = run.dir.join("out/checkpoint-99");
    assert_eq!(run_torch_python(TORCH_CHECK, &[&file, &ckpt]).trim(), "ok");
}

#[test]
fn watch_gradients_logs_gradients_only_and_false_nothing() {
    let run = watch_run("wandb_watch_gradients", "gradients");
    run.ok();
    let keys: BTreeSet<String> = rows(&run).iter().flat_map(histogram_keys).collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.starts_with("gradients/")),
        "{keys:?}"
    );
    let run = watch_run("wandb_watch_false", "false");
    run.ok();
    assert!(rows(&run).iter().all(|r| histogram_keys(r).is_empty()));
}
