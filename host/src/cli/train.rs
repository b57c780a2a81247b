//! `trainbox train`: builds the task (or loads `--model` and its data),
//! holds the output_dir, joins the other processes, then hands the run to
//! [`crate::session`], which loads the plugins in HF's order (DefaultFlow,
//! `report_to` integrations, user plugins, progress/printer last), and
//! prints the end-of-run report.

use super::config::RunConfig;
use super::{interrupt, output_dir, splits};
use crate::dist::{Launch, World};
use crate::session::{PluginSetup, Run};
use crate::tasks::files::{self, FileDataset, Splits};
use crate::trainer::data::{Dataset, TensorDataset};
use crate::trainer::model::Model;
use crate::trainer::Interrupted;
use anyhow::Result;

/// The plugins a run's flags and config file name, and their settings.
pub(super) fn plugin_setup(cfg: &RunConfig) -> PluginSetup {
    PluginSetup {
        sources: cfg.plugins.clone(),
        config: cfg.plugin_config.clone(),
        settings: cfg.plugin_settings.clone(),
        pins: cfg.plugin_pins.clone(),
    }
}

/// Runs `trainbox train`; exit code 1 when training completed but a plugin
/// faulted.
pub fn run(mut cfg: RunConfig) -> Result<i32> {
    splits::choose(&mut cfg)?;
    crate::session::prepare_args(&mut cfg.args)?;
    let splits = splits::of(&cfg);
    let args = cfg.args.clone();
    // HF's device rule and precision checks, before anything is loaded.
    let device = crate::device::choose(&args)?;
    let machine = crate::device::Machine::current();
    let precision = crate::device::Precision::of(&args, device, machine)?;
    crate::device::apply_tf32(args.tf32, machine)?;
    // One run per output_dir, held until the process ends; checked before
    // anything is loaded or written.
    let argv = interrupt::program_args();
    // Under a launcher, each process is one rank of the run; world zero
    // holds the output_dir for all of them.
    let launch = Launch::from_env(|name| std::env::var(name).ok())?;
    let rank = launch.as_ref().map_or(0, |l| l.rank);
    let _lock = if rank == 0 {
        Some(output_dir::lock(&args.output_dir)?)
    } else {
        None
    };
    if splits.train {
        output_dir::refuse_foreign_checkpoints(&args, &argv)?;
    }
    let stop = interrupt::install()?;
    tch::manual_seed(args.seed as i64);
    let task = load(&cfg, splits)?;

    let world = match &launch {
        Some(launch) => super::ranks::join(launch, &args, device)?,
        None => World::single(),
    };

    if world.is_world_zero() && (device.is_cuda() || precision != crate::device::Precision::Float32)
    {
        crate::ui::info(&format!(
            "training on {} (mixed precision: {})",
            crate::device::name(device),
            precision.mixed_precision()
        ));
    }

    let mut run = Run::new(args)
        .setup(plugin_setup(&cfg))
        .model(task.model, task.train)
        .stop_request(stop)
        .world(world)
        .device(device);
    if let Some(eval) = task.eval {
        run = run.eval_dataset(eval);
    }
    let mut session = run.start()?;
    let trainer = session.trainer();
    // Result files (all_results.json, …) come from world zero alone.
    let own_model = cfg.files.model.is_some() && trainer.world().is_world_zero();
    let result = splits::run(
        trainer,
        splits,
        task.samples,
        task.test.as_ref().map(|t| t as &dyn Dataset),
        own_model,
    );
    let faulted = session
        .finish(&result.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")))
        .faulted;
    if let Some(stop) = result
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<Interrupted>())
    {
        return Ok(interrupt::report(stop));
    }
    result?;
    if faulted.is_empty() {
        return Ok(0);
    }
    crate::ui::warn(&format!(
        "training completed, but {} faulted (see the report above); exit status 1",
        faulted.join(", ")
    ));
    Ok(1)
}

/// The model and the data of a run.
struct Loaded {
    model: Box<dyn Model>,
    train: Box<dyn Dataset>,
    eval: Option<Box<dyn Dataset>>,
    test: Option<FileDataset>,
    /// Samples of the train, eval and test data.
    samples: [usize; 3],
}

/// The built-in task, or `--model` with its dataset files (checked by a
/// dry run).
fn load(cfg: &RunConfig, splits: Splits) -> Result<Loaded> {
    if cfg.files.model.is_none() {
        let task = crate::tasks::build(&cfg.task, &cfg.task_options)?;
        let samples = [task.train.len(), task.eval.len(), 0];
        return Ok(Loaded {
            model: task.model,
            train: task.train,
            eval: Some(task.eval),
            test: None,
            samples,
        });
    }
    let task = files::task(&cfg.files, &cfg.args, splits)?;
    let len = |d: &Option<FileDataset>| d.as_ref().map_or(0, |d| d.len());
    let samples = [len(&task.train), len(&task.eval), len(&task.test)];
    Ok(Loaded {
        model: task.model,
        train: match task.train {
            Some(d) => Box::new(d),
            None => Box::new(TensorDataset::new(Vec::<(String, tch::Tensor)>::new())),
        },
        eval: task.eval.map(|d| Box::new(d) as Box<dyn Dataset>),
        test: task.test,
        samples,
    })
}
