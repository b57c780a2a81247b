//! wandb `WANDB_WATCH`: HF's `wandb.watch(model, log=…,
//! log_freq=max(100, logging_steps))` histograms in the plugin's offline
//! run, read by `wandb leet inspect`: `gradients/<name>` and
//! `parameters/<name>` (wandb-core's `_type`, `values`, `bins` fields) in
//! the rows of the steps wandb's hooks log them at, 64 bins counting every
//! element, and the parameters' histograms equal to what wandb's
//! `log_tensor_stats` computes with torch (`histc` over min..max,
//! `linspace` edges) from the checkpoint holding those parameters; and,
//! once, the same rows as the real `transformers.Trainer` with the real
//! `wandb.watch` write for the same model and data.

use super::wandb::{leet, run_folder};
use crate::util::{readers_python, run_torch_python, torch_python, Run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

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

/// argv[1]: the folder, argv[2]: the readers' site-packages (for wandb,
/// which the torch environment lacks). Writes `train.parquet` (and the same
/// rows as `validation.parquet`) and the traced `model.pt`, then trains the
/// same model with `transformers.Trainer`, `report_to=["wandb"]`
/// (`WANDB_WATCH=all`, offline, in `$WANDB_DIR`), evaluating every 30 steps
/// in two batches: wandb's forward hook counts those passes too.
const HF_WATCH: &str = r#"
import sys
sys.path.append(sys.argv[2])
import pyarrow as pa, pyarrow.parquet as pq, torch
from torch import nn

class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 1)

    def forward(self, x, labels):
        pred = self.head(torch.tanh(self.norm(self.proj(x)))).squeeze(-1)
        return ((pred - labels) ** 2).mean(), pred

out = sys.argv[1]
g = torch.Generator().manual_seed(1)
x = torch.randn(16, 6, generator=g, dtype=torch.float64)
y = torch.sin(x @ torch.linspace(-1, 1, 6, dtype=torch.float64)) * 3 + 1
for name in ("train", "validation"):
    pq.write_table(pa.table({"x": pa.array(x.tolist()), "labels": pa.array(y.tolist())}), f"{out}/{name}.parquet")
table = pq.read_table(f"{out}/train.parquet").to_pydict()
rows = [{"x": torch.tensor(table["x"][i]).float(), "labels": torch.tensor(table["labels"][i]).float()}
        for i in range(16)]
torch.manual_seed(0)
model = Regressor()
example = (torch.stack([r["x"] for r in rows[:2]]), torch.stack([r["labels"] for r in rows[:2]]))
torch.jit.trace(model, example).save(f"{out}/model.pt")
from transformers import Trainer, TrainingArguments
args = TrainingArguments(output_dir=f"{out}/hf", use_cpu=True, report_to=["wandb"], disable_tqdm=True,
                         save_strategy="no", num_train_epochs=210, per_device_train_batch_size=16,
                         logging_steps=50, learning_rate=0.05, max_grad_norm=1e9, seed=7,
                         eval_strategy="steps", eval_steps=30, per_device_eval_batch_size=8)
Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows).train()
"#;

/// The `.wandb` file of the one `offline-run-*` folder under `root` (a
/// real wandb also leaves `latest-run` and its logs there).
fn wandb_file(root: &Path) -> std::path::PathBuf {
    let runs: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("offline-run-")
        })
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let id = runs[0]
        .to_string_lossy()
        .rsplit('-')
        .next()
        .unwrap()
        .to_string();
    runs[0].join(format!("run-{id}.wandb"))
}

/// The rows with histograms of the one run under `root`: (step, row).
fn histogram_rows(root: &Path) -> Vec<(u64, serde_json::Map<String, Value>)> {
    leet(&["--json"], &wandb_file(root))
        .into_iter()
        .filter(|r| r["type"] == "history")
        .map(|r| r["history"]["item"].as_object().unwrap().clone())
        .filter(|row| !histogram_keys(row).is_empty())
        .map(|row| (row["train/global_step"].as_u64().unwrap(), row))
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn watch_all_writes_what_real_wandb_watch_writes_under_hf_trainer() {
    // One batch per epoch (the data order cannot differ), no clipping (so
    // wandb's per-backward gradient is the one the optimizer uses).
    let run = Run::command("wandb_watch_vs_hf", &["train"]);
    let site = Command::new(readers_python())
        .args(["-c", "import site; print(site.getsitepackages()[0])"])
        .output()
        .expect("running the readers' python");
    let site = String::from_utf8(site.stdout).unwrap();
    let hf = Command::new(torch_python())
        .arg("-c")
        .arg(HF_WATCH)
        .arg(&run.dir)
        .arg(site.trim())
        .env("WANDB_MODE", "offline")
        .env("WANDB_WATCH", "all")
        .env("WANDB_DIR", run.dir.join("hf"))
        // wandb's own folders and HF's cache in the run's, not the home's.
        .env("WANDB_CACHE_DIR", run.dir.join("hf/cache"))
        .env("WANDB_CONFIG_DIR", run.dir.join("hf/config"))
        .env("WANDB_DATA_DIR", run.dir.join("hf/data"))
        .env("HF_HOME", run.dir.join("hf/hf-home"))
        .output()
        .expect("running HF's Trainer");
    assert!(
        hf.status.success(),
        "HF's Trainer with wandb.watch failed:\n{}",
        String::from_utf8_lossy(&hf.stderr)
    );
    std::fs::write(
        run.dir.join("run.toml"),
        "[plugins.wandb]\ndeadline_ms = 5000\n",
    )
    .unwrap();
    let run = run
        .args(&[
            "--config",
            "run.toml",
            "--model",
            "model.pt",
            "--train_file",
            "train.parquet",
        ])
        .args(&[
            "--validation_file",
            "validation.parquet",
            "--eval_strategy",
            "steps",
        ])
        .args(&["--eval_steps", "30", "--per_device_eval_batch_size", "8"])
        .args(&[
            "--output_dir",
            "out",
            "--save_strategy",
            "no",
            "--disable_tqdm",
        ])
        .args(&[
            "--num_train_epochs",
            "210",
            "--per_device_train_batch_size",
            "16",
        ])
        .args(&[
            "--logging_steps",
            "50",
            "--learning_rate",
            "0.05",
            "--max_grad_norm",
            "1e9",
        ])
        .args(&["--seed", "7", "--report_to", "wandb"])
        .env("WANDB_MODE", "offline")
        .env("WANDB_WATCH", "all");
    run.ok();
    let want = histogram_rows(&run.dir.join("hf/wandb"));
    let got = histogram_rows(&run.dir.join("wandb"));
    let steps = |rows: &[(u64, serde_json::Map<String, Value>)]| -> Vec<u64> {
        rows.iter().map(|(s, _)| *s).collect()
    };
    assert_eq!(steps(&got), steps(&want));
    assert_eq!(steps(&want), [100, 200]);
    for ((step, w), (_, g)) in want.iter().zip(&got) {
        assert_eq!(histogram_keys(g), histogram_keys(w), "step {step}");
        assert_eq!(
            histogram_keys(w).len(),
            12,
            "6 parameters and their gradients"
        );
        for key in histogram_keys(w) {
            let (wb, gb) = (
                floats(&w[&format!("{key}.bins")]),
                floats(&g[&format!("{key}.bins")]),
            );
            let (wv, gv) = (
                floats(&w[&format!("{key}.values")]),
                floats(&g[&format!("{key}.values")]),
            );
            assert_eq!(wb.len(), gb.len(), "{key} at {step}");
            assert_eq!(
                wv.iter().sum::<f64>(),
                gv.iter().sum::<f64>(),
                "{key} at {step}"
            );
            // Parameters agree to float32 noise (measured: 5e-7 of the
            // range). Gradients drift more as the loss nears 0 (measured:
            // 3e-4 at step 100, 6e-3 at step 200): compared at step 100.
            let (tolerance, moves) = match (key.starts_with("parameters/"), *step) {
                (true, _) => (1e-5, 2.0),
                (false, 100) => (1e-3, 4.0),
                (false, _) => continue,
            };
            let scale = wb.iter().fold(0f64, |m, b| m.max(b.abs()));
            for (a, b) in wb.iter().zip(&gb) {
                assert!(
                    (a - b).abs() <= tolerance * scale,
                    "{key} at {step}: bins {wb:?} vs {gb:?}"
                );
            }
            // The same counts, up to values within float noise of an edge.
            let moved: f64 = wv.iter().zip(&gv).map(|(a, b)| (a - b).abs()).sum();
            assert!(moved <= moves, "{key} at {step}: values {wv:?} vs {gv:?}");
        }
    }
}
