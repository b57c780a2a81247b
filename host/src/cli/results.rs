//! The results files of HF's example scripts: `log_metrics` (the table
//! printed after each split), `save_metrics` (`{split}_results.json` and
//! `all_results.json`, `json.dump(metrics, f, indent=4, sort_keys=True)`,
//! written through trainbox-pyformat for byte-equality with Python's json),
//! and the predictions of `--do_predict` as safetensors.

use crate::atomic_file::write_beside;
use crate::pyjson::Json;
use crate::state::{Logs, Value};
use anyhow::{Context, Result};
use std::path::Path;
use tch::Tensor;

/// The file `--do_predict` writes its predictions to.
pub const PREDICTIONS_FILE: &str = "predictions.safetensors";

/// HF's `log_metrics`: `***** {split} metrics *****`, then one aligned line
/// per metric, sorted, runtimes as `h:mm:ss.cc`, `total_flos` in GF,
/// floats rounded to 4 digits.
pub fn log_metrics(split: &str, metrics: &Logs) {
    println!("{}", format_metrics(split, metrics).join("\n"));
}

fn format_metrics(split: &str, metrics: &Logs) -> Vec<String> {
    let mut rows: Vec<(String, String)> = metrics
        .iter()
        .map(|(k, v)| (k.to_string(), format_value(k, v)))
        .collect();
    rows.sort();
    let kw = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let vw = rows
        .iter()
        .map(|(_, v)| v.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = vec![format!("***** {split} metrics *****")];
    out.extend(rows.iter().map(|(k, v)| format!("  {k:<kw$} = {v:>vw$}")));
    out
}

/// One value as HF's `metrics_format` shows it.
fn format_value(key: &str, value: &Value) -> String {
    let number = value.as_f64();
    match (value, number) {
        (Value::Float(_) | Value::Int(_), Some(v)) if key.contains("_runtime") => secs2timedelta(v),
        (Value::Float(_) | Value::Int(_), Some(v)) if key == "total_flos" => {
            format!("{}GF", (v as i64) >> 30)
        }
        (Value::Float(v), _) => trainbox_pyformat::float_repr((v * 1e4).round_ties_even() / 1e4),
        (Value::Int(i), _) => i.to_string(),
        (Value::Text(s), _) => s.clone(),
        (Value::Flag(b), _) => if *b { "True" } else { "False" }.to_string(),
    }
}

/// Python's `f"{datetime.timedelta(seconds=int(secs))}.{msec:02d}"`.
fn secs2timedelta(secs: f64) -> String {
    let whole = secs.trunc() as i64;
    let msec = ((secs - secs.trunc()).abs() * 100.0) as i64;
    let (h, m, s) = (whole / 3600, (whole % 3600) / 60, whole % 60);
    format!("{h}:{m:02}:{s:02}.{msec:02}")
}

/// HF's `save_metrics(split, metrics, combined=True)`: `{split}_results.json`,
/// and `all_results.json` updated with the same metrics. An existing
/// `all_results.json` that is not JSON is kept as `all_results.json.bak`.
pub fn save_metrics(dir: &Path, split: &str, metrics: &Logs) -> Result<()> {
    let split_file = dir.join(format!("{split}_results.json"));
    write_json(&split_file, &metrics.to_json())?;
    let all_file = dir.join("all_results.json");
    let mut all = match std::fs::read_to_string(&all_file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", all_file.display())),
        Ok(text) => match Json::parse(&text) {
            Ok(Json::Object(map)) => map,
            _ => {
                let kept = all_file.with_extension("json.bak");
                crate::ui::warn(&format!(
                    "{} is not a JSON object; it is kept as {} and written afresh",
                    all_file.display(),
                    kept.display()
                ));
                std::fs::rename(&all_file, &kept)
                    .with_context(|| format!("renaming {}", all_file.display()))?;
                Default::default()
            }
        },
    };
    if let Json::Object(new) = metrics.to_json() {
        all.extend(new);
    }
    write_json(&all_file, &Json::Object(all))
}

fn write_json(path: &Path, value: &Json) -> Result<()> {
    let text = trainbox_pyformat::json_dumps(value, Some(4));
    write_beside(path, |tmp| {
        std::fs::write(tmp, &text).with_context(|| format!("writing {}", path.display()))
    })
}

/// Writes `predictions` (and `label_ids`, when given) to
/// `dir/predictions.safetensors`.
pub fn save_predictions(
    dir: &Path,
    predictions: Option<&Tensor>,
    label_ids: Option<&Tensor>,
) -> Result<()> {
    let path = dir.join(PREDICTIONS_FILE);
    let tensors: Vec<(&str, Tensor)> = [("predictions", predictions), ("label_ids", label_ids)]
        .into_iter()
        .filter_map(|(n, t)| t.map(|t| (n, t.contiguous())))
        .collect();
    if tensors.is_empty() {
        crate::ui::warn(&format!(
            "the model returned no logits and the test data has no labels: {} is not written",
            path.display()
        ));
        return Ok(());
    }
    write_beside(&path, |tmp| {
        Tensor::write_safetensors(&tensors, tmp)
            .with_context(|| format!("writing {}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_hfs() {
        let mut m = Logs::new();
        m.insert("train_runtime", Value::Float(3723.456));
        m.insert("total_flos", Value::Float(3.5 * (1u64 << 30) as f64));
        m.insert("train_loss", Value::Float(0.123456));
        m.insert("train_samples", Value::Int(64));
        assert_eq!(
            format_metrics("train", &m),
            [
                "***** train metrics *****",
                "  total_flos    =        3GF",
                "  train_loss    =     0.1235",
                "  train_runtime = 1:02:03.45",
                "  train_samples =         64",
            ]
        );
    }
}
