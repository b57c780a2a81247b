//! `trainbox report OUTPUT_DIR [OUTPUT_DIR...] [--out DIR]`: the learning
//! curves of one or several finished (or running) runs in one picture, a
//! colour per run, and a table with a row per run.
//!
//! Each run is read from its `trainer_state.json` (the output_dir's, else
//! its latest checkpoint's, so a run still training or killed can be
//! looked at); the metric it picks checkpoints by from a checkpoint's
//! `training_args.json` (HF's runs, which write `training_args.bin`, are
//! judged by `eval_loss`).

use crate::args::TrainingArguments;
use crate::pyjson::Json;
use crate::report::{self, RunCurves, Summary};
use crate::state::TrainerState;
use crate::trainer::{
    get_last_checkpoint, TRAINER_STATE_FILE as STATE_FILE, TRAINING_ARGS_FILE as ARGS_FILE,
};
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

const USAGE: &str = "trainbox report OUTPUT_DIR [OUTPUT_DIR...] [--out DIR]

Draws the learning curves of the runs (train loss, eval loss and every eval
metric against steps; several runs overlaid, a colour per run) into
DIR/learning_curves.svg and .png, with the plotted data in
learning_curves.json, and prints a table with a row per run.

    --out DIR   where the pictures go (default: the run's output_dir for
                one run, the current folder for several)
";

/// Runs `trainbox report`.
pub fn run(argv: &[String]) -> Result<i32> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut out: Option<PathBuf> = None;
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(0);
            }
            "--out" => {
                let dir = it
                    .next()
                    .ok_or_else(|| anyhow!("--out needs a folder\n\nUSAGE:\n    {USAGE}"))?;
                out = Some(PathBuf::from(dir));
            }
            flag if flag.starts_with("--out=") => out = Some(PathBuf::from(&flag[6..])),
            flag if flag.starts_with('-') => {
                bail!("trainbox report: unknown flag {flag:?}\n\nUSAGE:\n    {USAGE}")
            }
            dir => dirs.push(PathBuf::from(dir)),
        }
    }
    if dirs.is_empty() {
        bail!("trainbox report needs at least one output_dir\n\nUSAGE:\n    {USAGE}");
    }
    let names = run_names(&dirs);
    let mut curves = Vec::new();
    let mut summaries = Vec::new();
    for (dir, name) in dirs.iter().zip(names) {
        let state = read_state(dir)?;
        let args = read_args(dir, &state);
        let mut summary = Summary::of(
            &state,
            dir,
            args.best_metric_key().as_deref(),
            args.greater_is_better,
        );
        summary.run = name.clone();
        summaries.push(summary);
        curves.push(RunCurves::from_history(&name, &state.log_history));
    }
    let out = out.unwrap_or_else(|| {
        if dirs.len() == 1 {
            dirs[0].clone()
        } else {
            PathBuf::from(".")
        }
    });
    for line in Summary::table(&summaries) {
        crate::ui::println(&line);
    }
    let [svg, png] = report::write_curves(&out, &curves)?;
    crate::ui::info(&format!(
        "learning curves: {} and {}",
        svg.display(),
        png.display()
    ));
    Ok(0)
}

/// Each run's name in legends: its folder's name, or the path as given
/// where two runs share a name.
fn run_names(dirs: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = dirs.iter().map(|d| report::run_name(d)).collect();
    names
        .iter()
        .zip(dirs)
        .map(|(name, dir)| {
            if names.iter().filter(|n| *n == name).count() > 1 {
                dir.display().to_string()
            } else {
                name.clone()
            }
        })
        .collect()
}

/// The run's `trainer_state.json`: the output_dir's, else its latest
/// checkpoint's.
fn read_state(dir: &Path) -> Result<TrainerState> {
    if !dir.is_dir() {
        bail!("{}: no such folder; give a run's output_dir", dir.display());
    }
    let mut path = dir.join(STATE_FILE);
    if !path.is_file() {
        match get_last_checkpoint(dir)? {
            Some(ckpt) if ckpt.join(STATE_FILE).is_file() => path = ckpt.join(STATE_FILE),
            _ => bail!(
                "{}: not found, and no checkpoint-N folder holds one; is {} a run's output_dir?",
                path.display(),
                dir.display()
            ),
        }
    }
    TrainerState::load_from_json(&path).map_err(|e| {
        anyhow!(
            "{}: not a readable trainer state ({}); was the run killed while writing it? \
             a checkpoint-N folder's copy may be whole",
            path.display(),
            e.root_cause()
        )
    })
}

/// The settings that judge the run's checkpoints (`metric_for_best_model`,
/// `greater_is_better`), from the best or the latest checkpoint's
/// `training_args.json`; the defaults when there is none.
fn read_args(dir: &Path, state: &TrainerState) -> TrainingArguments {
    let best = state
        .best_model_checkpoint
        .as_deref()
        .and_then(|b| Path::new(b).file_name())
        .map(|name| dir.join(name));
    let latest = get_last_checkpoint(dir).ok().flatten();
    let json = best
        .into_iter()
        .chain(latest)
        .map(|ckpt| ckpt.join(ARGS_FILE))
        .find_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            Json::parse(&text).ok()
        });
    let field = |key: &str| json.as_ref().and_then(|j| j.as_object()?.get(key).cloned());
    TrainingArguments {
        metric_for_best_model: field("metric_for_best_model")
            .and_then(|v| v.as_str().map(String::from)),
        greater_is_better: field("greater_is_better").and_then(|v| v.as_bool()),
        ..Default::default()
    }
}
