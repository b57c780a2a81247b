//! `TrainerState`, `TrainerControl`, log entries, and `trainer_state.json`.
//!
//! Leaf data: the trainer writes the state, callbacks read copies of it, and
//! only `TrainerControl` comes back from callbacks. The reset rules of the
//! control flags are applied by the `CallbackHandler`, as HF's handler
//! does. The JSON form follows HF's `TrainerState.save_to_json` byte for
//! byte (see `pyjson`); reading tolerates unknown keys and fills missing ones
//! with defaults, unlike HF's `load_from_json`.

use crate::pyjson::Json;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub mod callback_states;
mod control;
mod history;
mod logs;

pub use control::TrainerControl;
pub use history::LogHistory;
pub use logs::{Logs, Value};

/// An int or a float, kept apart so that `trainer_state.json` writes
/// `"logging_steps": 500` and `"logging_steps": 1.0` as HF does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    fn to_json(self) -> Json {
        match self {
            Number::Int(i) => Json::Int(i),
            Number::Float(f) => Json::Float(f),
        }
    }

    fn from_json(j: &Json) -> Option<Number> {
        match j {
            Json::Int(i) => Some(Number::Int(*i)),
            Json::Float(f) => Some(Number::Float(*f)),
            _ => None,
        }
    }

    /// HF's `compute_steps` for one interval: a value below 1 is a ratio of
    /// `max_steps`, rounded up to an int; any other keeps the type HF's
    /// arguments hold it in (`as_int`, see the `trainbox` crate's
    /// `TrainingArguments::interval_is_int`): `5` under the steps strategy,
    /// `5.0` under another, `1.0` always.
    pub fn interval(value: f64, max_steps: u64, as_int: bool) -> Number {
        if value < 1.0 {
            Number::Int((max_steps as f64 * value).ceil() as i64)
        } else if as_int {
            Number::Int(value as i64)
        } else {
            Number::Float(value)
        }
    }
}

/// Hugging Face's `TrainerState`. One step is one optimizer update.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    /// Fractional epoch, set after each update.
    pub epoch: f64,
    /// Updates done.
    pub global_step: u64,
    /// Updates planned for this run.
    pub max_steps: u64,
    pub logging_steps: Number,
    pub eval_steps: Number,
    pub save_steps: Number,
    pub train_batch_size: Option<u32>,
    pub num_train_epochs: u64,
    pub num_input_tokens_seen: u64,
    /// Floating-point operations so far; written as an int until the first update.
    pub total_flos: f64,
    /// Every `log` entry, with its `step` (one compact copy, shared with
    /// the plugins' view).
    pub log_history: LogHistory,
    pub best_metric: Option<f64>,
    pub best_global_step: Option<u64>,
    pub best_model_checkpoint: Option<String>,
    pub is_local_process_zero: bool,
    pub is_world_process_zero: bool,
    pub is_hyper_param_search: bool,
    pub trial_name: Option<String>,
    pub trial_params: Option<Json>,
    /// `{"<name>": {"args": …, "attributes": …}}`, a list for duplicates.
    pub stateful_callbacks: BTreeMap<String, Json>,
}

impl Default for TrainerState {
    fn default() -> Self {
        TrainerState {
            epoch: 0.0,
            global_step: 0,
            max_steps: 0,
            logging_steps: Number::Int(500),
            eval_steps: Number::Int(500),
            save_steps: Number::Int(500),
            train_batch_size: None,
            num_train_epochs: 0,
            num_input_tokens_seen: 0,
            total_flos: 0.0,
            log_history: LogHistory::new(),
            best_metric: None,
            best_global_step: None,
            best_model_checkpoint: None,
            is_local_process_zero: true,
            is_world_process_zero: true,
            is_hyper_param_search: false,
            trial_name: None,
            trial_params: None,
            stateful_callbacks: BTreeMap::new(),
        }
    }
}

fn opt<T>(v: &Option<T>, f: impl FnOnce(&T) -> Json) -> Json {
    v.as_ref().map_or(Json::Null, f)
}

impl TrainerState {
    /// The state as HF's `asdict(state)`.
    pub fn to_json(&self) -> Json {
        self.to_json_with(true)
    }

    /// [`TrainerState::to_json`], with an empty `log_history` unless
    /// `history`.
    fn to_json_with(&self, history: bool) -> Json {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Json| {
            m.insert(k.to_string(), v);
        };
        put(
            "best_global_step",
            opt(&self.best_global_step, |s| Json::Int(*s as i64)),
        );
        put("best_metric", opt(&self.best_metric, |f| Json::Float(*f)));
        put(
            "best_model_checkpoint",
            opt(&self.best_model_checkpoint, |s| Json::Str(s.clone())),
        );
        put(
            "epoch",
            if self.global_step == 0 && self.epoch == 0.0 {
                Json::Int(0)
            } else {
                Json::Float(self.epoch)
            },
        );
        put("eval_steps", self.eval_steps.to_json());
        put("global_step", Json::Int(self.global_step as i64));
        put(
            "is_hyper_param_search",
            Json::Bool(self.is_hyper_param_search),
        );
        put(
            "is_local_process_zero",
            Json::Bool(self.is_local_process_zero),
        );
        put(
            "is_world_process_zero",
            Json::Bool(self.is_world_process_zero),
        );
        put(
            "log_history",
            Json::Array(if history {
                let mut all = Vec::with_capacity(self.log_history.len());
                self.log_history.for_each(|logs| all.push(logs.to_json()));
                all
            } else {
                Vec::new()
            }),
        );
        put("logging_steps", self.logging_steps.to_json());
        put("max_steps", Json::Int(self.max_steps as i64));
        put(
            "num_input_tokens_seen",
            Json::Int(self.num_input_tokens_seen as i64),
        );
        put("num_train_epochs", Json::Int(self.num_train_epochs as i64));
        put("save_steps", self.save_steps.to_json());
        put(
            "stateful_callbacks",
            Json::Object(self.stateful_callbacks.clone()),
        );
        put(
            "total_flos",
            if self.global_step == 0 && self.total_flos == 0.0 {
                Json::Int(0)
            } else {
                Json::Float(self.total_flos)
            },
        );
        put(
            "train_batch_size",
            opt(&self.train_batch_size, |b| Json::Int(i64::from(*b))),
        );
        put(
            "trial_name",
            opt(&self.trial_name, |s| Json::Str(s.clone())),
        );
        put(
            "trial_params",
            self.trial_params.clone().unwrap_or(Json::Null),
        );
        Json::Object(m)
    }

    /// Reads a state written by HF or by trainbox. Unknown keys are ignored
    /// and missing keys take their defaults; a key of the wrong type is an error.
    pub fn from_json(j: &Json) -> Result<TrainerState, String> {
        let obj = j.as_object().ok_or("expected a JSON object")?;
        let mut s = TrainerState::default();
        let bad = |k: &str| format!("key {k:?} has the wrong type");
        for (k, v) in obj {
            let null = matches!(v, Json::Null);
            match k.as_str() {
                "epoch" => {
                    s.epoch = if null {
                        0.0
                    } else {
                        v.as_f64().ok_or_else(|| bad(k))?
                    }
                }
                "global_step" => s.global_step = uint(v).ok_or_else(|| bad(k))?,
                "max_steps" => s.max_steps = uint(v).ok_or_else(|| bad(k))?,
                "logging_steps" => s.logging_steps = Number::from_json(v).ok_or_else(|| bad(k))?,
                "eval_steps" => s.eval_steps = Number::from_json(v).ok_or_else(|| bad(k))?,
                "save_steps" => s.save_steps = Number::from_json(v).ok_or_else(|| bad(k))?,
                "train_batch_size" if null => s.train_batch_size = None,
                "train_batch_size" => {
                    s.train_batch_size = Some(uint(v).ok_or_else(|| bad(k))? as u32)
                }
                "num_train_epochs" => s.num_train_epochs = uint(v).ok_or_else(|| bad(k))?,
                "num_input_tokens_seen" => {
                    s.num_input_tokens_seen = uint(v).ok_or_else(|| bad(k))?
                }
                "total_flos" => s.total_flos = v.as_f64().ok_or_else(|| bad(k))?,
                "log_history" => {
                    let items = v.as_array().ok_or_else(|| bad(k))?;
                    s.log_history = LogHistory::new();
                    for e in items {
                        let o = e.as_object().ok_or_else(|| bad(k))?;
                        s.log_history.push(&Logs(
                            o.iter()
                                .filter_map(|(k, v)| Some((k.clone(), Value::from_json(v)?)))
                                .collect(),
                        ));
                    }
                }
                "best_metric" => {
                    s.best_metric = if null {
                        None
                    } else {
                        Some(v.as_f64().ok_or_else(|| bad(k))?)
                    }
                }
                "best_global_step" => {
                    s.best_global_step = if null {
                        None
                    } else {
                        Some(uint(v).ok_or_else(|| bad(k))?)
                    }
                }
                "best_model_checkpoint" => {
                    s.best_model_checkpoint = if null {
                        None
                    } else {
                        Some(v.as_str().ok_or_else(|| bad(k))?.into())
                    }
                }
                "is_local_process_zero" => {
                    s.is_local_process_zero = v.as_bool().ok_or_else(|| bad(k))?
                }
                "is_world_process_zero" => {
                    s.is_world_process_zero = v.as_bool().ok_or_else(|| bad(k))?
                }
                "is_hyper_param_search" => {
                    s.is_hyper_param_search = v.as_bool().ok_or_else(|| bad(k))?
                }
                "trial_name" => {
                    s.trial_name = if null {
                        None
                    } else {
                        Some(v.as_str().ok_or_else(|| bad(k))?.into())
                    }
                }
                "trial_params" => s.trial_params = if null { None } else { Some(v.clone()) },
                "stateful_callbacks" if null => {}
                "stateful_callbacks" => {
                    s.stateful_callbacks = v.as_object().ok_or_else(|| bad(k))?.clone()
                }
                _ => {} // a newer transformers' key: ignored on purpose
            }
        }
        Ok(s)
    }

    /// Writes `trainer_state.json` exactly as HF's `save_to_json`.
    pub fn save_to_json(&self, path: &Path) -> Result<()> {
        let write = || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
            self.write_json(&mut out)?;
            std::io::Write::flush(&mut out)
        };
        write().with_context(|| format!("writing {}", path.display()))
    }

    /// Writes the bytes of `to_json().to_pretty() + "\n"` (HF's
    /// `json.dumps(..., indent=2, sort_keys=True) + "\n"`), streaming the
    /// log history entry by entry: never a second copy of it in memory,
    /// as a JSON tree or as text.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        const EMPTY: &str = "\n  \"log_history\": [],";
        let head = self.to_json_with(false).to_pretty();
        let (before, after) = head
            .split_once(EMPTY)
            .expect("the state's JSON has a top-level log_history");
        out.write_all(before.as_bytes())?;
        if self.log_history.is_empty() {
            out.write_all(EMPTY.as_bytes())?;
        } else {
            out.write_all(b"\n  \"log_history\": [")?;
            let mut entry = String::new();
            let mut first = true;
            self.log_history.try_for_each(|logs| {
                entry.clear();
                entry.push_str(if first { "\n    " } else { ",\n    " });
                first = false;
                crate::pyjson::json_dumps_into(&mut entry, &logs.to_json(), Some(2), 2);
                out.write_all(entry.as_bytes())
            })?;
            out.write_all(b"\n  ],")?;
        }
        out.write_all(after.as_bytes())?;
        out.write_all(b"\n")
    }

    /// Reads a `trainer_state.json`.
    pub fn load_from_json(path: &Path) -> Result<TrainerState> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let json = Json::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        TrainerState::from_json(&json).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

fn uint(v: &Json) -> Option<u64> {
    v.as_i64().and_then(|i| u64::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_state_writes_hf_defaults() {
        let text = TrainerState::default().to_json().to_pretty();
        assert!(text.contains("\"epoch\": 0,"), "{text}");
        assert!(text.contains("\"logging_steps\": 500,"));
        assert!(text.contains("\"log_history\": [],"));
        assert!(text.contains("\"stateful_callbacks\": {},"));
        assert!(text.contains("\"total_flos\": 0,"));
    }

    #[test]
    fn state_round_trips_through_json() {
        let s = TrainerState {
            epoch: 1.5,
            global_step: 100,
            max_steps: 200,
            best_metric: Some(0.95),
            ..Default::default()
        };
        let mut entry = Logs::new();
        entry.insert("loss", Value::Float(0.5));
        entry.insert("step", Value::Int(100));
        s.log_history.push(&entry);
        let back =
            TrainerState::from_json(&Json::parse(&s.to_json().to_pretty()).unwrap()).unwrap();
        assert_eq!(back.epoch, 1.5);
        assert_eq!(back.global_step, 100);
        assert_eq!(back.best_metric, Some(0.95));
        assert_eq!(
            back.log_history.get(0).unwrap().get("loss"),
            Some(&Value::Float(0.5))
        );
    }

    #[test]
    fn the_streamed_file_is_the_whole_trees_text() {
        let streamed = |s: &TrainerState| {
            let mut out = Vec::new();
            s.write_json(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let mut s = TrainerState::default();
        assert_eq!(streamed(&s), s.to_json().to_pretty() + "\n");
        s.stateful_callbacks.insert(
            "cb".into(),
            Json::parse(r#"{"args": {"log_history": []}, "attributes": {}}"#).unwrap(),
        );
        for step in 1..4 {
            let mut entry = Logs::new();
            entry.insert("loss", Value::Float(0.1 * step as f64));
            entry.insert("step", Value::Int(step));
            entry.insert("note", Value::Text("é \"x\"".into()));
            entry.insert("nan", Value::Float(f64::NAN));
            s.log_history.push(&entry);
        }
        let text = streamed(&s);
        assert_eq!(text, s.to_json().to_pretty() + "\n");
        assert!(
            text.contains("\"log_history\": [\n    {\n      \"loss\""),
            "{text}"
        );
    }

    #[test]
    fn unknown_keys_are_ignored_and_missing_keys_default() {
        let s = TrainerState::from_json(
            &Json::parse(r#"{"global_step": 7, "from_the_future": 1}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(s.global_step, 7);
        assert_eq!(s.logging_steps, Number::Int(500));
        let err =
            TrainerState::from_json(&Json::parse(r#"{"global_step": "x"}"#).unwrap()).unwrap_err();
        assert!(err.contains("global_step"));
    }
}
