//! The end of a run, for people: the summary `trainbox train` prints
//! (naming the best checkpoint), the learning curves it writes, and
//! `trainbox report` over two runs, whose pictures are read back: the
//! plotted data equal the runs' `log_history`, the SVG's lines have those
//! points where the axes put them, and the PNG decodes.

use crate::util::{read_state, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A regression run into `<test dir>/<name>`, evaluated every 4 steps,
/// keeping the best checkpoint by eval loss.
fn train(test: &str, name: &str, lr: &str) -> (PathBuf, String) {
    let run = Run::command(test, &[]);
    let out = run.dir.join(name);
    let run = run.args(&[
        "train",
        "--task",
        "regression",
        "--disable_tqdm",
        "--output_dir",
        out.to_str().unwrap(),
        "--learning_rate",
        lr,
        "--logging_steps",
        "2",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "4",
        "--save_steps",
        "8",
        "--metric_for_best_model",
        "loss",
        "--load_best_model_at_end",
    ]);
    let done = run.ok();
    (out, done.stderr)
}

/// The curves the log history holds, computed here from the rule, not by
/// the host: (metric, points) for `loss` and every `eval_*` but the speed keys.
fn expected_series(history: &[Value]) -> Vec<(String, Vec<(u64, f64)>)> {
    let mut out: Vec<(String, Vec<(u64, f64)>)> = Vec::new();
    for entry in history {
        let entry = entry.as_object().unwrap();
        let step = entry["step"].as_u64().unwrap();
        for (key, value) in entry {
            let speed = ["_runtime", "_per_second"].iter().any(|s| key.ends_with(s));
            if !(key == "loss" || key.starts_with("eval_") && !speed) {
                continue;
            }
            let Some(v) = value.as_f64() else { continue };
            match out.iter_mut().find(|(k, _)| k == key) {
                Some((_, points)) => points.push((step, v)),
                None => out.push((key.clone(), vec![(step, v)])),
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The series of one run in `learning_curves.json`, sorted by metric.
fn plotted_series(json: &Value, run: &str) -> Vec<(String, Vec<(u64, f64)>)> {
    let runs = json["runs"].as_array().unwrap();
    let run = runs
        .iter()
        .find(|r| r["run"] == run)
        .unwrap_or_else(|| panic!("no run {run} in {json}"));
    let mut out: Vec<(String, Vec<(u64, f64)>)> = run["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
                .collect();
            (s["metric"].as_str().unwrap().to_string(), points)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The points of every `<polyline>` in an SVG document.
fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| {
            n.attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// Whether `pixels` are `values` under some axis `a + b·v` (b ≠ 0), to
/// within the pixel rounding: the least-squares line leaves no pixel more
/// than 1.5 off.
fn affine(values: &[f64], pixels: &[f64]) -> bool {
    let n = values.len() as f64;
    let (mv, mp) = (
        values.iter().sum::<f64>() / n,
        pixels.iter().sum::<f64>() / n,
    );
    let var: f64 = values.iter().map(|v| (v - mv).powi(2)).sum();
    if var == 0.0 {
        return pixels.iter().all(|p| (p - mp).abs() <= 1.5);
    }
    let cov: f64 = values
        .iter()
        .zip(pixels)
        .map(|(v, p)| (v - mv) * (p - mp))
        .sum();
    let b = cov / var;
    b != 0.0
        && values
            .iter()
            .zip(pixels)
            .all(|(v, p)| (mp + b * (v - mv) - p).abs() <= 1.5)
}

/// A polyline that draws `points`: as many vertices, x affine in the steps
/// and y affine in the values (or their logarithms, on a log scale).
fn drawn(lines: &[Vec<(f64, f64)>], points: &[(u64, f64)]) -> bool {
    let steps: Vec<f64> = points.iter().map(|p| p.0 as f64).collect();
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let logs: Vec<f64> = values.iter().map(|v| v.log10()).collect();
    lines.iter().any(|line| {
        let xs: Vec<f64> = line.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = line.iter().map(|p| p.1).collect();
        line.len() == points.len()
            && affine(&steps, &xs)
            && (affine(&values, &ys) || affine(&logs, &ys))
    })
}

/// The pictures in `dir` show `runs`: the JSON's series equal each run's
/// log history, every series of 2 points or more is a polyline in the SVG,
/// and the PNG decodes at the SVG's size.
fn assert_pictures_show(dir: &Path, runs: &[(&str, &Path)]) {
    let json = read_json(&dir.join("learning_curves.json"));
    let svg = std::fs::read_to_string(dir.join("learning_curves.svg")).unwrap();
    let lines = polylines(&svg);
    for (name, out) in runs {
        let state = read_state(&out.join("trainer_state.json"));
        let want = expected_series(state["log_history"].as_array().unwrap());
        let metrics: Vec<&str> = want.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            metrics,
            ["eval_loss", "loss"],
            "what the regression task logs"
        );
        assert_eq!(
            plotted_series(&json, name),
            want,
            "{name}: the plotted data are the log history"
        );
        for (metric, points) in &want {
            assert!(points.len() >= 2, "{name} {metric}: {points:?}");
            assert!(
                drawn(&lines, points),
                "{name} {metric}: no polyline of the SVG draws its {} points",
                points.len()
            );
        }
    }
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    let size: Vec<u32> = ["width", "height"]
        .iter()
        .map(|a| root.attribute(*a).unwrap().parse().unwrap())
        .collect();
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(String::from))
        .collect();
    for label in ["step", "loss", "train loss", "eval loss"] {
        assert!(
            texts.iter().any(|t| t.contains(label)),
            "axis label or legend {label:?} in {texts:?}"
        );
    }
    let file = std::fs::File::open(dir.join("learning_curves.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("the PNG decodes");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader
        .next_frame(&mut pixels)
        .expect("the PNG's pixels decode");
    assert_eq!(
        [info.width, info.height],
        size[..],
        "the PNG is the SVG's picture"
    );
    let inked = pixels.iter().filter(|b| **b < 128).count();
    assert!(
        inked > 1000,
        "the PNG has lines and text: {inked} dark bytes"
    );
}

#[test]
fn a_run_ends_with_a_summary_naming_its_best_checkpoint_and_its_curves() {
    let (out, stderr) = train("report_summary", "lr-small", "0.01");
    let state = read_state(&out.join("trainer_state.json"));
    let best = state["best_model_checkpoint"].as_str().unwrap();
    let best_step = state["best_global_step"].as_u64().unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.starts_with("trainbox: trained 24 steps (3 epochs) in "))
        .unwrap_or_else(|| panic!("no summary headline:\n{stderr}"));
    assert!(lines[head].ends_with(" samples/s"), "{}", lines[head]);
    let field = |name: &str| -> &str {
        lines[head..]
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name:?} line in the summary:\n{stderr}"))
            .trim()
    };
    assert_eq!(field("best checkpoint"), best, "{stderr}");
    assert!(best.ends_with(&format!("checkpoint-{best_step}")), "{best}");
    assert!(
        field("eval_loss").ends_with(&format!(" at step {best_step}")),
        "the best eval loss at the best step: {stderr}"
    );
    assert!(field("train loss").contains(" at step 24 "), "{stderr}");
    assert_eq!(
        field("final model"),
        out.join("model.safetensors").to_str().unwrap()
    );
    assert!(field("learning curves").starts_with(out.join("learning_curves.svg").to_str().unwrap()));
    // The plugins' costs come after, on one line when nothing went wrong.
    let costs = lines
        .iter()
        .position(|l| l.starts_with("plugins: ") || l.starts_with("plugin "))
        .unwrap_or_else(|| panic!("no plugin report:\n{stderr}"));
    assert!(costs > head, "the summary comes first:\n{stderr}");
    assert_pictures_show(&out, &[("lr-small", &out)]);
}

#[test]
fn report_draws_two_runs_over_each_other_from_their_log_history() {
    let (small, _) = train("report_small", "lr-small", "0.01");
    let (large, _) = train("report_large", "lr-large", "0.05");
    let cmp = Run::command("report_two", &[]);
    let pictures = cmp.dir.join("compare");
    let done = cmp
        .args(&[
            "report",
            small.to_str().unwrap(),
            large.to_str().unwrap(),
            "--out",
            pictures.to_str().unwrap(),
        ])
        .ok();
    assert_pictures_show(&pictures, &[("lr-small", &small), ("lr-large", &large)]);
    // The table: a header, then a row per run with its best checkpoint.
    let rows: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{}", done.stdout);
    assert!(rows[0].starts_with("run") && rows[0].contains("best checkpoint"));
    for (row, out, name) in [(rows[1], &small, "lr-small"), (rows[2], &large, "lr-large")] {
        let state = read_state(&out.join("trainer_state.json"));
        let step = state["best_global_step"].as_u64().unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[..2], [name, "24"], "{row}");
        assert!(
            row.contains(&format!(" @ {step} ")),
            "best eval_loss at {step}: {row}"
        );
        assert!(row.contains(&format!("checkpoint-{step}")), "{row}");
        assert!(row.ends_with(" s"), "the wall time: {row}");
    }
}

#[test]
fn report_names_a_missing_or_corrupt_state_file() {
    let run = Run::command("report_errors", &[]);
    let empty = run.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = run
        .clone()
        .args(&["report", empty.to_str().unwrap()])
        .fails();
    assert!(
        err.contains(&format!(
            "{}: not found",
            empty.join("trainer_state.json").display()
        )),
        "{err}"
    );
    let corrupt = run.dir.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("trainer_state.json"), "{\"log_history\": [").unwrap();
    let err = run.args(&["report", corrupt.to_str().unwrap()]).fails();
    let file = corrupt.join("trainer_state.json");
    assert!(
        err.contains(&format!("{}: not a readable trainer state", file.display())),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn under_torchrun_world_zero_alone_prints_the_summary_and_draws_the_curves() {
    let run = Run::command("report_two_ranks", &[]);
    let out = run.out();
    let done = run
        .args(&["train", "--task", "regression", "--disable_tqdm"])
        .args(&["--output_dir", out.to_str().unwrap()])
        .args(&["--logging_steps", "2", "--eval_strategy", "steps"])
        .args(&["--eval_steps", "4", "--save_steps", "4", "--max_steps", "8"])
        // Fast enough that the two evaluations are pixels apart.
        .args(&["--learning_rate", "0.05"])
        .env("OMP_NUM_THREADS", "1")
        .torchrun(2, &[])
        .ok();
    let headlines = done
        .stderr
        .lines()
        .filter(|l| l.contains("trainbox: trained 8 steps"))
        .count();
    assert_eq!(headlines, 1, "one summary for the run:\n{}", done.stderr);
    let costs = done
        .stderr
        .lines()
        .filter(|l| l.contains("plugins: ") || l.starts_with("plugin "))
        .count();
    assert_eq!(costs, 1, "one plugin report:\n{}", done.stderr);
    assert_pictures_show(&out, &[("out", &out)]);
}
