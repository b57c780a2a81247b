//! wandb (offline): the plugin's run folder is read by wandb's own reader,
//! `wandb leet inspect` (the Go wandb-core of the wandb 0.31 wheel, which
//! checks every chunk's CRC), and must hold HF's `WandbCallback` run: the
//! config, the history rows of `trainer_state.json`'s log history under
//! `rewrite_logs` names with `train/global_step`, the summary scalars, and
//! the exit state.

use crate::util::{plugin, readers_bin, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `wandb leet inspect [flags] FILE`, parsed: one JSON object with
/// `--summary`, else one per line.
pub(super) fn leet(flags: &[&str], file: &Path) -> Vec<Value> {
    let out = Command::new(readers_bin("wandb"))
        .args(["leet", "inspect"])
        .args(flags)
        .arg(file)
        .output()
        .expect("running wandb leet inspect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wandb leet inspect {flags:?} {} failed: {}\n{text}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    if flags.contains(&"--summary") {
        vec![serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))]
    } else {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// The one run folder under `root` (`offline-run-YYYYMMDD_HHMMSS-<id>`): (folder, id).
pub(super) fn run_folder(root: &Path) -> (PathBuf, String) {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one run folder in {}: {dirs:?}",
        root.display()
    );
    let name = dirs[0].file_name().unwrap().to_str().unwrap().to_string();
    let rest = name
        .strip_prefix("offline-run-")
        .expect("offline-run- prefix");
    let (stamp, id) = rest.split_at(15);
    assert!(
        stamp.as_bytes()[8] == b'_'
            && stamp
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 8 || b.is_ascii_digit()),
        "YYYYMMDD_HHMMSS: {name}"
    );
    (dirs[0].clone(), id.trim_start_matches('-').to_string())
}

/// The chunk types of a `.wandb` log (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST).
fn chunk_types(bytes: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 32 * 1024;
    assert_eq!(&bytes[..7], b":W&B\xe1\xbe\x00", "file header");
    let (mut pos, mut types) = (7, Vec::new());
    while pos < bytes.len() {
        if BLOCK - pos % BLOCK < 7 {
            pos += BLOCK - pos % BLOCK;
            continue;
        }
        let len = u16::from_le_bytes([bytes[pos + 4], bytes[pos + 5]]) as usize;
        types.push(bytes[pos + 6]);
        pos += 7 + len;
    }
    types
}

/// HF's `rewrite_logs`.
fn rewrite(key: &str) -> String {
    match (key.strip_prefix("eval_"), key.strip_prefix("test_")) {
        (Some(k), _) => format!("eval/{k}"),
        (_, Some(k)) => format!("test/{k}"),
        _ => format!("train/{key}"),
    }
}

const SUMMARY_KEYS: [&str; 5] = [
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
];

fn wandb_run(test: &str) -> Run {
    Run::regression(test).args(&["--report_to", "wandb"])
}

#[test]
fn offline_run_is_read_by_wandb_with_hf_config_history_and_summary() {
    // A 70,000-character run name: the run record (name + config) spans
    // FIRST, MIDDLE and LAST chunks over five 32 KiB blocks.
    let long_name = "r".repeat(70_000);
    let run = wandb_run("wandb_offline_run")
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&["--run_name", &long_name])
        .env("WANDB_MODE", "offline")
        .env("WANDB_PROJECT", "trainbox-spec");
    let done = run.ok();
    let (folder, id) = run_folder(&run.dir.join("wandb"));
    assert_eq!(id.len(), 8, "a wandb-style id: {id}");
    assert!(
        folder.join("files").is_dir(),
        "files/ as in a real offline run"
    );
    let file = folder.join(format!("run-{id}.wandb"));
    let bytes = std::fs::read(&file).unwrap();
    let types = chunk_types(&bytes);
    for kind in [2, 3, 4] {
        assert!(types.contains(&kind), "chunk type {kind} in {types:?}");
    }

    let s = &leet(&["--summary", "--json"], &file)[0];
    assert_eq!(s["state"], "finished", "{s:#}");
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["project"], "trainbox-spec");
    assert_eq!(s["run_id"], id.as_str());
    assert_eq!(s["name"].as_str().map(str::len), Some(70_000));
    let config = &s["config"];
    assert_eq!(config["run_name"].as_str(), Some(long_name.as_str()));
    assert_eq!(config["learning_rate"], 5e-05);
    assert_eq!(config["eval_strategy"], "epoch");
    assert_eq!(config["report_to"], serde_json::json!(["wandb"]));
    assert_eq!(
        config["model/num_parameters"], 2,
        "the regression model's a and b"
    );

    // Every log of the run is a history row, in order, as HF logs it.
    let history = done.state("trainer_state.json")["log_history"]
        .as_array()
        .unwrap()
        .clone();
    let rows: Vec<Value> = leet(&["--json"], &file)
        .into_iter()
        .filter(|r| r["type"] == "history")
        .map(|r| r["history"]["item"].clone())
        .collect();
    assert_eq!(rows.len(), history.len(), "one row per log");
    for (i, (entry, row)) in history.iter().zip(&rows).enumerate() {
        assert_eq!(row["_step"], i, "row {i}: {row}");
        assert_eq!(row["train/global_step"], entry["step"], "row {i}");
        for (k, v) in entry.as_object().unwrap() {
            if k == "step" || SUMMARY_KEYS.contains(&k.as_str()) {
                assert!(row.get(rewrite(k)).is_none(), "{k} is not a history key");
                continue;
            }
            assert_eq!(row[rewrite(k)].as_f64(), v.as_f64(), "row {i}: {k}");
        }
    }
    // The last log's summary scalars went to the summary, the rest follows the rows.
    let last = history.last().unwrap();
    for k in SUMMARY_KEYS {
        assert_eq!(s["summary"][k].as_f64(), last[k].as_f64(), "summary {k}");
    }
    assert_eq!(s["summary"]["train/global_step"], 24);
    assert_eq!(s["summary"]["train/epoch"].as_f64(), Some(3.0));
    assert_eq!(s["step"], history.len() - 1);

    // The reader checks CRCs: one flipped byte in the last record loses the exit.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 3] ^= 0x40;
    let corrupt = folder.join("corrupt.wandb");
    std::fs::write(&corrupt, &bad).unwrap();
    let s = &leet(&["--summary", "--json"], &corrupt)[0];
    assert_ne!(
        s["state"], "finished",
        "a corrupt record is not read: {s:#}"
    );
}

#[test]
fn wandb_dir_and_run_id_place_the_run() {
    let run = wandb_run("wandb_dir_and_id");
    let base = run.dir.join("elsewhere");
    let done = run
        .env("WANDB_MODE", "offline")
        .env("WANDB_DIR", base.to_str().unwrap())
        .env("WANDB_RUN_ID", "spec-run-1")
        .ok();
    let (folder, id) = run_folder(&base.join("wandb"));
    assert_eq!(id, "spec-run-1");
    let s = &leet(
        &["--summary", "--json"],
        &folder.join("run-spec-run-1.wandb"),
    )[0];
    assert_eq!(
        (s["state"].as_str(), s["run_id"].as_str()),
        (Some("finished"), Some("spec-run-1"))
    );
    assert_eq!(s["project"], "huggingface", "HF's default project");
    assert!(
        done.stdout
            .contains("[wandb] offline run written to wandb/offline-run-"),
        "{}",
        done.stdout
    );
}

#[test]
fn aborted_run_exits_with_code_1_and_keeps_its_history() {
    let run = wandb_run("wandb_aborted")
        .args(&["--logging_steps", "1"])
        .plugin("hostile");
    std::fs::write(
        run.dir.join("run.toml"),
        "[plugins.hostile]\non_error = \"abort\"\n",
    )
    .unwrap();
    let run = run
        .args(&[
            "--config",
            "run.toml",
            "--plugin_config",
            "hostile.mode=panic",
        ])
        .env("WANDB_MODE", "offline");
    run.fails();
    let (folder, id) = run_folder(&run.dir.join("wandb"));
    let s = &leet(
        &["--summary", "--json"],
        &folder.join(format!("run-{id}.wandb")),
    )[0];
    assert_eq!(
        (s["state"].as_str(), s["exit_code"].as_i64()),
        (Some("failed"), Some(1)),
        "{s:#}"
    );
    // hostile panics in on_step_end of step 3, after the logs of steps 1 and 2.
    assert_eq!(s["summary"]["train/global_step"], 2);
}

#[test]
fn online_mode_fails_at_configure_with_the_fix() {
    let err = wandb_run("wandb_online")
        .env("WANDB_MODE", "online")
        .fails();
    assert!(
        err.contains("WANDB_MODE=online: trainbox's wandb plugin writes offline runs only")
            && err.contains("set WANDB_MODE=offline"),
        "{err}"
    );
}

#[test]
fn loaded_without_grants_it_fails_naming_the_grant() {
    let err = Run::regression("wandb_no_grants")
        .arg("--plugin")
        .arg(plugin("wandb").to_str().unwrap())
        .env("WANDB_MODE", "offline")
        .fails();
    assert!(
        err.contains("wandb.wasm: plugin wandb asks for `write-dir /wandb`, which is not granted")
            && err.contains(
                "add plugins.wandb.write_dirs = { \"/wandb\" = \"<host dir>\" } to the run config"
            ),
        "{err}"
    );
}
