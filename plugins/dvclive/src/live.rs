//! dvclive's `Live` (3.49), the part HF's `DVCLiveCallback` uses, writing
//! the files dvclive writes in its directory, byte for byte:
//! - `params.yaml`: the params (`log_params`), as ruamel.yaml dumps them;
//! - `plots/metrics/<name>.tsv`: `step\t<leaf>`, then a row each time the
//!   metric is logged (`log_metric`), as Python's `csv` writes it;
//! - `metrics.json`: the latest value of every metric, nested by `/`, and
//!   `step`, as `json.dump(indent=4)` writes it (`next_step`, `end`);
//! - `dvc.yaml`: where DVC finds the three, relative to this directory (real
//!   dvclive puts it in the repository root, which a plugin cannot write).
//!
//! What it does not do: save a DVC experiment, `dvc init` a Git repository,
//! reports, images, plots other than metrics, artifacts, DVC Studio.

use crate::yaml;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use trainbox_sdk::python::{float_repr, json_dumps, Py};

/// What `Live()` removes from its directory when it starts (no resume).
const STALE: &[&str] = &[
    "plots/metrics",
    "plots/images",
    "plots/custom",
    "plots/sklearn",
    "metrics.json",
    "params.yaml",
    "report.html",
    "report.md",
    "dvc.yaml",
];

pub struct Live {
    dir: PathBuf,
    /// `None` until the first `next_step`.
    step: Option<u64>,
    summary: Vec<(String, Py)>,
    /// The open history file of each metric logged, by name.
    metrics: HashMap<String, File>,
    params: Vec<(String, Py)>,
    /// Whether `plots/metrics` holds a history.
    plotted: bool,
    /// The `dvc.yaml` last written, to write it only when it changes.
    dvcyaml: String,
    /// `metrics.json`, kept open, and its length: rewritten in place at every step.
    summary_file: Option<(File, u64)>,
}

impl Live {
    /// `Live(dir)`: creates the directory and clears what a previous run left.
    pub fn new(dir: &Path) -> io::Result<Live> {
        fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        for stale in STALE {
            let path = dir.join(stale);
            let removed = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(_) => Ok(()),
            };
            removed.map_err(|e| at(&path, e))?;
        }
        Ok(Live {
            dir: dir.to_path_buf(),
            step: None,
            summary: Vec::new(),
            metrics: HashMap::new(),
            params: Vec::new(),
            plotted: false,
            dvcyaml: String::new(),
            summary_file: None,
        })
    }

    /// `log_params`: adds to the params (a key logged again keeps its
    /// place) and rewrites `params.yaml`.
    pub fn log_params(&mut self, params: Vec<(String, Py)>) -> io::Result<()> {
        for (k, v) in params {
            set(&mut self.params, k, v);
        }
        self.write("params.yaml", &yaml::dump(&self.params))
    }

    /// `log_metric(name, val)`: a row in the metric's history at the current
    /// step, and the latest value in the summary. NaN and infinities are
    /// logged as the strings `nan`, `inf`, `-inf`, as dvclive does. A name
    /// with an empty or `..` path is refused.
    pub fn log_metric(&mut self, name: &str, val: &Py) -> io::Result<()> {
        let segments: Vec<&str> = name
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        let (Some(leaf), false) = (segments.last(), segments.contains(&"..")) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("metric name {name:?} is not a relative path"),
            ));
        };
        let val = match val {
            Py::Float(f) if !f.is_finite() => Py::Str(float_repr(*f)),
            v => v.clone(),
        };
        let step = self.step.unwrap_or(0);
        let row = format!("{step}\t{}\n", tsv_cell(&val));
        let key = segments.join("/");
        match self.metrics.get_mut(&key) {
            Some(file) => file.write_all(row.as_bytes()),
            None => {
                let path = self.dir.join("plots/metrics").join(format!("{key}.tsv"));
                let file = open_history(&path, leaf, &row).map_err(|e| at(&path, e))?;
                self.metrics.insert(key, file);
                self.plotted = true;
                Ok(())
            }
        }?;
        set_in(&mut self.summary, &segments, val);
        Ok(())
    }

    /// `next_step`: writes the summary and `dvc.yaml`, then counts a step.
    pub fn next_step(&mut self) -> io::Result<()> {
        let step = *self.step.get_or_insert(0);
        self.sync()?;
        self.step = Some(step + 1);
        Ok(())
    }

    /// `end`: the step goes back to the last one written, and the summary
    /// and `dvc.yaml` are written once more.
    pub fn end(&mut self) -> io::Result<()> {
        if let Some((_, Py::Int(step))) = self.summary.iter().find(|(k, _)| k == "step") {
            self.step = u64::try_from(*step).ok();
        }
        self.sync()?;
        self.metrics.clear();
        self.summary_file = None;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if let Some(step) = self.step {
            set(&mut self.summary, "step".into(), Py::Int(step.into()));
        }
        let summary = json_dumps(&Py::Dict(self.summary.clone()), Some(4)) + "\n";
        self.write_summary(summary.as_bytes())?;
        let dvcyaml = self.dvcyaml();
        if dvcyaml != self.dvcyaml {
            self.write("dvc.yaml", &dvcyaml)?;
            self.dvcyaml = dvcyaml;
        }
        Ok(())
    }

    /// `make_dvcyaml`, with paths relative to this directory.
    fn dvcyaml(&self) -> String {
        let mut y = String::new();
        if !self.params.is_empty() {
            y.push_str("params:\n- params.yaml\n");
        }
        if !self.summary.is_empty() {
            y.push_str("metrics:\n- metrics.json\n");
        }
        if self.plotted {
            y.push_str("plots:\n- plots/metrics:\n    x: step\n");
        }
        if y.is_empty() {
            y.push_str("{}\n");
        }
        y
    }

    /// Rewrites `metrics.json` through the open file: opening a path in the
    /// sandbox costs several times the write.
    fn write_summary(&mut self, text: &[u8]) -> io::Result<()> {
        let path = self.dir.join("metrics.json");
        let (file, len) = match &mut self.summary_file {
            Some(open) => open,
            None => {
                let file = File::create(&path).map_err(|e| at(&path, e))?;
                self.summary_file.insert((file, 0))
            }
        };
        let new_len = text.len() as u64;
        let shrinks = new_len < *len;
        *len = new_len;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(text))
            .and_then(|()| {
                if shrinks {
                    file.set_len(new_len)
                } else {
                    Ok(())
                }
            })
            .map_err(|e| at(&path, e))
    }

    fn write(&self, name: &str, text: &str) -> io::Result<()> {
        let path = self.dir.join(name);
        fs::write(&path, text).map_err(|e| at(&path, e))
    }
}

/// Opens a metric's history for appending, with its header if it is new.
fn open_history(path: &Path, leaf: &str, first_row: &str) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let existed = path.exists();
    let mut file = File::options().create(true).append(true).open(path)?;
    let mut text = String::new();
    if !existed {
        text = format!("step\t{}\n", tsv_cell(&Py::Str(leaf.into())));
    }
    text.push_str(first_row);
    file.write_all(text.as_bytes())?;
    Ok(file)
}

/// A value as Python's `csv` writes it in a tab-separated row: `str(value)`,
/// quoted when it holds a tab, a quote or a newline.
fn tsv_cell(v: &Py) -> String {
    let text = match v {
        Py::None => "None".into(),
        Py::Bool(b) => if *b { "True" } else { "False" }.into(),
        Py::Int(i) => i.to_string(),
        Py::Float(f) => float_repr(*f),
        Py::Str(s) => s.clone(),
        Py::List(_) | Py::Dict(_) => json_dumps(v, None),
    };
    if text.contains(['\t', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `d[key] = value` on an ordered dict.
fn set(dict: &mut Vec<(String, Py)>, key: String, value: Py) {
    match dict.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = value,
        None => dict.push((key, value)),
    }
}

/// funcy's `set_in`: the value at a nested path, making dicts on the way
/// (a value in the way is replaced).
fn set_in(dict: &mut Vec<(String, Py)>, path: &[&str], value: Py) {
    let [first, rest @ ..] = path else { return };
    if rest.is_empty() {
        return set(dict, first.to_string(), value);
    }
    let i = match dict.iter().position(|(k, _)| k == first) {
        Some(i) => i,
        None => {
            dict.push((first.to_string(), Py::Dict(Vec::new())));
            dict.len() - 1
        }
    };
    if !matches!(dict[i].1, Py::Dict(_)) {
        dict[i].1 = Py::Dict(Vec::new());
    }
    if let Py::Dict(inner) = &mut dict[i].1 {
        set_in(inner, rest, value);
    }
}

/// An I/O error that names the path.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_python_csv() {
        assert_eq!(tsv_cell(&Py::Float(4e-05)), "4e-05");
        assert_eq!(tsv_cell(&Py::Bool(true)), "True");
        assert_eq!(tsv_cell(&Py::Int(7)), "7");
        assert_eq!(tsv_cell(&Py::Str("a\tb".into())), "\"a\tb\"");
        assert_eq!(tsv_cell(&Py::Str("a\"b".into())), "\"a\"\"b\"");
        assert_eq!(tsv_cell(&Py::Str("a\rb".into())), "a\rb");
    }

    #[test]
    fn a_run_clears_old_files_and_logs_non_finite_values_as_strings() {
        let dir = std::env::temp_dir().join(format!("trainbox-dvclive-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("plots/metrics/old")).unwrap();
        fs::write(dir.join("dvc.yaml"), "stale").unwrap();
        let mut live = Live::new(&dir).unwrap();
        assert!(!dir.join("plots/metrics").exists() && !dir.join("dvc.yaml").exists());
        live.log_params(vec![("lr".into(), Py::Float(5e-05))])
            .unwrap();
        live.log_metric("loss", &Py::Float(f64::NAN)).unwrap();
        live.next_step().unwrap();
        live.log_metric("eval/loss", &Py::Float(f64::NEG_INFINITY))
            .unwrap();
        live.next_step().unwrap();
        live.end().unwrap();
        assert!(live.log_metric("../x", &Py::Int(1)).is_err());
        let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("plots/metrics/loss.tsv"), "step\tloss\n0\tnan\n");
        assert_eq!(read("plots/metrics/eval/loss.tsv"), "step\tloss\n1\t-inf\n");
        assert_eq!(
            read("metrics.json"),
            "{\n    \"loss\": \"nan\",\n    \"step\": 1,\n    \"eval\": {\n        \"loss\": \"-inf\"\n    }\n}\n"
        );
        assert_eq!(read("params.yaml"), "lr: 5e-05\n");
        assert!(read("dvc.yaml").ends_with("plots:\n- plots/metrics:\n    x: step\n"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn set_in_nests_and_keeps_order() {
        let mut d = Vec::new();
        set_in(&mut d, &["loss"], Py::Float(1.0));
        set_in(&mut d, &["eval", "loss"], Py::Float(2.0));
        set_in(&mut d, &["loss"], Py::Float(3.0));
        set_in(&mut d, &["eval", "runtime"], Py::Int(1));
        assert_eq!(
            json_dumps(&Py::Dict(d), None),
            "{\"loss\": 3.0, \"eval\": {\"loss\": 2.0, \"runtime\": 1}}"
        );
    }
}
