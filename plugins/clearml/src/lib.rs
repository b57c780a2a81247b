//! clearml: HF's `report_to="clearml"` integration (`ClearMLCallback` of
//! transformers 5.24), written as the clearml 2.1 offline session that
//! `Task.init` keeps with `CLEARML_OFFLINE_MODE=1` (see [`session`]), in
//! the folder the host grants as `/clearml` (`$CLEARML_CACHE_DIR/offline`,
//! else `<output_dir>/clearml/offline`):
//! - at set-up (train begin or the first log): `Task.init(project=
//!   CLEARML_PROJECT or "HuggingFace Transformers", task=CLEARML_TASK or
//!   "Trainer")`, the training arguments in the hyperparameter section
//!   `Transformers` (see [`params`]);
//! - on each log: numbers through `report_scalar(title="train"|"eval"|
//!   "test", series=key minus its prefix, iteration=global_step)`, HF's six
//!   summary keys through `report_single_value` (title `Summary`), other
//!   values dropped with HF's warning;
//! - on each save, with `CLEARML_LOG_MODEL` truthy: the checkpoint as an
//!   output model `checkpoint-<step>` (see [`models`]), at most
//!   `save_total_limit` of them (the oldest dropped, its zip deleted, as
//!   HF's `Model.remove`);
//! - at train end: `close()`, which writes `task.json` and the zip.
//!
//! Unlike HF it never talks to a clearml server (without
//! `CLEARML_OFFLINE_MODE` it warns and writes the offline session, which
//! `clearml-task`'s `Task.import_offline_session` uploads), stores no model
//! configuration (trainbox's models have no HF config), and logs models
//! only when `CLEARML_LOG_MODEL` is set truthy (HF's default, unset, is on;
//! here it would mean reading `output_dir`, granted only when asked for).
//!
//! Config (given by the host): `offline_dir`, the granted folder's host
//! path (`offline_folder` in `task.json`); `hostname` (the log's worker);
//! `pid` unused.

mod models;
mod params;
mod session;

use serde_json::Value as Json;
use session::{Session, SUMMARY_ITER};
use std::path::Path;
use trainbox_sdk::{
    export_plugin, Callback, Capability, Config, Context, Event, Logs, RunOutcome, TrainingArgs,
    Value,
};

/// The folder the host grants.
const DIR: &str = "/clearml";
const PROJECT: &str = "CLEARML_PROJECT";
const TASK: &str = "CLEARML_TASK";
const LOG_MODEL: &str = "CLEARML_LOG_MODEL";
const OFFLINE: &str = "CLEARML_OFFLINE_MODE";

/// The keys HF reports as single values.
const SINGLE_VALUES: [&str; 6] = [
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
    "epoch",
];

#[derive(Default)]
struct ClearMl {
    hyperparams: serde_json::Map<String, Json>,
    project: String,
    task: String,
    host_dir: String,
    worker: String,
    initialized: bool,
    closed: bool,
    /// `CLEARML_LOG_MODEL` (HF's truthiness).
    log_model: bool,
    /// `output_dir` as the user knows it (the models' comments).
    host_output: String,
    save_total_limit: Option<u64>,
    models: Vec<models::Logged>,
    /// `None` on processes other than world-process zero, or when the
    /// session could not be created.
    session: Option<Session>,
}

fn truthy(var: &str) -> bool {
    let v = std::env::var(var).unwrap_or_default().to_uppercase();
    ["1", "ON", "YES", "TRUE"].contains(&v.as_str())
}

fn warn(message: &str) {
    eprintln!("warning: {message}");
}

impl ClearMl {
    fn setup(&mut self, cx: &Context) {
        self.initialized = true;
        if !cx.state.is_world_process_zero {
            return;
        }
        match Session::create(Path::new(DIR), &self.host_dir, &self.worker) {
            Ok(s) => {
                println!("ClearML Task: created new task id={}", s.id);
                self.session = Some(s);
            }
            Err(e) => warn(&format!(
                "cannot create the clearml session in {}: {e}",
                self.host_dir
            )),
        }
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let Some(s) = &self.session else { return };
        let models = self.models.iter().map(|m| m.entry.clone()).collect();
        match s.close(&self.task, &self.project, self.hyperparams.clone(), models) {
            Ok(_) => println!(
                "ClearML Task: Offline session stored in {}/{}.zip",
                self.host_dir.trim_end_matches('/'),
                s.id
            ),
            Err(e) => warn(&format!("cannot close the clearml session {}: {e}", s.id)),
        }
    }
}

impl Callback for ClearMl {
    const NAME: &'static str = "clearml";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log, Event::Save, Event::TrainEnd];

    fn capabilities() -> Vec<Capability> {
        let mut caps = vec![Capability::WriteDir(DIR.into())];
        caps.extend([PROJECT, TASK, LOG_MODEL, OFFLINE].map(|v| Capability::Env(v.into())));
        caps
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["offline_dir", "hostname", "pid"])?;
        self.host_dir = config.get("offline_dir").unwrap_or(DIR).to_string();
        self.worker = config.get("hostname").unwrap_or("localhost").to_string();
        self.project = std::env::var(PROJECT).unwrap_or_else(|_| "HuggingFace Transformers".into());
        self.task = std::env::var(TASK).unwrap_or_else(|_| "Trainer".into());
        if !truthy(OFFLINE) {
            warn(&format!(
                "{OFFLINE} is not set: the plugin cannot reach a clearml server and writes an \
                 offline session (import it with Task.import_offline_session); set {OFFLINE}=1 \
                 to silence this warning"
            ));
        }
        self.log_model = truthy(LOG_MODEL);
        self.host_output = args.output_dir.clone();
        self.save_total_limit = args.save_total_limit.filter(|n| *n > 0).map(|n| n as u64);
        self.hyperparams
            .insert(params::SECTION.into(), Json::Object(params::section(args)));
        Ok(())
    }

    fn on_train_begin(&mut self, cx: &mut Context) {
        if !self.initialized {
            self.setup(cx);
        }
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        if !self.initialized {
            self.setup(cx);
        }
        // HF closes the task at train end: what is logged later (a final
        // evaluation) is not in the session.
        let Some(s) = self.session.as_ref().filter(|_| !self.closed) else {
            return;
        };
        let step = cx.state.global_step as i64;
        let mut events = Vec::new();
        for (k, v) in logs.iter() {
            let value = match v {
                Value::Float(f) => *f,
                Value::Int(i) => *i as f64,
                Value::Flag(b) => f64::from(u8::from(*b)),
                Value::Text(t) => {
                    warn(&format!(
                        "Trainer is attempting to log a value of \"{t}\" of type <class 'str'> for key \"{k}\" as a scalar. This invocation of ClearML logger's  report_scalar() is incorrect so we dropped this attribute."
                    ));
                    continue;
                }
            };
            let event = if SINGLE_VALUES.contains(&k) {
                s.scalar(SUMMARY_ITER, "Summary", k, value)
            } else if let Some(series) = k.strip_prefix("eval_") {
                s.scalar(step, "eval", series, value)
            } else if let Some(series) = k.strip_prefix("test_") {
                s.scalar(step, "test", series, value)
            } else {
                s.scalar(step, "train", k, value)
            };
            events.push(event);
        }
        if let Err(e) = s.report(&events) {
            warn(&format!("clearml scalars at step {step} not written: {e}"));
        }
    }

    fn on_save(&mut self, cx: &mut Context) {
        let Some(s) = self
            .session
            .as_ref()
            .filter(|_| self.log_model && !self.closed)
        else {
            return;
        };
        let step = cx.state.global_step;
        println!("Logging checkpoint artifact `checkpoint-{step}`. This may take some time.");
        match models::package(s, &self.host_output, step) {
            Ok(m) => self.models.push(m),
            Err(e) => {
                warn(&format!(
                    "clearml output model checkpoint-{step} not logged: {e}"
                ));
                return;
            }
        }
        let limit = self.save_total_limit.map_or(usize::MAX, |l| l as usize);
        while self.models.len() > limit {
            let old = self.models.remove(0);
            if let Err(e) = std::fs::remove_file(&old.zip) {
                warn(&format!(
                    "Could not remove checkpoint `{}` after going over the `save_total_limit`. Error is: {e}",
                    old.entry["init"]["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        self.close();
    }

    fn finish(&mut self, _outcome: &RunOutcome) {
        // clearml closes an open task at exit too.
        self.close();
    }
}

export_plugin!(ClearMl);
