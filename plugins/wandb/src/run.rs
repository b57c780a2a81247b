//! One offline run on disk: the folder
//! `/wandb/offline-run-YYYYMMDD_HHMMSS-<id>/` (with `files/`, as a real
//! offline run has), its `run-<id>.wandb` log, and the record numbering,
//! history step and run time that wandb-core adds to what the SDK logs
//! (`_step`, `_runtime`, `_timestamp`, and the summary that follows every
//! history row). What to log is `lib.rs`'s business.

use crate::artifact::Artifact;
use crate::clock;
use crate::framing::LogWriter;
use crate::proto::{self, Envelope, Item};
use std::fs::File;
use std::time::Instant;

/// wandb 0.31's `min_consumer` for the files it writes.
const MIN_CONSUMER: &str = "0.70.0";

/// An open offline run.
pub struct Run {
    log: LogWriter<File>,
    /// The run folder, as the plugin sees it.
    pub dir: String,
    pub id: String,
    num: i64,
    started: Instant,
    /// The next history row's `_step`.
    step: i64,
    project: String,
    entity: String,
    /// The run's summary as it stands (what `dict(wandb.summary)` returns).
    summary_now: Vec<Pair>,
}

/// A key and its JSON value.
pub type Pair = (String, String);

/// A field of a dict value: (key, field, JSON value), as wandb-core
/// writes a logged histogram: `_type`, `values` and `bins` under its key.
pub type Field = (String, &'static str, String);

fn items(pairs: &[Pair]) -> Vec<Item<'_>> {
    pairs
        .iter()
        .map(|(k, v)| Item {
            key: k,
            field: None,
            value_json: v,
        })
        .collect()
}

fn fields(list: &[Field]) -> Vec<Item<'_>> {
    list.iter()
        .map(|(k, f, v)| Item {
            key: k,
            field: Some(f),
            value_json: v,
        })
        .collect()
}

impl Run {
    /// Creates the run folder under `root` and writes the header, the run
    /// record (with `config`) and HF's two metric definitions.
    pub fn create(root: &str, id: String, fields: RunFields) -> Result<Run, String> {
        let start = clock::unix_now();
        let dir = format!("{root}/offline-run-{}-{id}", clock::stamp(start as i64));
        std::fs::create_dir_all(format!("{dir}/files")).map_err(|e| {
            format!(
                "creating {dir}: {e}; the wandb plugin writes under {root}, which `--report_to wandb` grants \
                 (or add plugins.wandb.write_dirs = {{ \"{root}\" = \"wandb\" }} to the run config)"
            )
        })?;
        let path = format!("{dir}/run-{id}.wandb");
        let file = File::create(&path).map_err(|e| format!("creating {path}: {e}"))?;
        let log = LogWriter::new(file).map_err(|e| format!("writing {path}: {e}"))?;
        let mut run = Run {
            log,
            dir,
            id,
            num: 0,
            started: Instant::now(),
            step: 0,
            project: fields.project.clone(),
            entity: fields.entity.clone(),
            summary_now: Vec::new(),
        };
        let producer = concat!("trainbox-wandb-", env!("CARGO_PKG_VERSION"));
        let config = items(&fields.config);
        let run_id = run.id.clone();
        let record = proto::Run {
            run_id: &run_id,
            entity: &fields.entity,
            project: &fields.project,
            config: &config,
            display_name: fields.display_name.as_deref(),
            host: &fields.host,
            start_time: (start.trunc() as i64, (start.fract() * 1e9) as i32),
        };
        run.write(|env| proto::header(env, producer, MIN_CONSUMER))?;
        run.write(|env| proto::run(env, &record))?;
        // HF: define_metric("train/global_step"), then every metric against it.
        run.write(|env| proto::metric(env, "train/global_step", false, None))?;
        run.write(|env| proto::metric(env, "*", true, Some("train/global_step")))?;
        Ok(run)
    }

    /// Appends the record `make` builds with the next record number.
    fn write(&mut self, make: impl FnOnce(&Envelope) -> Vec<u8>) -> Result<(), String> {
        self.num += 1;
        let env = Envelope {
            num: self.num,
            stream_id: &self.id,
        };
        let record = make(&env);
        self.log
            .append(&record)
            .map_err(|e| format!("writing {}/run-{}.wandb: {e}", self.dir, self.id))
    }

    /// `config.update(pairs)`.
    pub fn config(&mut self, pairs: &[Pair]) -> Result<(), String> {
        self.write(|env| proto::config(env, &items(pairs)))
    }

    /// `run.summary.update(pairs)`.
    pub fn summary(&mut self, pairs: &[Pair]) -> Result<(), String> {
        self.remember(pairs);
        self.write(|env| proto::summary(env, &items(pairs)))
    }

    /// Updates the summary as it stands (flat values only: a dict value
    /// is never a number, the one thing read back).
    fn remember(&mut self, pairs: &[Pair]) {
        for (k, v) in pairs {
            match self.summary_now.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v.clone(),
                None => self.summary_now.push((k.clone(), v.clone())),
            }
        }
    }

    /// HF's artifact metadata from the summary: the numbers (booleans
    /// too, as `numbers.Number` takes them) under keys not starting `_`.
    pub fn numeric_summary(&self) -> Vec<Pair> {
        self.summary_now
            .iter()
            .filter(|(k, v)| !k.starts_with('_') && is_number(v))
            .cloned()
            .collect()
    }

    /// `run.log_artifact(artifact, aliases)`.
    pub fn log_artifact(&mut self, artifact: Artifact, aliases: &[String]) -> Result<(), String> {
        let record = artifact.record(&self.id, &self.project, &self.entity, aliases);
        self.write(|env| proto::artifact(env, record))
    }

    /// `wandb.log(row)`: a history row with wandb-core's `_step`, `_runtime`
    /// and `_timestamp`, then the summary update the core derives from it;
    /// `dicts` are the fields of the row's dict values (histograms).
    pub fn log_fields(&mut self, mut row: Vec<Pair>, dicts: &[Field]) -> Result<(), String> {
        let step = self.step;
        self.step += 1;
        row.push(("_timestamp".into(), json_f64(clock::unix_now())));
        row.push(("_runtime".into(), json_f64(self.runtime())));
        row.push(("_step".into(), step.to_string()));
        let mut all = items(&row);
        all.extend(fields(dicts));
        self.write(|env| proto::history(env, &all, step))?;
        self.remember(&row);
        let mut all = items(&row);
        all.extend(fields(dicts));
        self.write(|env| proto::summary(env, &all))
    }

    /// The exit record (0: finished, else failed); the log is flushed.
    pub fn exit(&mut self, exit_code: i32) -> Result<(), String> {
        let runtime = self.runtime() as i32;
        self.write(|env| proto::exit(env, exit_code, runtime))?;
        self.log
            .flush()
            .map_err(|e| format!("flushing {}: {e}", self.dir))
    }

    fn runtime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// What the run record says of the run.
pub struct RunFields {
    pub entity: String,
    pub project: String,
    pub display_name: Option<String>,
    pub host: String,
    pub config: Vec<Pair>,
}

/// A float as JSON, with Python's `NaN`/`Infinity` for what JSON lacks (as
/// the wandb SDK writes them).
pub fn json_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::Value::from(v).to_string()
    }
}

/// Whether JSON text `v` is a number or a boolean (NaN and the infinities
/// included, as wandb writes them).
fn is_number(v: &str) -> bool {
    matches!(v, "NaN" | "Infinity" | "-Infinity" | "true" | "false")
        || matches!(
            serde_json::from_str::<serde_json::Value>(v),
            Ok(serde_json::Value::Number(_))
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_json_with_python_non_finites() {
        assert_eq!(json_f64(0.5), "0.5");
        assert_eq!(json_f64(2.0), "2.0");
        assert_eq!(json_f64(1e-5), "0.00001");
        assert_eq!(json_f64(f64::NAN), "NaN");
        assert_eq!(json_f64(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn numbers_and_flags_count_as_numbers() {
        for v in ["1", "-2.5e-05", "NaN", "-Infinity", "true"] {
            assert!(is_number(v), "{v}");
        }
        for v in ["\"text\"", "{\"_type\":\"histogram\"}", "null", "[1]"] {
            assert!(!is_number(v), "{v}");
        }
    }
}
