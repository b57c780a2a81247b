//! The plugin: one [`Callback`] for the three flavors ([`crate::flavor`]).
//!
//! What it does, as HF does:
//! - at `on_train_begin` (or the first `on_log`): the experiment
//!   `MLFLOW_EXPERIMENT_NAME` (created if missing; unset: Default), a run
//!   named `args.run_name` (or the run `MLFLOW_RUN_ID`, resumed; or, with
//!   `MLFLOW_NESTED_RUN`, a new run nested under it), the params
//!   `args.to_dict()` as `str()` values in batches of 100, the tags
//!   `MLFLOW_TAGS`;
//! - at every `on_log`: the numbers of the entry as metrics, raw keys
//!   sanitized, `step = global_step`, in one `log-batch` call;
//! - at `on_save`, with `HF_MLFLOW_LOG_ARTIFACTS`: the files of
//!   `checkpoint-<global_step>` uploaded to the run's artifacts under
//!   `checkpoint-<global_step>/` (read through the read-only grant of
//!   `output_dir` as `/output`);
//! - at `on_train_end`, for dagshub with `HF_DAGSHUB_LOG_ARTIFACTS`: the
//!   files of `output_dir` under `artifacts/`;
//! - at `finish`: the run ends FINISHED, FAILED when the run aborted, or
//!   KILLED when it was interrupted (the host's abort message starts
//!   `interrupted by SIG`).
//!
//! azure_ml logs the numbers of each log only (HF's `AzureMLCallback` logs
//! no params), to the run of the job (`MLFLOW_RUN_ID`, left for the job to
//! end) or a run it makes; without an `azureml://` URI it prints what
//! AzureML's offline run prints.
//!
//! A server that is down or slow never stops training: each event spends at
//! most `budget_ms` (default 40 ms, keep it under half of the plugin's
//! `deadline_ms`) on the network, what is not sent waits for later events
//! and `finish`, and what is given up is counted and reported.

use crate::engine::{self, Engine, Note, Plan};
use crate::filestore::FileStore;
use crate::flavor::{self, Flavor, Kind};
use crate::metrics;
use crate::net::{Net, WasiNet};
use crate::params;
use crate::settings::{truthy, Settings};
use std::collections::BTreeSet;
use std::marker::PhantomData;
use trainbox_sdk::python::{self, Py};
use trainbox_sdk::{
    args, time, Callback, Capability, Config, Context, Event, Logs, RunOutcome, TrainingArgs, Value,
};

/// The local store without `MLFLOW_TRACKING_URI`, in the plugin's own folder.
const STORE_DIR: &str = "mlruns";

/// Network time per event, by default.
const DEFAULT_BUDGET_MS: u64 = 40;
/// Network time at `finish` (the host gives `finish` 10 s).
const FINISH_BUDGET_MS: u64 = 8_000;
/// How long `finish` may send when it uploads files (the host gives such a
/// plugin 120 s for it).
const FINISH_UPLOAD_BUDGET_MS: u64 = 100_000;
/// Where the read-only grant of `output_dir` appears in the plugin.
pub const OUTPUT_GUEST: &str = "/output";

#[derive(Default)]
enum Mode {
    /// `DISABLE_MLFLOW_INTEGRATION=TRUE`: nothing to do.
    #[default]
    Off,
    /// No server to send to: count what could not be sent.
    NoServer { why: String, unsent: u64 },
    /// azure_ml outside Azure ML: print as AzureML's offline run does.
    Print,
    On {
        engine: Box<Engine>,
        /// A tracking server, or the local store.
        net: Box<dyn Net>,
    },
}

/// The mlflow, dagshub or azure_ml plugin, by `F`.
pub struct Plugin<F> {
    mode: Mode,
    budget_ms: u64,
    /// `HF_MLFLOW_LOG_ARTIFACTS`: upload each checkpoint at `on_save`.
    log_checkpoints: bool,
    /// dagshub's `HF_DAGSHUB_LOG_ARTIFACTS`: upload `output_dir` at train end.
    log_output_dir: bool,
    /// `args.output_dir`, for the grant's message.
    output_dir: String,
    /// Keys already warned about (non-numeric values), and `/output`.
    warned: BTreeSet<String>,
    /// The timestamp of the last log entry: each entry gets a later one, so
    /// that MLflow, which keeps one of identical (key, value, step,
    /// timestamp) points, keeps two equal values logged in the same
    /// millisecond (`epoch` in the last eval and the final summary).
    last_timestamp: u64,
    flavor: PhantomData<fn() -> F>,
}

impl<F> Default for Plugin<F> {
    fn default() -> Self {
        Plugin {
            mode: Mode::Off,
            budget_ms: DEFAULT_BUDGET_MS,
            log_checkpoints: false,
            log_output_dir: false,
            output_dir: String::new(),
            warned: BTreeSet::new(),
            last_timestamp: 0,
            flavor: PhantomData,
        }
    }
}

impl<F: Flavor> Plugin<F> {
    fn pump(&mut self) {
        if let Mode::On { engine, net } = &mut self.mode {
            engine.pump(net.as_mut(), self.budget_ms, false);
            print_notes(engine.take_notes());
        }
    }

    /// Queues every file under `OUTPUT_GUEST/dir` as the artifact
    /// `prefix/<path below dir>`, and sends what the budget allows.
    fn upload_dir(&mut self, dir: &str, prefix: &str) {
        let Mode::On { engine, .. } = &mut self.mode else {
            return;
        };
        let root = if dir.is_empty() {
            OUTPUT_GUEST.to_string()
        } else {
            format!("{OUTPUT_GUEST}/{dir}")
        };
        let mut files = Vec::new();
        if let Err(e) = list_files(&root, "", &mut files) {
            if self.warned.insert(OUTPUT_GUEST.into()) {
                eprintln!(
                    "cannot list {root} to upload it ({e}): output_dir is not granted to this plugin; add plugins.{name}.read_dirs = {{ \"/output\" = {dir:?} }} to the run config (--report_to {name} grants it by itself)",
                    name = F::NAME,
                    dir = self.output_dir
                );
            }
            return;
        }
        files.sort();
        let queued = files
            .into_iter()
            .map(|rel| (format!("{root}/{rel}"), join(prefix, &rel)))
            .collect();
        engine.upload(queued);
        self.pump();
    }
}

/// `a/b`, or `b` when `a` is empty.
fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// The files below `root/rel`, as paths relative to `root`; `plugins/`
/// (the plugins' own folders, hidden from grants) is left out.
fn list_files(root: &str, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{rel}")
    };
    for entry in std::fs::read_dir(&dir)? {
        // An entry the sandbox does not let the plugin see (`plugins/`).
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = join(rel, &name);
        if path == "plugins" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn print_notes(notes: Vec<Note>) {
    for note in notes {
        match note {
            Note::Warn(text) => eprintln!("{text}"),
            Note::Info(text) => println!("{text}"),
        }
    }
}

/// Python's `str()` of a number of a log entry, as AzureML's offline run prints it.
fn py_number(value: &Value) -> Option<String> {
    let py = match value {
        Value::Float(f) => Py::Float(*f),
        Value::Int(i) => Py::Int(*i as i128),
        Value::Flag(b) => Py::Bool(*b),
        Value::Text(_) => return None,
    };
    Some(python::str(&py))
}

impl<F: Flavor> Plugin<F> {
    /// The flavor's reading of the settings: `Ok(None)` when there is no
    /// server to send to (azure_ml outside Azure ML).
    fn adapt(&mut self, s: &mut Settings) -> Result<Option<()>, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match F::KIND {
            Kind::Mlflow => {}
            Kind::DagsHub => {
                // HF's DagsHubCallback.setup raises without a DagsHub URI.
                flavor::dagshub_repo(s.tracking_uri.as_deref())?;
                if s.authorization.is_none() {
                    s.authorization = var("DAGSHUB_USER_TOKEN").map(|t| format!("Bearer {t}"));
                }
                if s.authorization.is_none() {
                    eprintln!("no DagsHub credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (your DagsHub user name and token), or DAGSHUB_USER_TOKEN");
                }
                self.log_output_dir = var("HF_DAGSHUB_LOG_ARTIFACTS").is_some_and(|v| truthy(&v));
            }
            Kind::AzureMl => {
                let endpoint = s.tracking_uri.as_deref().and_then(flavor::azure_endpoint);
                let Some(endpoint) = endpoint else {
                    eprintln!("MLFLOW_TRACKING_URI is not an azureml:// workspace URI: outside an Azure ML job, as AzureML's offline run, the metrics are only printed");
                    return Ok(None);
                };
                if s.authorization.is_none() {
                    eprintln!("MLFLOW_TRACKING_TOKEN is not set: Azure ML refuses requests without a token; set it to an Azure access token (`az account get-access-token --resource https://ml.azure.com --query accessToken -o tsv`)");
                }
                s.tracking_uri = Some(endpoint);
                s.tags.clear();
                s.nested_run = false;
                s.log_artifacts = false;
            }
        }
        Ok(Some(()))
    }
}

impl<F: Flavor> Callback for Plugin<F> {
    const NAME: &'static str = F::NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log, Event::Save, Event::TrainEnd];

    fn capabilities() -> Vec<Capability> {
        // The tracking server is wherever the user says (MLFLOW_TRACKING_URI,
        // granted by the host): "the origins the user grants".
        let mut caps = vec![Capability::Http("*".into())];
        caps.extend(
            F::KIND
                .env_vars()
                .into_iter()
                .map(|v| Capability::Env(v.to_string())),
        );
        caps
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        // hostname and pid come with every integration; this one needs neither.
        config.only(&["budget_ms", "hostname", "pid", "store_dir"])?;
        self.budget_ms = config.parse("budget_ms")?.unwrap_or(DEFAULT_BUDGET_MS);
        if self.budget_ms < engine::MIN_REQUEST_MS {
            return Err(format!(
                "budget_ms={} is too small: a request needs at least {} ms",
                self.budget_ms,
                engine::MIN_REQUEST_MS
            ));
        }
        let mut s = Settings::read(|k| std::env::var(k).ok())?;
        for w in &s.warnings {
            eprintln!("{w}");
        }
        if s.disabled && F::KIND != Kind::AzureMl {
            println!("DISABLE_MLFLOW_INTEGRATION=TRUE: nothing is logged to MLflow");
            self.mode = Mode::Off;
            return Ok(());
        }
        if self.adapt(&mut s)?.is_none() {
            self.mode = Mode::Print;
            return Ok(());
        }
        self.log_checkpoints = s.log_artifacts;
        self.output_dir = args.output_dir.clone();
        let net: Result<Box<dyn Net>, (String, String)> = match &s.tracking_uri {
            // As HF + mlflow without a tracking URI: a local store, in the
            // plugin's own folder (the host names it as the user sees it).
            None if F::KIND == Kind::Mlflow => {
                let host_dir = config.get("store_dir").unwrap_or(STORE_DIR).to_string();
                FileStore::open(std::path::Path::new(STORE_DIR), &host_dir)
                    .map(|store| {
                        println!(
                            "MLFLOW_TRACKING_URI is not set: logging to the local store {host_dir} \
                             (MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {host_dir})"
                        );
                        Box::new(store) as Box<dyn Net>
                    })
                    .map_err(|e| ("the local store could not be written".to_string(), e))
            }
            None => Err((
                "MLFLOW_TRACKING_URI is not set".to_string(),
                "MLFLOW_TRACKING_URI is not set: this plugin logs to a tracking server only; start one (`mlflow server --host 127.0.0.1 --port 5000`) and set MLFLOW_TRACKING_URI=http://127.0.0.1:5000".to_string(),
            )),
            Some(uri) => WasiNet::new(uri, s.authorization.clone())
                .map(|net| Box::new(net) as Box<dyn Net>)
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
        let (params, warnings) = match F::KIND {
            Kind::AzureMl => (Vec::new(), Vec::new()),
            _ => params::params(&args::to_json(args), s.flatten_params, s.max_log_params),
        };
        for w in warnings {
            eprintln!("{w}");
        }
        let (run_id, parent_run_id) = match (s.nested_run, s.run_id) {
            (true, Some(parent)) => (None, Some(parent)),
            (_, run_id) => (run_id, None),
        };
        let plan = Plan {
            uri: s
                .tracking_uri
                .clone()
                .or_else(|| config.get("store_dir").map(String::from))
                .unwrap_or_else(|| STORE_DIR.to_string()),
            experiment_name: s.experiment_name,
            job_run: F::KIND == Kind::AzureMl && run_id.is_some(),
            run_id,
            parent_run_id,
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
            Mode::Print => {
                for (key, value) in logs.iter() {
                    if let Some(v) = py_number(value) {
                        println!("Attempted to log scalar metric {key}:\n{v}");
                    }
                }
                return;
            }
            Mode::NoServer { .. } => metrics::from_logs(logs.iter(), step, 0),
            Mode::On { net, .. } => {
                self.last_timestamp = net.now_ms().max(self.last_timestamp + 1);
                metrics::from_logs(logs.iter(), step, self.last_timestamp)
            }
        };
        for key in converted.not_numbers {
            if F::KIND != Kind::AzureMl && self.warned.insert(key.clone()) {
                eprintln!("the value of {key:?} is not a number: MLflow logs only numbers as metrics, so it is dropped");
            }
        }
        match &mut self.mode {
            Mode::Off | Mode::Print => {}
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

    fn on_save(&mut self, cx: &mut Context) {
        if self.log_checkpoints {
            // HF's on_save: checkpoint-<global_step>, logged under that name.
            let dir = format!("checkpoint-{}", cx.state.global_step);
            self.upload_dir(&dir, &dir);
        } else {
            self.pump();
        }
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        if self.log_output_dir {
            // HF's DagsHubCallback: output_dir under artifacts/.
            self.upload_dir("", "artifacts");
        } else {
            self.pump();
        }
    }

    fn finish(&mut self, outcome: &RunOutcome) {
        match &mut self.mode {
            Mode::Off | Mode::Print => {}
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
                let uploads = self.log_checkpoints || self.log_output_dir;
                let budget = if uploads {
                    FINISH_UPLOAD_BUDGET_MS
                } else {
                    FINISH_BUDGET_MS
                };
                engine.finish(net.as_mut(), status, budget);
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
