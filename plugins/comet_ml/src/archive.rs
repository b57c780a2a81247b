//! An offline Comet experiment as comet_ml 3.58's `OfflineExperiment`
//! writes it: messages kept in order, then at the end one archive
//! `<dir>/<offline_id>-<6 letters>.zip` holding `experiment.json` (the
//! experiment's metadata) and `messages.json` (JSON lines `{"type", "payload"}`,
//! each payload with its `message_id`), which `comet upload` sends.

use serde_json::{json, Map, Value};
use std::io::Write;
use trainbox_sdk::time::{random_u64, unix_now};

/// The experiment's metadata (`experiment.json`).
pub struct Meta {
    pub offline_id: String,
    pub project_name: Option<String>,
    pub workspace: Option<String>,
    pub resume_strategy: String,
    pub user_provided_experiment_key: bool,
}

/// An open offline experiment.
pub struct Experiment {
    meta: Meta,
    start_time: i64,
    lines: Vec<String>,
    /// comet's `curr_step` and `curr_epoch`, logged as parameters when they change.
    curr_step: Option<Value>,
    curr_epoch: Option<Value>,
}

/// Milliseconds since the Unix epoch (comet's `local_timestamp`).
fn now_ms() -> i64 {
    (unix_now() * 1000.0) as i64
}

/// A fresh experiment key: `uuid4().hex`.
pub fn new_key() -> String {
    let (hi, lo) = (random_u64(), random_u64());
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!("{hi:016x}{lo:016x}")
}

/// Six random ASCII letters (the archive name's suffix).
fn suffix() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut bits = random_u64();
    (0..6)
        .map(|_| {
            let c = LETTERS[(bits % LETTERS.len() as u64) as usize] as char;
            bits /= LETTERS.len() as u64;
            c
        })
        .collect()
}

/// A value as comet writes it: NaN and infinities as the strings
/// `fix_special_floats` makes of them.
pub fn number(f: f64) -> Value {
    if f.is_nan() {
        json!("NaN")
    } else if f == f64::INFINITY {
        json!("Infinity")
    } else if f == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(f)
    }
}

impl Experiment {
    /// Starts the experiment (comet's `start_time` is now).
    pub fn start(meta: Meta) -> Experiment {
        Experiment {
            meta,
            start_time: now_ms(),
            lines: Vec::new(),
            curr_step: None,
            curr_epoch: None,
        }
    }

    /// The archive's file name.
    pub fn key(&self) -> &str {
        &self.meta.offline_id
    }

    fn push(&mut self, kind: &str, mut payload: Map<String, Value>) {
        payload.insert("message_id".into(), json!(self.lines.len() + 1));
        self.lines
            .push(json!({"type": kind, "payload": payload}).to_string());
    }

    /// `log_other(key, value)`.
    pub fn log_other(&mut self, key: &str, value: Value) {
        let mut p = Map::new();
        p.insert("key".into(), json!(key));
        p.insert("value".into(), value);
        self.push("log_other", p);
    }

    /// One parameter message: lists under `params`, scalars under `param`.
    pub fn log_parameter(&mut self, name: &str, value: Value, source: &str) {
        let slot = if value.is_array() { "params" } else { "param" };
        let mut p = Map::new();
        p.insert("local_timestamp".into(), json!(now_ms()));
        p.insert(
            slot.into(),
            json!({"paramName": name, "paramValue": value, "source": source, "step": self.curr_step}),
        );
        self.push("parameter_msg", p);
    }

    /// comet's `_set_step` and `_set_epoch`: the auto-logged `curr_step` and
    /// `curr_epoch` parameters, each when its value changed.
    pub fn set_step_and_epoch(&mut self, step: u64, epoch: f64) {
        let step = json!(step);
        if self.curr_step.as_ref() != Some(&step) {
            self.curr_step = Some(step.clone());
            self.log_parameter("curr_step", step, "auto-logged");
        }
        let epoch = number(epoch);
        if self.curr_epoch.as_ref() != Some(&epoch) {
            self.curr_epoch = Some(epoch.clone());
            self.log_parameter("curr_epoch", epoch, "auto-logged");
        }
    }

    /// One metric message at the current step and epoch.
    pub fn log_metric(&mut self, name: &str, value: Value) {
        let mut p = Map::new();
        p.insert("local_timestamp".into(), json!(now_ms()));
        p.insert(
            "metric".into(),
            json!({"metricName": name, "metricValue": value, "step": self.curr_step, "epoch": self.curr_epoch}),
        );
        self.push("metric_msg", p);
    }

    /// comet's closing `process duration` metric: whole seconds since the
    /// start (Python's `round`), at the current step and epoch.
    pub fn log_process_duration(&mut self) {
        let secs = ((now_ms() - self.start_time) as f64 / 1000.0).round_ties_even() as i64;
        self.log_metric("process duration", json!(secs));
    }

    /// `experiment.json`, with `stop_time` now.
    fn metadata(&self) -> Value {
        let m = &self.meta;
        json!({
            "offline_id": m.offline_id,
            "project_name": m.project_name,
            "start_time": self.start_time,
            "stop_time": now_ms(),
            "tags": [],
            "workspace": m.workspace,
            "resume_strategy": m.resume_strategy,
            "customer_error_reported": false,
            "customer_error_message": null,
            "user_provided_experiment_key": m.user_provided_experiment_key,
            "comet_start_sourced": true,
        })
    }

    /// Writes the archive into `dir`; returns its file name.
    pub fn write(&self, dir: &str) -> Result<String, String> {
        let name = format!("{}-{}.zip", self.meta.offline_id, suffix());
        let path = format!("{dir}/{name}");
        let fail = |e: &dyn std::fmt::Display| format!("writing {path}: {e}");
        let file = std::fs::File::create(&path).map_err(|e| fail(&e))?;
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut messages = self.lines.join("\n");
        if !messages.is_empty() {
            messages.push('\n');
        }
        let files = [
            ("experiment.json", self.metadata().to_string()),
            ("messages.json", messages),
        ];
        for (entry, text) in files {
            zip.start_file(entry, options).map_err(|e| fail(&e))?;
            zip.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
        }
        zip.finish().map_err(|e| fail(&e))?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uuid4_hex() {
        let k = new_key();
        assert_eq!(k.len(), 32);
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(&k[12..13], "4");
        assert_ne!(new_key(), k);
        assert!(suffix().chars().all(|c| c.is_ascii_alphabetic()));
    }

    #[test]
    fn step_and_epoch_are_logged_when_they_change() {
        let mut e = Experiment::start(Meta {
            offline_id: new_key(),
            project_name: None,
            workspace: None,
            resume_strategy: "get_or_create".into(),
            user_provided_experiment_key: false,
        });
        e.set_step_and_epoch(5, 0.5);
        e.log_metric("train/loss", number(f64::NAN));
        e.set_step_and_epoch(5, 0.5);
        e.set_step_and_epoch(10, 0.5);
        assert_eq!(e.lines.len(), 4);
        let m: Value = serde_json::from_str(&e.lines[2]).unwrap();
        assert_eq!(m["payload"]["metric"]["metricValue"], "NaN");
        assert_eq!(m["payload"]["metric"]["step"], 5);
        assert_eq!(m["payload"]["message_id"], 3);
        let p: Value = serde_json::from_str(&e.lines[3]).unwrap();
        assert_eq!(p["payload"]["param"]["paramName"], "curr_step");
        assert_eq!(p["payload"]["param"]["step"], 10);
    }
}
