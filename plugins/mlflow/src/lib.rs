//! mlflow: HF's `report_to="mlflow"` integration (`MLflowCallback`,
//! transformers 5.24) as a trainbox plugin that talks to an MLflow tracking
//! server over its REST API.
//!
//! What it does, as HF does:
//! - at `on_train_begin` (or the first `on_log`): the experiment
//!   `MLFLOW_EXPERIMENT_NAME` (created if missing; unset: Default), a run
//!   named `args.run_name` (or the run `MLFLOW_RUN_ID`, resumed), the params
//!   `args.to_dict()` as `str()` values in batches of 100, the tags
//!   `MLFLOW_TAGS`;
//! - at every `on_log`: the numbers of the entry as metrics, raw keys
//!   sanitized, `step = global_step`, in one `log-batch` call;
//! - at `finish`: the run ends FINISHED, FAILED when the run aborted, or
//!   KILLED when it was interrupted (Ctrl-C, SIGTERM: the host's abort
//!   message starts `interrupted by SIG`). MLflow's own client marks a
//!   KeyboardInterrupt FAILED (`with mlflow.start_run()`); KILLED is
//!   MLflow's status for a run its user stopped, and tells the two apart.
//!
//! Every `runs/create` carries the tag `trainbox.create_id`, a random id of
//! the run. A create whose reply is lost (a timeout on a cold server) is not
//! sent again blindly: the plugin searches for that tag for up to 5 s, and
//! only then creates again; a duplicate the first create still makes is
//! deleted at `finish`.
//!
//! It reads the variables in [`settings::ENV_VARS`] and sends HTTP to the
//! origin of `MLFLOW_TRACKING_URI` only; `--report_to mlflow` grants both.
//! A server that is down or slow never stops training: each event spends at
//! most `mlflow.budget_ms` (default 40 ms, keep it under half of
//! `plugins.mlflow.deadline_ms`) on the network, what is not sent waits for
//! later events and `finish`, and what is given up is counted and reported.
//!
//! When `MLFLOW_RUN_ID` is set, `MLFLOW_EXPERIMENT_NAME` is not used (the
//! run stays in its experiment; HF would raise if they differ), the run is
//! set RUNNING and renamed to `args.run_name` when given, and params it
//! already has keep their value (MLflow refuses a change; each is reported).
//!
//! Not done: checkpoints as artifacts (`HF_MLFLOW_LOG_ARTIFACTS`; the
//! plugin cannot read them), and nesting (`MLFLOW_NESTED_RUN`: a trainbox
//! process has no active run to nest under, so the run is a top-level one).
//!
//! Modules: `settings` (the environment), `params`, `metrics`, `pyrepr`
//! (Python's `str()`), `wire` (REST requests and replies), `engine` (the
//! run's life, retries and counts), `net` (wasi:http).

mod engine;
mod metrics;
mod net;
mod params;
mod pyrepr;
mod settings;
mod wire;

#[cfg(test)]
mod fake_server;

use engine::{Engine, Note, Plan};
use net::{Net, WasiNet};
use settings::Settings;
use std::collections::BTreeSet;
use trainbox_sdk::{
    args, export_plugin, time, Callback, Capability, Config, Context, Event, Logs, RunOutcome,
    TrainingArgs,
};

/// Network time per event, by default.
const DEFAULT_BUDGET_MS: u64 = 40;
/// Network time at `finish` (the host gives `finish` 10 s).
const FINISH_BUDGET_MS: u64 = 8_000;

#[derive(Default)]
enum Mode {
    /// `DISABLE_MLFLOW_INTEGRATION=TRUE`: nothing to do.
    #[default]
    Off,
    /// No server to send to: count what could not be sent.
    NoServer {
        why: String,
        unsent: u64,
    },
    On {
        engine: Box<Engine>,
        net: WasiNet,
    },
}

#[derive(Default)]
struct Mlflow {
    mode: Mode,
    budget_ms: u64,
    /// Keys already warned about (non-numeric values).
    warned: BTreeSet<String>,
    /// The timestamp of the last log entry: each entry gets a later one, so
    /// that MLflow, which keeps one of identical (key, value, step,
    /// timestamp) points, keeps two equal values logged in the same
    /// millisecond (`epoch` in the last eval and the final summary).
    last_timestamp: u64,
}

impl Mlflow {
    fn pump(&mut self) {
        if let Mode::On { engine, net } = &mut self.mode {
            engine.pump(net, self.budget_ms, false);
            print_notes(engine.take_notes());
        }
    }
}

fn print_notes(notes: Vec<Note>) {
    for note in notes {
        match note {
            Note::Warn(text) => eprintln!("{text}"),
            Note::Info(text) => println!("{text}"),
        }
    }
}

impl Callback for Mlflow {
    const NAME: &'static str = "mlflow";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log, Event::TrainEnd];

    fn capabilities() -> Vec<Capability> {
        settings::ENV_VARS
            .iter()
            .map(|v| Capability::Env(v.to_string()))
            .collect()
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        // hostname and pid come with every integration; this one needs neither.
        config.only(&["budget_ms", "hostname", "pid"])?;
        self.budget_ms = config.parse("budget_ms")?.unwrap_or(DEFAULT_BUDGET_MS);
        if self.budget_ms < engine::MIN_REQUEST_MS {
            return Err(format!(
                "budget_ms={} is too small: a request needs at least {} ms",
                self.budget_ms,
                engine::MIN_REQUEST_MS
            ));
        }
        let s = Settings::read(|k| std::env::var(k).ok())?;
        for w in &s.warnings {
            eprintln!("{w}");
        }
        if s.disabled {
            println!("DISABLE_MLFLOW_INTEGRATION=TRUE: nothing is logged to MLflow");
            self.mode = Mode::Off;
            return Ok(());
        }
        if s.log_artifacts {
            eprintln!("HF_MLFLOW_LOG_ARTIFACTS is set, but this plugin does not upload checkpoints as artifacts; they stay in {}", args.output_dir);
        }
        let net = match &s.tracking_uri {
            None => Err((
                "MLFLOW_TRACKING_URI is not set".to_string(),
                "MLFLOW_TRACKING_URI is not set: this plugin logs to a tracking server only; start one (`mlflow server --host 127.0.0.1 --port 5000`) and set MLFLOW_TRACKING_URI=http://127.0.0.1:5000".to_string(),
            )),
            Some(uri) => WasiNet::new(uri, s.authorization.clone())
                .map_err(|e| (format!("MLFLOW_TRACKING_URI={uri:?} is not a tracking server"), e)),
        };
        let net = match net {
            Ok(net) => net,
            Err((short, long)) => {
                eprintln!("{long}");
                self.mode = Mode::NoServer {
                    why: short,
                    unsent: 0,
                };
                return Ok(());
            }
        };
        let (params, warnings) =
            params::params(&args::to_json(args), s.flatten_params, s.max_log_params);
        for w in warnings {
            eprintln!("{w}");
        }
        let plan = Plan {
            uri: s.tracking_uri.clone().unwrap_or_default(),
            experiment_name: s.experiment_name,
            run_id: s.run_id,
            run_name: args.run_name.clone(),
            params,
            tags: s.tags,
            create_id: format!("{:016x}{:016x}", time::random_u64(), time::random_u64()),
        };
        self.mode = Mode::On {
            engine: Box::new(Engine::new(plan)),
            net,
        };
        Ok(())
    }

    fn on_train_begin(&mut self, _cx: &mut Context) {
        self.pump();
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        let step = cx.state.global_step;
        let converted = match &self.mode {
            Mode::Off => return,
            Mode::NoServer { .. } => metrics::from_logs(logs.iter(), step, 0),
            Mode::On { net, .. } => {
                self.last_timestamp = net.now_ms().max(self.last_timestamp + 1);
                metrics::from_logs(logs.iter(), step, self.last_timestamp)
            }
        };
        for key in converted.not_numbers {
            if self.warned.insert(key.clone()) {
                eprintln!("the value of {key:?} is not a number: MLflow logs only numbers as metrics, so it is dropped");
            }
        }
        match &mut self.mode {
            Mode::Off => {}
            Mode::NoServer { unsent, .. } => {
                *unsent += (converted.metrics.len() + converted.too_long.len()) as u64
            }
            Mode::On { engine, .. } => {
                if !converted.too_long.is_empty() {
                    engine.not_sendable(
                        converted.too_long.len(),
                        format!(
                            "metric names longer than {} characters are refused by MLflow: {}",
                            metrics::MAX_KEY_LENGTH,
                            converted.too_long.join(", ")
                        ),
                    );
                }
                engine.log(converted.metrics);
            }
        }
        self.pump();
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        self.pump();
    }

    fn finish(&mut self, outcome: &RunOutcome) {
        match &mut self.mode {
            Mode::Off => {}
            Mode::NoServer { why, unsent } => {
                if *unsent > 0 {
                    println!("{unsent} metrics could not be sent: {why}");
                }
            }
            Mode::On { engine, net } => {
                let status = match outcome {
                    RunOutcome::Completed => "FINISHED",
                    RunOutcome::Aborted(why) if interrupted(why) => "KILLED",
                    RunOutcome::Aborted(_) => "FAILED",
                };
                engine.finish(net, status, FINISH_BUDGET_MS);
                print_notes(engine.take_notes());
            }
        }
    }
}

/// Whether an abort is the host's for SIGINT or SIGTERM (`interrupted by
/// SIGINT at step …`): the run was stopped by its user, MLflow's KILLED.
fn interrupted(why: &str) -> bool {
    why.starts_with("interrupted by SIG")
}

export_plugin!(Mlflow);
