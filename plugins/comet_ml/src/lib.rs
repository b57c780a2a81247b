//! comet_ml: HF's `CometCallback` (`--report_to comet_ml`) in offline mode.
//! It writes what `comet_ml.start(online=False)` and HF's calls would: an
//! archive `<COMET_OFFLINE_DIRECTORY>/<key>-<id>.zip` (default
//! `./.cometml-runs`, granted as `/comet`) holding `experiment.json` and
//! `messages.json`, which `comet upload` sends to a Comet server.
//!
//! As HF (transformers 5.24): at train begin (or the first log) the
//! experiment starts, named `run_name`, in `COMET_PROJECT_NAME`, and logs
//! `{"args": args.to_dict()}` flattened with `|` (`args|learning_rate`, …)
//! as manual parameters; each log and the prediction metrics go as metrics
//! under `rewrite_logs` names with `step=global_step, epoch=state.epoch`
//! (comet adds the `curr_step` and `curr_epoch` parameters and sorts the
//! names). The archive is written when the run ends, however it ended.
//!
//! Not done: the model's `config|…` parameters (the plugin sees no HF
//! config), the graph, comet's environment details and `sys.*` metrics,
//! `COMET_LOG_ASSETS` (the plugin cannot read `output_dir`), online mode.
//!
//! Modules: `settings` (environment), `archive` (the experiment and its zip).

mod archive;
mod settings;

use archive::{number, Experiment, Meta};
use serde_json::{json, Value as Json};
use settings::Mode;
use trainbox_sdk::{
    args, export_plugin, Callback, Capability, Config, Context, Event, Logs, RunOutcome,
    TrainingArgs, Value,
};

/// Where `--report_to comet_ml` mounts `COMET_OFFLINE_DIRECTORY`.
const ROOT: &str = "/comet";

/// The environment variables read (granted by `--report_to comet_ml`,
/// which reads `COMET_OFFLINE_DIRECTORY` itself to mount `/comet`).
const ENV: &[&str] = &[
    "COMET_START_ONLINE",
    "COMET_MODE",
    "COMET_PROJECT_NAME",
    "COMET_WORKSPACE",
    "COMET_EXPERIMENT_KEY",
    "COMET_LOG_ASSETS",
];

#[derive(Default)]
struct Comet {
    /// What `configure` read; taken by the set-up.
    settings: Option<settings::Settings>,
    /// `{"args": args.to_dict()}` flattened, sorted (as comet logs them).
    params: Vec<(String, Json)>,
    run_name: Option<String>,
    initialized: bool,
    /// The open experiment (none when disabled or on other processes).
    experiment: Option<Experiment>,
}

/// A log value as comet stores a metric: numbers as they are, anything else
/// as `str(value)` (a bool is `True`/`False`).
fn metric_value(v: &Value) -> Json {
    match v {
        Value::Float(f) => number(*f),
        Value::Int(i) => json!(i),
        Value::Text(s) => json!(s),
        Value::Flag(b) => json!(if *b { "True" } else { "False" }),
    }
}

impl Comet {
    /// HF's `setup`: `comet_ml.start` and the parameters, on world-process zero.
    fn setup(&mut self, cx: &Context) {
        self.initialized = true;
        let Some(s) = self.settings.take() else {
            return;
        };
        if !cx.state.is_world_process_zero {
            return;
        }
        let mode = if cx.state.is_hyper_param_search {
            "create".to_string()
        } else {
            s.resume_strategy
        };
        let mut e = Experiment::start(Meta {
            user_provided_experiment_key: s.experiment_key.is_some(),
            offline_id: s.experiment_key.unwrap_or_else(archive::new_key),
            project_name: s.project_name,
            workspace: s.workspace,
            resume_strategy: mode,
        });
        e.log_other("offline_experiment", json!(true));
        if let Some(name) = &self.run_name {
            e.log_other("Name", json!(name));
        }
        e.log_other("hasNestedParams", json!(true));
        for (name, value) in std::mem::take(&mut self.params) {
            e.log_parameter(&name, value, "manual");
        }
        self.experiment = Some(e);
    }

    /// HF's `log_metrics(rewrite_logs(logs), step=global_step, epoch=epoch)`.
    fn log_metrics(&mut self, cx: &Context, logs: &Logs) {
        if !self.initialized {
            self.setup(cx);
        }
        let Some(e) = self.experiment.as_mut() else {
            return;
        };
        e.set_step_and_epoch(cx.state.global_step, cx.state.epoch);
        let mut metrics: Vec<(String, Json)> = logs
            .iter()
            .map(|(k, v)| (args::rewrite_key(k), metric_value(v)))
            .collect();
        metrics.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in metrics {
            e.log_metric(&name, value);
        }
    }
}

impl Callback for Comet {
    const NAME: &'static str = "comet_ml";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log, Event::Predict];

    fn capabilities() -> Vec<Capability> {
        let mut caps = vec![Capability::WriteDir(ROOT.into())];
        caps.extend(ENV.iter().map(|v| Capability::Env(v.to_string())));
        caps
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["hostname", "pid"])?;
        match settings::from_env(|k| std::env::var(k).ok())? {
            Mode::Disabled(why) => eprintln!("warning: {why}"),
            Mode::Offline(s) => {
                for w in &s.warnings {
                    eprintln!("warning: {w}");
                }
                self.settings = Some(s);
            }
        }
        let mut params: Vec<(String, Json)> = args::to_json(args)
            .into_iter()
            .map(|(k, v)| (format!("args|{k}"), v))
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        self.params = params;
        self.run_name = args.run_name.clone();
        Ok(())
    }

    fn on_train_begin(&mut self, cx: &mut Context) {
        if !self.initialized {
            self.setup(cx);
        }
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        self.log_metrics(cx, logs);
    }

    fn on_predict(&mut self, cx: &mut Context, metrics: &Logs) {
        self.log_metrics(cx, metrics);
    }

    fn finish(&mut self, _outcome: &RunOutcome) {
        let Some(mut e) = self.experiment.take() else {
            return;
        };
        // comet's `end()`: the frameworks that logged.
        e.log_other("Created from", json!("transformers"));
        e.log_process_duration();
        match e.write(ROOT) {
            Ok(name) => println!(
                "Comet offline experiment {} written to {name} in COMET_OFFLINE_DIRECTORY; upload it with `comet upload`",
                e.key()
            ),
            Err(err) => eprintln!("error: the Comet offline experiment was not saved: {err}"),
        }
    }
}

export_plugin!(Comet);
