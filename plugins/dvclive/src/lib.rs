//! dvclive: HF's `report_to="dvclive"` integration (`DVCLiveCallback` of
//! transformers 5.24), writing what dvclive 3.49 writes into `./dvclive`,
//! which the host grants as `/dvclive`:
//! - at train begin: `Live()` clears the folder and `log_params` writes the
//!   training arguments (`args.to_dict()`) to `params.yaml`;
//! - on each log: every value under dvclive's `standardize_metric_name`
//!   (`train_` → `train/`, `eval_` → `eval/`, anywhere in the key), then one
//!   `next_step` per log, so dvclive's step counts logs from 0, not updates;
//! - at train end: `Live.end()`.
//!
//! `dvc metrics show`, `dvc params diff` and `dvc plots show` read the folder
//! in a Git + DVC repository through `dvclive/dvc.yaml`. Unlike dvclive it
//! never saves a DVC experiment nor runs `dvc init`, and it cannot log the
//! model (`HF_DVCLIVE_LOG_MODEL`): it says so and logs the metrics.
//!
//! Config: none of its own (`hostname` and `pid`, given to every
//! integration, are accepted and unused).

mod live;
mod yaml;

use live::Live;
use std::path::Path;
use trainbox_sdk::python::Py;
use trainbox_sdk::{
    args, export_plugin, Callback, Capability, Config, Context, Event, Logs, TrainingArgs, Value,
};

/// The folder the host grants: `./dvclive` of the directory trainbox runs in.
const DIR: &str = "/dvclive";
const LOG_MODEL: &str = "HF_DVCLIVE_LOG_MODEL";

#[derive(Default)]
struct DvcLive {
    /// `args.to_dict()`, logged as the params at set-up.
    params: Vec<(String, Py)>,
    initialized: bool,
    /// `None` on processes other than world-process zero, or when the
    /// folder could not be set up.
    live: Option<Live>,
}

impl DvcLive {
    /// HF's `setup`: `Live()` and `log_params`, on world-process zero.
    fn setup(&mut self, cx: &Context) {
        self.initialized = true;
        if !cx.state.is_world_process_zero {
            return;
        }
        let live = Live::new(Path::new(DIR)).and_then(|mut live| {
            live.log_params(self.params.clone())?;
            Ok(live)
        });
        match live {
            Ok(live) => self.live = Some(live),
            Err(e) => warn(&format!("cannot set up {DIR}, nothing will be logged: {e}")),
        }
    }
}

impl Callback for DvcLive {
    const NAME: &'static str = "dvclive";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log, Event::TrainEnd];

    fn capabilities() -> Vec<Capability> {
        vec![
            Capability::WriteDir(DIR.into()),
            Capability::Env(LOG_MODEL.into()),
        ]
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["hostname", "pid"])?;
        let log_model = std::env::var(LOG_MODEL).unwrap_or_default();
        let truthy = ["1", "ON", "YES", "TRUE"].contains(&log_model.to_uppercase().as_str());
        if truthy || log_model.eq_ignore_ascii_case("all") {
            warn(&format!(
                "{LOG_MODEL}={log_model}: logging the model as a DVC artifact is not supported \
                 (the plugin cannot read the checkpoints); unset it to silence this warning. \
                 Metrics and params are logged."
            ));
        }
        self.params = args::to_json(args)
            .iter()
            .map(|(k, v)| (k.clone(), Py::from(v)))
            .collect();
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
        let Some(live) = self.live.as_mut() else {
            return;
        };
        for (key, value) in logs.iter() {
            let name = key.replace("train_", "train/").replace("eval_", "eval/");
            if let Err(e) = live.log_metric(&name, &py(value)) {
                warn(&format!("{key} not logged: {e}"));
            }
        }
        if let Err(e) = live.next_step() {
            warn(&e.to_string());
        }
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        if let Some(live) = self.live.as_mut() {
            if let Err(e) = live.end() {
                warn(&e.to_string());
            }
        }
    }
}

/// A log value as HF hands it to dvclive (a bool is an int that prints `True`).
fn py(v: &Value) -> Py {
    match v {
        Value::Float(f) => Py::Float(*f),
        Value::Int(i) => Py::Int((*i).into()),
        Value::Text(s) => Py::Str(s.clone()),
        Value::Flag(b) => Py::Bool(*b),
    }
}

fn warn(message: &str) {
    eprintln!("warning: {message}");
}

export_plugin!(DvcLive);
