//! `trainbox train`: builds the task (or loads `--model` and its data),
//! loads the plugins in HF's order
//! (DefaultFlow, `report_to` integrations, user plugins, progress/printer
//! last), trains, and prints the plugin report.

use super::config::{PluginSource, RunConfig};
use super::identity;
use super::{interrupt, output_dir, splits};
use crate::args::TrainingArguments;
use crate::callbacks::Callback;
use crate::dist::{Launch, World};
use crate::sandbox::{
    default_cache_dir, CallReport, CompiledPlugin, NotGranted, Sandbox, WasmPlugin,
};
use crate::session::integrations;
use crate::tasks::files::{self, FileDataset, Splits};
use crate::trainer::data::{Dataset, TensorDataset};
use crate::trainer::model::Model;
use crate::trainer::{Interrupted, Trainer};
use crate::view::RunView;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the built-in plugins (`progress.wasm`, `printer.wasm`, …) are:
/// `$TRAINBOX_PLUGIN_DIR`, else the folder `make plugins` fills.
pub fn builtin_plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRAINBOX_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("TRAINBOX_BUILTIN_PLUGINS"))
}

fn builtin(name: &str) -> Result<PathBuf> {
    let dir = builtin_plugin_dir();
    let path = dir.join(format!("{name}.wasm"));
    if !path.is_file() {
        bail!(
            "built-in plugin {name}.wasm not found in {}; run `make plugins` (or set TRAINBOX_PLUGIN_DIR)",
            dir.display()
        );
    }
    Ok(path)
}

/// The `.wasm` files of a folder, sorted by file name.
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugin folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// The plugin files of a run, in dispatch order, each with the integration
/// it is when `--report_to` named it. With several processes, only world
/// zero reports to the integrations (HF's check `is_world_process_zero`).
fn plugin_files(cfg: &RunConfig, world: &World) -> Result<Vec<(PathBuf, Option<&'static str>)>> {
    let mut files = Vec::new();
    if world.is_world_zero() {
        for name in integrations::selected(&cfg.args.report_to)? {
            files.push((builtin(name)?, Some(name)));
        }
    }
    for source in &cfg.plugins {
        match source {
            PluginSource::Dir(dir) => files.extend(wasm_files(dir)?.into_iter().map(|f| (f, None))),
            PluginSource::File(f) => files.push((f.clone(), None)),
        }
    }
    files.push((
        builtin(if cfg.args.disable_tqdm {
            "printer"
        } else {
            "progress"
        })?,
        None,
    ));
    Ok(files)
}

/// Runs `trainbox train`; exit code 1 when training completed but a plugin
/// faulted.
pub fn run(mut cfg: RunConfig) -> Result<i32> {
    splits::choose(&mut cfg)?;
    cfg.args
        .finish()
        .map_err(|e| anyhow!("invalid training arguments: {e}"))?;
    let splits = splits::of(&cfg);
    // Plugins see `all` as the integrations it stands for, as HF's args do.
    cfg.args.report_to = integrations::selected(&cfg.args.report_to)?
        .into_iter()
        .map(String::from)
        .collect();
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
    // Plugins may not fill the disk under the next checkpoint: the model
    // and the optimizer's two moments, twice over.
    let model_bytes: u64 = task
        .model
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
        .sum();
    crate::sandbox::reserve_disk_for_host(6 * model_bytes);

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

    let view = RunView::default();
    let sandbox = Sandbox::new(view.clone(), default_cache_dir())?.for_rank(world.rank());
    let files = plugin_files(&cfg, &world)?;
    // World zero compiles (into the shared compile cache) while the others
    // wait, then finds it all cached.
    let compile = |files: &[(PathBuf, Option<&'static str>)]| -> Result<Vec<(CompiledPlugin, Option<&'static str>)>> {
        files
            .iter()
            .map(|(p, integration)| Ok((sandbox.compile(p)?, *integration)))
            .collect()
    };
    let compiled =
        super::ranks::world_zero_first(&world, "compiling the plugins", || compile(&files))?;
    // Names unique, settings bound to their files, stored states to theirs.
    identity::check(&cfg, &compiled)?;
    identity::check_stored_states(&args, &compiled)?;
    // Each instance may hold an even share of the descriptors lent to plugins.
    crate::sandbox::share_open_files(compiled.len());
    let mut instances: BTreeMap<&str, usize> = BTreeMap::new();
    let mut plugins: Vec<Box<dyn Callback>> = Vec::new();
    for (c, integration) in &compiled {
        let name = c.info.name.as_str();
        let n = instances.entry(name).or_default();
        let started = start_plugin(&sandbox, c, *integration, &cfg, &args, *n);
        match started {
            Ok(Some(plugin)) => {
                plugins.push(Box::new(plugin));
                *n += 1;
            }
            Ok(None) => {}
            Err(e) => {
                // The plugins already started hear that the run is over.
                for p in &mut plugins {
                    p.finish(&Err(format!("{e:#}")));
                }
                return Err(e);
            }
        }
    }

    let mut builder = Trainer::builder(args, task.model, task.train)
        .view(view)
        .callbacks(plugins)
        .stop_request(stop)
        .world(world)
        .device(device)
        .keep_callbacks_after_train();
    if let Some(eval) = task.eval {
        builder = builder.eval_dataset(eval);
    }
    let mut trainer = builder.build()?;
    // Result files (all_results.json, …) come from world zero alone.
    let own_model = cfg.files.model.is_some() && trainer.world().is_world_zero();
    let result = splits::run(
        &mut trainer,
        splits,
        task.samples,
        task.test.as_ref().map(|t| t as &dyn Dataset),
        own_model,
    );
    trainer.finish(&result.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
    let faulted = print_report(&trainer);
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

/// Instance `instance` of a compiled plugin, with the user's settings (and
/// the integration's grants, when `--report_to` named it); `None` when it
/// is skipped for a missing grant (`missing_grant = "skip"`).
fn start_plugin(
    sandbox: &Sandbox,
    c: &CompiledPlugin,
    integration: Option<&str>,
    cfg: &RunConfig,
    args: &TrainingArguments,
    instance: usize,
) -> Result<Option<WasmPlugin>> {
    let name = c.info.name.as_str();
    let mut settings = cfg.plugin_settings.get(name).cloned().unwrap_or_default();
    settings.config = cfg.plugin_config.get(name).cloned().unwrap_or_default();
    if let Some(integration) = integration {
        settings = integrations::settings(integration, &c.info, args, settings)?;
    }
    let skip = settings.skip_if_not_granted;
    let started = sandbox.instantiate(c, settings, args, instance);
    match started.map_err(|e| identity::path_hint(e, c, integration, cfg)) {
        Ok(plugin) => Ok(Some(plugin)),
        Err(e) if skip && e.downcast_ref::<NotGranted>().is_some() => {
            crate::ui::warn(&format!(
                "{e}; the plugin is skipped (missing_grant = \"skip\")"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The end-of-run report: a row per plugin, then every fault. Returns the
/// labels of the plugins that faulted.
fn print_report(trainer: &Trainer) -> Vec<String> {
    let reports: Vec<CallReport> = trainer.callbacks().filter_map(|c| c.report()).collect();
    let faulted = reports.iter().any(|r| !r.faults.is_empty());
    // One table per run: world zero's, and another rank's only when one
    // of its plugins faulted.
    if reports.is_empty() || !(trainer.world().is_world_zero() || faulted) {
        return Vec::new();
    }
    for line in CallReport::table(&reports) {
        crate::ui::eprintln(&line);
    }
    reports
        .iter()
        .filter(|r| !r.faults.is_empty())
        .map(|r| r.label.clone())
        .collect()
}
