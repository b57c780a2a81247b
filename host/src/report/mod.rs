//! The end of a run, for people: the summary of how it went and where its
//! model is (`summary.rs`), and its learning curves as pictures
//! (`curves.rs` the data, `plot.rs` the drawing).
//!
//! Leaf code over `state`: it reads a `TrainerState` (or several, for
//! `trainbox report`) and writes files; it knows nothing of the loop or of
//! plugins. The trainer writes the curves at each save and at the end of
//! training; the command line prints the summary.

mod curves;
mod plot;
mod summary;

pub use curves::{
    is_plotted, loss_scale, metric_scale, panels, wants_log_scale, Panel, RunCurves, Scale, Series,
    LOG_SCALE_DECADES,
};
pub use summary::{format_duration, BestMetric, Summary};

use crate::atomic_file::write_beside;
use crate::state::TrainerState;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The learning curves as a vector picture.
pub const SVG_FILE: &str = "learning_curves.svg";
/// The learning curves as a bitmap.
pub const PNG_FILE: &str = "learning_curves.png";
/// The data the pictures are drawn from: `{"runs": [{"run", "series":
/// [{"metric", "points": [[step, value], …]}]}]}`, for tools and tests.
pub const JSON_FILE: &str = "learning_curves.json";

/// A run's name in legends and tables: its output folder's name.
pub fn run_name(output_dir: &Path) -> String {
    let dir = std::fs::canonicalize(output_dir).unwrap_or_else(|_| output_dir.to_path_buf());
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| output_dir.display().to_string())
}

/// Writes [`SVG_FILE`], [`PNG_FILE`] and [`JSON_FILE`] of `runs` into
/// `dir`, each replaced whole; returns the pictures' paths. Fails when no
/// run logged anything to draw.
pub fn write_curves(dir: &Path, runs: &[RunCurves]) -> Result<[PathBuf; 2]> {
    if runs.iter().all(RunCurves::is_empty) {
        bail!(
            "nothing to draw: no run logged a loss or an eval metric (they are logged every \
             --logging_steps and at each --eval_strategy evaluation)"
        );
    }
    let panels = panels(runs);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join(SVG_FILE);
    let svg =
        plot::svg(runs, &panels).map_err(|e| anyhow!("drawing {}: {e}", svg_path.display()))?;
    write_beside(&svg_path, |tmp| {
        std::fs::write(tmp, &svg).with_context(|| format!("writing {}", svg_path.display()))
    })?;
    let png_path = dir.join(PNG_FILE);
    let (pixels, (w, h)) =
        plot::rgb(runs, &panels).map_err(|e| anyhow!("drawing {}: {e}", png_path.display()))?;
    write_beside(&png_path, |tmp| {
        encode_png(tmp, &pixels, w, h).with_context(|| format!("writing {}", png_path.display()))
    })?;
    let json_path = dir.join(JSON_FILE);
    write_beside(&json_path, |tmp| {
        write_json(tmp, runs).with_context(|| format!("writing {}", json_path.display()))
    })?;
    Ok([svg_path, png_path])
}

/// [`JSON_FILE`]'s document.
#[derive(serde::Serialize)]
struct CurvesFile<'a> {
    runs: &'a [RunCurves],
}

/// Streams [`JSON_FILE`] to `path` point by point: no JSON tree or text of
/// every point is held (they were, at each save: 22 MB more at the peak of a
/// 200,000-step run logged every step).
fn write_json(path: &Path, runs: &[RunCurves]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut out, &CurvesFile { runs })?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn encode_png(path: &Path, pixels: &[u8], w: u32, h: u32) -> Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // At each save: about 2 ms for a 1000×760 picture (the default level
    // takes 30), for a file a few times larger.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(())
}

/// The curves of the run in `output_dir`, written there: at each save and
/// at the end of training (by world zero, the one that writes). A failure
/// is a warning: pictures never stop a run. Returns whether they were
/// written (nothing is, before anything was logged).
pub fn write_run_curves(output_dir: &Path, state: &TrainerState) -> bool {
    let curves = RunCurves::from_history(&run_name(output_dir), &state.log_history);
    if curves.is_empty() {
        return false;
    }
    match write_curves(output_dir, std::slice::from_ref(&curves)) {
        Ok(_) => true,
        Err(e) => {
            crate::ui::warn(&format!("the learning curves were not written: {e:#}"));
            false
        }
    }
}

/// The end-of-run summary of a run that trained, on stderr above the
/// plugin table: world zero alone prints it, and nothing is printed for a
/// run that did not train (evaluation or prediction only).
pub fn print_summary(state: &TrainerState, args: &crate::args::TrainingArguments) {
    let trained = state
        .log_history
        .rfind(|e| e.get("train_runtime").is_some())
        .is_some();
    if !state.is_world_process_zero || !trained {
        return;
    }
    let summary = Summary::of(
        state,
        Path::new(&args.output_dir),
        args.best_metric_key().as_deref(),
        args.greater_is_better,
    );
    for line in summary.lines() {
        crate::ui::eprintln(&line);
    }
}
