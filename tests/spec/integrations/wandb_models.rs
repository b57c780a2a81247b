//! wandb `WANDB_LOG_MODEL`: the artifact records of the plugin's offline
//! run, read by `wandb leet inspect`, must be what HF 5.24's
//! `WandbCallback` logs (names, aliases, metadata from the run's summary)
//! and carry the manifest a real `wandb.Artifact` builds from the same files
//! (digests, sizes, the manifest digest); the staged copies `wandb sync`
//! uploads must equal the files. `WANDB_LOG_MODEL` unset or `false` logs
//! nothing and stages nothing; a bad value is one error.

use super::wandb::{leet, run_folder};
use crate::util::{plugin, readers_python, Run};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Checks the artifact records (argv[1]: `leet --json` lines) against the
/// output folder (argv[2]) with wandb's own `Artifact`: argv[3] is the
/// mode, argv[4] the run id. Prints `ok` and the artifact count.
const CHECK: &str = r#"
import json, numbers, sys
from pathlib import Path
import wandb

records = [json.loads(l) for l in open(sys.argv[1])]
out, mode, run_id = Path(sys.argv[2]), sys.argv[3], sys.argv[4]
summary, config, arts = {}, {}, []
for r in records:
    t = r["type"]
    if t == "summary":
        summary.update(r["summary"]["update"])
    elif t == "config":
        config.update(r["config"]["update"])
    elif t == "artifact":
        arts.append((r["artifact"], dict(summary)))

def numeric(s):
    return {k: v for k, v in s.items() if isinstance(v, numbers.Number) and not k.startswith("_")}

def check(a, files, new_files):
    # wandb's own artifact of the same files: entries and manifest digest.
    real = wandb.Artifact("x", type="model")
    for path, name in files:
        real.add_file(str(path), name=name)
    for name, data in new_files:
        with real.new_file(name, mode="wb") as f:
            f.write(data)
    want = {p: (e.digest, e.size or 0) for p, e in real.manifest.entries.items()}
    got = {e["path"]: (e["digest"], int(e.get("size", 0))) for e in a["manifest"]["contents"]}
    assert got == want, (got, want)
    assert a["digest"] == real.digest, (a["digest"], real.digest)
    assert a["digest_algorithm"] == "MANIFEST_MD5" and a["finalize"] is True
    sources = dict((name, Path(p).read_bytes()) for p, name in files) | dict(new_files)
    for e in a["manifest"]["contents"]:
        assert Path(e["local_path"]).read_bytes() == sources[e["path"]], e
    assert a["name"] == f"model-{run_id}" and a["type"] == "model", a
    assert a["manifest"]["storage_policy"] == "wandb-storage-policy-v1", a

arch = [("model_architecture.txt", b"")]
base, rest = arts[0], arts[1:]
check(base[0], [], arch)
assert base[0]["aliases"] == ["base_model", "latest"], base[0]["aliases"]
assert json.loads(base[0]["metadata"]) == {
    "model_config": None, "num_parameters": config["model/num_parameters"], "initial_model": True}

saves = sorted(int(d.name.split("-")[1]) for d in out.glob("checkpoint-*"))
checkpoints = rest[:-1] if mode == "checkpoint" else []
assert len(checkpoints) == (len(saves) if mode == "checkpoint" else 0), (len(checkpoints), saves)
for (a, s), step in zip(checkpoints, saves):
    folder = out / f"checkpoint-{step}"
    state = json.loads((folder / "trainer_state.json").read_text())
    files = [(p, p.relative_to(folder).as_posix()) for p in sorted(folder.rglob("*")) if p.is_file()]
    check(a, files, [])
    assert a["aliases"] == [f"epoch_{round(state['epoch'], 2)}", f"checkpoint_global_step_{step}", "latest"], a["aliases"]
    meta = json.loads(a["metadata"])
    assert meta == numeric(s) | {"model/num_parameters": config["model/num_parameters"]}, (meta, s)
    assert meta["train/global_step"] == step, meta

final, s = rest[-1]
check(final, [(out / "model.safetensors", "model.safetensors")], arch)
assert final["aliases"] == ["final_model", "latest"], final["aliases"]
meta = json.loads(final["metadata"])
assert meta == numeric(s) | {"final_model": True}, (meta, s)
assert "train_loss" in meta and "train_runtime" in meta, meta
print("ok", len(arts))
"#;

fn artifacts(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["type"] == "artifact")
        .map(|r| &r["artifact"])
        .collect()
}

/// Runs [`CHECK`] on the run in `dir` (output folder `out`); returns its stdout.
fn check_with_wandb(dir: &Path, mode: &str) -> String {
    let (folder, id) = run_folder(&dir.join("wandb"));
    let records = leet(&["--json"], &folder.join(format!("run-{id}.wandb")));
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    let file = dir.join("records.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(CHECK)
        .arg(&file)
        .arg(dir.join("out"))
        .arg(mode)
        .arg(&id)
        // wandb's own artifacts stage their copies here, apart from the run's.
        .env("WANDB_DATA_DIR", dir.join("reader-data"))
        .env("WANDB_MODE", "offline")
        .output()
        .expect("running the readers' python");
    assert!(
        out.status.success(),
        "wandb's artifacts differ from the plugin's:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn models_run(test: &str, log_model: &str) -> Run {
    let run = Run::regression(test)
        .args(&["--report_to", "wandb", "--logging_steps", "4"])
        .args(&["--save_strategy", "steps", "--save_steps", "8"])
        .env("WANDB_MODE", "offline")
        .env("WANDB_LOG_MODEL", log_model);
    let data = run.dir.join("wandb-data");
    run.env("WANDB_DATA_DIR", data.to_str().unwrap())
}

#[test]
fn log_model_checkpoint_logs_each_checkpoint_as_wandb_would() {
    let run = models_run("wandb_log_model_checkpoint", "checkpoint");
    run.ok();
    // base_model, checkpoints 8, 16 and 24, final_model.
    assert_eq!(check_with_wandb(&run.dir, "checkpoint").trim(), "ok 5");
    let staged = std::fs::read_dir(run.dir.join("wandb-data/artifacts/staging")).unwrap();
    // 1 + 3 × 5 checkpoint files + 2 final files.
    assert_eq!(staged.count(), 18);
}

#[test]
fn log_model_end_logs_only_the_base_and_final_models() {
    let run = models_run("wandb_log_model_end", "end");
    run.ok();
    assert_eq!(check_with_wandb(&run.dir, "end").trim(), "ok 2");
}

#[test]
fn log_model_unset_or_false_logs_and_stages_nothing() {
    for value in ["", "false"] {
        let run = models_run("wandb_log_model_off", value);
        run.ok();
        let (folder, id) = run_folder(&run.dir.join("wandb"));
        let records = leet(&["--json"], &folder.join(format!("run-{id}.wandb")));
        assert!(artifacts(&records).is_empty(), "{value:?}");
        assert!(
            !run.dir.join("wandb-data").exists(),
            "no staging folder made for {value:?}"
        );
    }
}

#[test]
fn bad_log_model_or_watch_value_is_one_error_naming_it() {
    let err = models_run("wandb_log_model_bad", "true").fails();
    assert!(
        err.contains("WANDB_LOG_MODEL=true: accepted values are checkpoint, end and false"),
        "{err}"
    );
    let err = models_run("wandb_watch_bad", "false")
        .env("WANDB_WATCH", "weights")
        .fails();
    assert!(
        err.contains(
            "WANDB_WATCH=weights: accepted values are gradients, parameters, all and false"
        ),
        "{err}"
    );
}

#[test]
fn log_model_without_report_to_fails_naming_the_grants() {
    // /wandb and the variables granted by hand, not what WANDB_LOG_MODEL needs.
    let run = Run::regression("wandb_log_model_no_grants");
    let wasm = plugin("wandb");
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.wandb]\npath = {:?}\nwrite_dirs = {{ \"/wandb\" = \"wandb\" }}\nenv = [\"WANDB_MODE\", \"WANDB_PROJECT\", \"WANDB_ENTITY\", \"WANDB_RUN_ID\", \"WANDB_LOG_MODEL\", \"WANDB_WATCH\"]\n",
            wasm.to_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(run.dir.join("wandb")).unwrap();
    let err = run
        .args(&["--config", "run.toml"])
        .arg("--plugin")
        .arg(wasm.to_str().unwrap())
        .env("WANDB_MODE", "offline")
        .env("WANDB_LOG_MODEL", "checkpoint")
        .fails();
    assert!(
        err.contains(
            "WANDB_LOG_MODEL=checkpoint needs wandb's staging folder: run with `--report_to wandb`"
        ),
        "{err}"
    );
}

#[test]
fn log_model_end_with_the_best_model_has_hf_best_metadata() {
    let run = models_run("wandb_log_model_best", "end").args(&[
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "8",
        "--load_best_model_at_end",
    ]);
    run.ok();
    let (folder, id) = run_folder(&run.dir.join("wandb"));
    let records = leet(&["--json"], &folder.join(format!("run-{id}.wandb")));
    let last = *artifacts(&records).last().unwrap();
    assert_eq!(
        last["aliases"],
        serde_json::json!(["final_model", "latest"])
    );
    let meta: Value = serde_json::from_str(last["metadata"].as_str().unwrap()).unwrap();
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(run.out().join("trainer_state.json")).unwrap(),
    )
    .unwrap();
    // HF: {f"eval/{metric_for_best_model}": best_metric, "train/total_floss",
    // "model/num_parameters"} and final_model.
    assert_eq!(
        meta,
        serde_json::json!({
            "eval/loss": state["best_metric"],
            "train/total_floss": state["total_flos"],
            "model/num_parameters": 2,
            "final_model": true,
        })
    );
}
