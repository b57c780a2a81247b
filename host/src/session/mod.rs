//! A training run as `trainbox train` makes it, for the binary and for
//! library users alike: the [`Trainer`] with its plugins loaded in HF's
//! order (DefaultFlow, the `report_to` integrations, the user's plugin
//! folders and files, native callbacks, progress/printer last), their
//! grants and config, and the end-of-run report. It does not parse flags
//! or config files (`cli` does), nor build models or data (`tasks` does).
//!
//! ```no_run
//! # fn demo(model: Box<dyn trainbox::Model>, train: Box<dyn trainbox::Dataset>) -> anyhow::Result<()> {
//! let args = trainbox::TrainingArguments { output_dir: "runs/mine".into(), ..Default::default() };
//! let outcome = trainbox::Run::new(args)
//!     .plugins("my-plugins")                   // every .wasm in the folder
//!     .plugin_config("recorder", "values", "true")
//!     .model(model, train)
//!     .train()?;                               // prints the end-of-run report
//! println!("{} steps, {} plugin(s) faulted", outcome.output.global_step, outcome.faulted.len());
//! # Ok(()) }
//! ```
//!
//! - `plugins`: where plugins come from (the built-in folder is found at
//!   run time: `$TRAINBOX_PLUGIN_DIR`, else beside the binary), compiling,
//!   checking and starting them.
//! - `setup`: what the user says of the plugins (sources, config, settings).
//! - `identity`: which file each setting and stored state is for.
//! - [`integrations`]: the loggers `--report_to` selects, and what each is
//!   granted.

mod identity;
pub use trainbox_sandbox::integrations;
mod plugins;
mod setup;

pub use crate::sandbox::wasm_files;
pub use plugins::{builtin_plugin_dir, start_one, PLUGIN_DIR_VAR};
pub use setup::{PluginPin, PluginSetup, PluginSource};

use crate::args::TrainingArguments;
use crate::callbacks::Callback;
use crate::dist::World;
use crate::sandbox::{default_cache_dir, CallReport, PluginSettings, Sandbox};
use crate::trainer::data::Dataset;
use crate::trainer::model::Model;
use crate::trainer::{StopRequest, TrainOutput, Trainer};
use crate::view::RunView;
use anyhow::{anyhow, Result};
use std::path::PathBuf;

/// Readies a run's arguments, once, before anything is loaded: HF's
/// `__post_init__` (which also reads `report_to`'s "none"),
/// `--full_determinism`'s environment, and `report_to` as the integrations
/// it stands for (plugins see `all` so, as HF's args do). Calling it again
/// on its result changes nothing.
pub fn prepare_args(args: &mut TrainingArguments) -> Result<()> {
    args.finish()
        .map_err(|e| anyhow!("invalid training arguments: {e}"))?;
    crate::trainer::determinism_env(args);
    args.report_to = integrations::selected(&args.report_to)?
        .into_iter()
        .map(String::from)
        .collect();
    Ok(())
}

/// One training run with its plugins: collect what it needs, then
/// [`train`](Run::train) (or [`start`](Run::start) for a program that
/// evaluates or predicts after training, as `trainbox train` does).
///
/// Defaults: no user plugins; the built-in folder from
/// [`builtin_plugin_dir`]; the progress bar (or the printer, with
/// `disable_tqdm`) loaded last; the integrations `args.report_to` names;
/// the device by HF's rule ([`crate::device::choose`]); a world of one;
/// the compile cache in its default folder.
pub struct Run {
    args: TrainingArguments,
    setup: PluginSetup,
    builtin_dir: Option<PathBuf>,
    progress: bool,
    callbacks: Vec<Box<dyn Callback>>,
    model: Option<(Box<dyn Model>, Box<dyn Dataset>)>,
    eval: Option<Box<dyn Dataset>>,
    world: World,
    device: Option<tch::Device>,
    stop: StopRequest,
    cache_dir: Option<PathBuf>,
}

impl Run {
    /// A run with these arguments (`report_to` selects the integrations).
    pub fn new(args: TrainingArguments) -> Run {
        Run {
            args,
            setup: PluginSetup::default(),
            builtin_dir: None,
            progress: true,
            callbacks: Vec::new(),
            model: None,
            eval: None,
            world: World::single(),
            device: None,
            stop: StopRequest::default(),
            cache_dir: default_cache_dir(),
        }
    }

    /// Loads every `.wasm` in `dir` (sorted by file name), after the
    /// folders and files given before.
    pub fn plugins(mut self, dir: impl Into<PathBuf>) -> Run {
        self.setup.sources.push(PluginSource::Dir(dir.into()));
        self
    }

    /// Loads one plugin file, after the folders and files given before.
    pub fn plugin(mut self, file: impl Into<PathBuf>) -> Run {
        self.setup.sources.push(PluginSource::File(file.into()));
        self
    }

    /// One `configure` pair for the plugin named `name` (later values win).
    pub fn plugin_config(mut self, name: &str, key: &str, value: &str) -> Run {
        let pairs = self.setup.config.entry(name.to_string()).or_default();
        pairs.retain(|(k, _)| k != key);
        pairs.push((key.to_string(), value.to_string()));
        self
    }

    /// How the host runs the plugin named `name`: limits, `on_error`,
    /// grants. A table that grants anything must say which file it is for
    /// ([`Run::pin`]), unless `name` is an integration `report_to` selects.
    pub fn plugin_settings(mut self, name: &str, settings: PluginSettings) -> Run {
        self.setup.settings.insert(name.to_string(), settings);
        self
    }

    /// Binds the settings of `name` to a file (and its sha256).
    pub fn pin(mut self, name: &str, pin: PluginPin) -> Run {
        self.setup.pins.insert(name.to_string(), pin);
        self
    }

    /// The whole plugin setup at once (what `trainbox train` read from its
    /// flags and config file), replacing what was given before.
    pub fn setup(mut self, setup: PluginSetup) -> Run {
        self.setup = setup;
        self
    }

    /// Where the built-in plugins are (by default [`builtin_plugin_dir`]).
    pub fn builtin_plugins(mut self, dir: impl Into<PathBuf>) -> Run {
        self.builtin_dir = Some(dir.into());
        self
    }

    /// Leaves out the progress bar and the printer (on by default).
    pub fn without_progress(mut self) -> Run {
        self.progress = false;
        self
    }

    /// A native callback, after the plugin folders and files and before
    /// the progress bar.
    pub fn callback(mut self, callback: Box<dyn Callback>) -> Run {
        self.callbacks.push(callback);
        self
    }

    /// The model to train and its training data.
    pub fn model(mut self, model: Box<dyn Model>, train: Box<dyn Dataset>) -> Run {
        self.model = Some((model, train));
        self
    }

    /// The data to evaluate on (required by any `eval_strategy` but `no`).
    pub fn eval_dataset(mut self, data: Box<dyn Dataset>) -> Run {
        self.eval = Some(data);
        self
    }

    /// The processes of a data-parallel run this one is one of.
    pub fn world(mut self, world: World) -> Run {
        self.world = world;
        self
    }

    /// The device to train on (by default HF's rule).
    pub fn device(mut self, device: tch::Device) -> Run {
        self.device = Some(device);
        self
    }

    /// The request that stops the run after the current optimizer step.
    pub fn stop_request(mut self, stop: StopRequest) -> Run {
        self.stop = stop;
        self
    }

    /// Where compiled plugins are cached (`None`: no cache).
    pub fn compile_cache(mut self, dir: Option<PathBuf>) -> Run {
        self.cache_dir = dir;
        self
    }

    /// Loads and starts the plugins and builds the trainer (which fires
    /// `on_init_end`). On error, the plugins already started hear that the
    /// run is over.
    pub fn start(self) -> Result<Session> {
        let Run {
            mut args,
            setup,
            builtin_dir,
            progress,
            callbacks,
            model,
            eval,
            world,
            device,
            stop,
            cache_dir,
        } = self;
        let (model, train) =
            model.ok_or_else(|| anyhow!("the run has no model: call `Run::model` first"))?;
        // Before the trainer and the plugins' threads (the model is the
        // caller's: a library user who trains on CUDA with
        // --full_determinism calls `prepare_args` before building it).
        prepare_args(&mut args)?;
        let device = match device {
            Some(d) => d,
            None => crate::device::choose(&args)?,
        };
        // Plugins may not fill the disk under the next checkpoint: the model
        // and the optimizer's two moments, twice over.
        let model_bytes: u64 = model
            .var_store()
            .trainable_variables()
            .iter()
            .map(|t| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
            .sum();
        crate::sandbox::reserve_disk_for_host(6 * model_bytes);

        let view = RunView::default();
        let sandbox = Sandbox::new(view.clone(), cache_dir)?.for_rank(world.rank());
        let builtin_dir = builtin_dir.unwrap_or_else(builtin_plugin_dir);
        let files = plugins::plugin_files(&args, &setup, &builtin_dir, progress, &world)?;
        let mut started: Vec<Box<dyn Callback>> =
            plugins::start_all(&sandbox, &files, &setup, &args, &world)?
                .into_iter()
                .map(|p| Box::new(p) as Box<dyn Callback>)
                .collect();
        // Native callbacks go before the progress bar, the last plugin.
        let last = if progress { started.pop() } else { None };
        started.extend(callbacks);
        started.extend(last);

        let mut builder = Trainer::builder(args, model, train)
            .view(view)
            .callbacks(started)
            .stop_request(stop)
            .world(world)
            .device(device)
            .keep_callbacks_after_train();
        if let Some(eval) = eval {
            builder = builder.eval_dataset(eval);
        }
        Ok(Session {
            trainer: builder.build()?,
            _sandbox: sandbox,
        })
    }

    /// Starts the run, trains, and ends it: the plugins hear how it ended
    /// and the end-of-run report is printed (on error too, before the
    /// error is returned).
    pub fn train(self) -> Result<Outcome> {
        let mut session = self.start()?;
        let output = session.trainer.train();
        let ended = session.finish(&output.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
        Ok(Outcome {
            output: output?,
            plugins: ended.plugins,
            faulted: ended.faulted,
            trainer: session.trainer,
        })
    }
}

/// A started run: the trainer with its plugins, until [`Session::finish`].
pub struct Session {
    // Dropped first: the plugins (in the trainer) go before their sandbox.
    trainer: Trainer,
    /// The engine's epoch ticker lives as long as the sandbox: without it
    /// no deadline ends a plugin's call, so it is kept for the whole run.
    _sandbox: Sandbox,
}

/// What the end of a run reports of its plugins.
#[derive(Debug, Clone, Default)]
pub struct Ended {
    /// A row per plugin: calls, time, faults.
    pub plugins: Vec<CallReport>,
    /// The labels of the plugins that faulted.
    pub faulted: Vec<String>,
}

/// A finished [`Run::train`].
pub struct Outcome {
    /// What `train()` returned.
    pub output: TrainOutput,
    /// A row per plugin: calls, time, faults.
    pub plugins: Vec<CallReport>,
    /// The labels of the plugins that faulted (the command line exits 1).
    pub faulted: Vec<String>,
    /// The trainer, for its state and model.
    pub trainer: Trainer,
}

impl Session {
    /// The trainer, to train, evaluate and predict with.
    pub fn trainer(&mut self) -> &mut Trainer {
        &mut self.trainer
    }

    /// The end of the run, the one place it is printed: the plugins hear
    /// how the run ended (once), then a run that trained gets its summary
    /// ([`crate::report::print_summary`]), then the plugin report: a row per
    /// plugin, then every fault. With several processes, world zero prints
    /// its table, another rank only when one of its plugins faulted.
    pub fn finish(&mut self, outcome: &std::result::Result<(), String>) -> Ended {
        self.trainer.finish(outcome);
        let plugins: Vec<CallReport> = self
            .trainer
            .callbacks()
            .filter_map(|c| c.report())
            .collect();
        let faulted: Vec<String> = plugins
            .iter()
            .filter(|r| !r.faults.is_empty())
            .map(|r| r.label.clone())
            .collect();
        // How the run went, before the plugins' costs (world zero only).
        if outcome.is_ok() {
            crate::report::print_summary(self.trainer.state(), self.trainer.args());
        }
        if !plugins.is_empty() && (self.trainer.world().is_world_zero() || !faulted.is_empty()) {
            for line in CallReport::table(&plugins) {
                crate::ui::eprintln(&line);
            }
        }
        Ended { plugins, faulted }
    }

    /// The trainer, once the run is over.
    pub fn into_trainer(self) -> Trainer {
        self.trainer
    }
}
