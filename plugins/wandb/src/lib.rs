//! wandb: HF's `WandbCallback` (`--report_to wandb`) in offline mode. It
//! writes what `wandb.init(mode="offline")` and HF's calls would: a run
//! folder `wandb/offline-run-YYYYMMDD_HHMMSS-<id>/run-<id>.wandb` in W&B's
//! transaction-log format, which `wandb leet inspect` reads and
//! `wandb sync` uploads.
//!
//! As HF: the run is named `run_name`; its config is `args.to_dict()` plus
//! `model/num_parameters` (at train begin); `train/global_step` is the
//! x-axis of every metric; each log goes to the history under
//! `rewrite_logs` names with `train/global_step`, except `train_runtime`,
//! `train_samples_per_second`, `train_steps_per_second`, `train_loss` and
//! `total_flos`, which go to the summary; prediction metrics are logged too.
//! The run is created at configure (so that a bad setting stops the run
//! before training) and exits with code 0 when training completed, 1 when it
//! was aborted (W&B shows "finished" and "failed"), and 255 when it was
//! interrupted (SIGINT or SIGTERM: the host's abort message starts
//! `interrupted by SIG`), the code wandb's exit hook gives a Ctrl-C.
//!
//! `WANDB_LOG_MODEL` as HF 5.24: with `checkpoint` or `end`, a `model-<id>`
//! artifact of the architecture file at train begin (alias `base_model`),
//! with `checkpoint` each saved `checkpoint-N` folder (aliases `epoch_…`,
//! `checkpoint_global_step_N`), and at the end of a completed training the
//! final model files (alias `final_model`; logged at `finish`, once the
//! host has written them, with the metadata taken at train end).
//!
//! `WANDB_WATCH` (`gradients`, `parameters`, `all`) as HF's `wandb.watch(model,
//! log=…, log_freq=max(100, logging_steps))`: histograms of the parameters
//! and gradients every `log_freq` forward and backward passes, in the next
//! logged row (see `watch` for how trainbox's events map to wandb's hooks).
//!
//! Grants (`--report_to wandb` gives them): `/wandb` writable
//! (`$WANDB_DIR/wandb`, else `./wandb`) and the `WANDB_*` variables read by
//! `settings`; with `WANDB_LOG_MODEL` set to `checkpoint` or `end` also
//! `output_dir` read-only as `/output` and wandb's staging folder
//! (`$WANDB_DATA_DIR/artifacts/staging`) writable as `/wandb-staging`.
//! Config: `hostname` and `pid`, facts the host adds, and `staging_dir`,
//! the staging folder's host path (the path `wandb sync` reads).
//!
//! Not done: the `latest-run` link, online mode.
//!
//! Modules: `settings` (environment), `run` (the run folder and its
//! records), `proto` and `artifact_proto` (record encoding), `framing` (the
//! log format), `models` (HF's artifacts), `artifact` (staging, digests),
//! `digest` (md5 and base64, through their crates), `watch` (histograms), `clock`.

mod artifact;
mod artifact_proto;
mod clock;
mod digest;
mod framing;
mod models;
mod proto;
mod run;
mod settings;
mod watch;

use artifact::Stager;
use run::{json_f64, Pair, Run, RunFields};
use settings::{LogModel, Mode, Watch};
use trainbox_sdk::{
    args, export_plugin, views, Callback, Capability, Config, Context, Event, Logs, RunOutcome,
    TrainingArgs, Value,
};
use watch::Watcher;

/// Where `--report_to wandb` mounts the `wandb` folder.
const ROOT: &str = "/wandb";

/// HF's `single_value_scalars`: logged to the summary, not the history.
const SUMMARY_KEYS: &[&str] = &[
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
];

/// The environment variables read (granted by `--report_to wandb`, which
/// also reads `WANDB_DIR` itself to mount `/wandb`).
const ENV: &[&str] = &[
    "WANDB_MODE",
    "WANDB_PROJECT",
    "WANDB_ENTITY",
    "WANDB_RUN_ID",
    "WANDB_LOG_MODEL",
    "WANDB_WATCH",
];

#[derive(Default)]
struct Wandb {
    /// The open run; none when disabled or after a write failed.
    run: Option<Run>,
    /// The last `train/global_step` logged, for rows that lack it.
    last_global_step: Option<u64>,
    log_model: Option<LogModel>,
    watch: Option<Watch>,
    /// `wandb.watch`'s hooks, from train begin.
    watcher: Option<Watcher>,
    /// The staging folder, when `WANDB_LOG_MODEL` asks for artifacts.
    stager: Option<Stager>,
    /// `model/num_parameters`, once set.
    num_parameters: Option<u64>,
    /// The final model's metadata, taken at train end.
    final_metadata: Option<String>,
    args: Option<TrainingArgs>,
}

/// A log value as JSON text.
fn value_json(v: &Value) -> String {
    match v {
        Value::Float(f) => json_f64(*f),
        Value::Int(i) => i.to_string(),
        Value::Text(s) => serde_json::Value::from(s.as_str()).to_string(),
        Value::Flag(b) => b.to_string(),
    }
}

impl Wandb {
    /// Runs `f` on the open run; a failure is reported once and closes it.
    fn with_run(&mut self, f: impl FnOnce(&mut Run) -> Result<(), String>) {
        if let Some(run) = self.run.as_mut() {
            if let Err(e) = f(run) {
                eprintln!("{e}; nothing more is logged to W&B");
                self.run = None;
            }
        }
    }

    /// A failed artifact (a checkpoint unreadable, the staging folder full)
    /// is reported once and ends the artifacts, not the run: its metrics go
    /// on (a failed write of the run itself closes it at its next record).
    fn artifact_logged(&mut self, logged: Result<(), String>) {
        if let Err(e) = logged {
            eprintln!("{e}; no more artifacts are logged to W&B (WANDB_LOG_MODEL)");
            self.stager = None;
        }
    }

    /// HF's `config["model/num_parameters"]`, set at train begin.
    fn count_parameters(&mut self) {
        let count = views::model().parameter_count();
        if count > 0 {
            let pairs = [("model/num_parameters".to_string(), count.to_string())];
            self.with_run(|run| run.config(&pairs));
            self.num_parameters = Some(count);
        }
    }

    /// `wandb.log` of `logs` under `rewrite_logs` names, with the step metric.
    fn log_row(&mut self, logs: &Logs, global_step: Option<u64>) {
        let mut row: Vec<Pair> = logs
            .iter()
            .map(|(k, v)| (args::rewrite_key(k), value_json(v)))
            .collect();
        if let Some(step) = global_step.or(self.last_global_step) {
            row.push(("train/global_step".into(), step.to_string()));
            self.last_global_step = Some(step);
        }
        let histograms = self
            .watcher
            .as_mut()
            .map(Watcher::drain)
            .unwrap_or_default();
        self.with_run(|run| run.log_fields(row, &histograms));
    }
}

impl Callback for Wandb {
    const NAME: &'static str = "wandb";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[
        Event::TrainBegin,
        Event::Log,
        Event::Predict,
        Event::Save,
        Event::TrainEnd,
        Event::SubstepEnd,
        Event::PreOptimizerStep,
        Event::PredictionStep,
    ];

    fn capabilities() -> Vec<Capability> {
        let mut caps = vec![Capability::WriteDir(ROOT.into())];
        caps.extend(ENV.iter().map(|v| Capability::Env(v.to_string())));
        caps
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["hostname", "pid", "staging_dir"])?;
        let settings = match settings::from_env(|k| std::env::var(k).ok())? {
            Mode::Disabled => return Ok(()),
            Mode::Offline(s) => s,
        };
        if settings.log_model.is_enabled() {
            let Some(host_dir) = config.get("staging_dir") else {
                return Err(format!(
                    "WANDB_LOG_MODEL={} needs wandb's staging folder: run with `--report_to wandb`, which grants it \
                     as {} (and output_dir read-only as {})",
                    settings.log_model.value(),
                    artifact::STAGING,
                    models::OUTPUT
                ));
            };
            self.stager = Some(Stager {
                host_dir: host_dir.to_string(),
            });
        }
        self.log_model = Some(settings.log_model);
        self.watch = Some(settings.watch);
        self.args = Some(args.clone());
        let fields = RunFields {
            entity: settings.entity,
            project: settings.project,
            display_name: args.run_name.clone(),
            host: config.get("hostname").unwrap_or("localhost").to_string(),
            config: args::to_json(args)
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        };
        let id = settings.run_id.unwrap_or_else(clock::random_id);
        self.run = Some(Run::create(ROOT, id, fields)?);
        Ok(())
    }

    fn on_train_begin(&mut self, cx: &mut Context) {
        if self.run.is_some() {
            self.watcher = self
                .watch
                .and_then(|w| Watcher::new(w, cx.state.logging_steps));
        }
        self.count_parameters();
        if let (Some(stager), Some(run)) = (&self.stager, self.run.as_mut()) {
            let logged = models::log_base(run, stager, cx.args, self.num_parameters);
            self.artifact_logged(logged);
        }
    }

    fn on_substep_end(&mut self, _cx: &mut Context) {
        if let Some(w) = self.watcher.as_mut() {
            w.micro_batch();
        }
    }

    fn on_pre_optimizer_step(&mut self, _cx: &mut Context) {
        if let Some(w) = self.watcher.as_mut() {
            w.micro_batch();
        }
    }

    fn on_prediction_step(&mut self, _cx: &mut Context) {
        if let Some(w) = self.watcher.as_mut() {
            w.forward();
        }
    }

    fn on_save(&mut self, cx: &mut Context) {
        if self.log_model != Some(LogModel::Checkpoint) {
            return;
        }
        let (Some(stager), Some(run)) = (&self.stager, self.run.as_mut()) else {
            return;
        };
        let logged = models::log_checkpoint(run, stager, cx.args, cx.state, self.num_parameters);
        self.artifact_logged(logged);
    }

    fn on_train_end(&mut self, cx: &mut Context) {
        if let (Some(_), Some(run)) = (&self.stager, &self.run) {
            self.final_metadata = Some(models::final_metadata(
                run,
                cx.args,
                cx.state,
                self.num_parameters,
            ));
        }
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        let summary: Vec<Pair> = logs
            .iter()
            .filter(|(k, _)| SUMMARY_KEYS.contains(k))
            .map(|(k, v)| (k.to_string(), value_json(v)))
            .collect();
        if !summary.is_empty() {
            self.with_run(|run| run.summary(&summary));
        }
        let rest: Vec<_> = logs
            .0
            .iter()
            .filter(|e| !SUMMARY_KEYS.contains(&e.key.as_str()))
            .cloned()
            .collect();
        self.log_row(&Logs(&rest), Some(cx.state.global_step));
    }

    fn on_predict(&mut self, _cx: &mut Context, metrics: &Logs) {
        self.log_row(metrics, None);
    }

    fn finish(&mut self, outcome: &RunOutcome) {
        let code = match outcome {
            RunOutcome::Completed => 0,
            RunOutcome::Aborted(why) if why.starts_with("interrupted by SIG") => 255,
            RunOutcome::Aborted(_) => 1,
        };
        // wandb-core flushes the uncommitted histograms in a last row.
        if self.watcher.as_ref().is_some_and(Watcher::has_pending) {
            self.log_row(&Logs(&[]), None);
        }
        if let (RunOutcome::Completed, Some(metadata), Some(stager), Some(args)) = (
            outcome,
            self.final_metadata.take(),
            &self.stager,
            &self.args,
        ) {
            if let Some(run) = self.run.as_mut() {
                let logged = models::log_final(run, stager, args, metadata);
                self.artifact_logged(logged);
            }
        }
        self.with_run(|run| run.exit(code));
        if let Some(run) = self.run.take() {
            println!("offline run written to wandb/{}", run_folder(&run.dir));
        }
    }
}

fn run_folder(dir: &str) -> &str {
    dir.strip_prefix(ROOT)
        .unwrap_or(dir)
        .trim_start_matches('/')
}

export_plugin!(Wandb);
