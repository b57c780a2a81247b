//! `make bench`: what plugins cost. Prints, side by side in one run, the
//! training speed of the regression task with no plugins and with
//! printer + progress + recorder loaded, and the cost of one event call into
//! a Rust plugin (also with a log history of 10 and of 1,000,000 entries).
//! Runs alternate and the median is reported, since the machines are shared
//! and noisy.
//!
//! Sections can be picked by name: `cargo bench --profile release --bench
//! dispatch -- calls history` runs only those (`steps`, which is
//! `regression` and `sort`, `calls`, `history`, `plugins`, `languages`, `restart`,
//! `load`); with none named, all run.

use std::path::PathBuf;
use std::time::Instant;
use trainbox::sandbox::{PluginSettings, Sandbox, WasmPlugin};
use trainbox::{
    Callback, Event, EventContext, Logs, RunView, Trainer, TrainerControl, TrainerState,
    TrainingArguments,
};

const REPEATS: usize = 5;
const CALLS: u32 = 200_000;
const LANG_CALLS: u32 = 20_000;
/// The training figures log every this many steps (the setting).
const LOGGING_STEPS: f64 = 50.0;

fn plugin_path(name: &str) -> PathBuf {
    // Read at run time: `make bench` exports this checkout's build/plugins.
    let dir = std::env::var_os("TRAINBOX_PLUGIN_DIR")
        .map_or_else(|| PathBuf::from("../build/plugins"), PathBuf::from);
    let p = dir.join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} missing: run `make plugins`", p.display());
    p
}

/// The compile cache of the figures that do not time loading: compiling the
/// Python plugin takes seconds, and is not what they measure.
fn compiled_cache() -> PathBuf {
    std::env::temp_dir().join("trainbox-bench-compiled")
}

/// The arguments of a bench run in a fresh `dir` under the temporary
/// directory (a folder left by another build's plugins would be refused).
fn args(dir: &str, steps: i64) -> TrainingArguments {
    let dir = std::env::temp_dir().join(dir);
    let _ = std::fs::remove_dir_all(&dir);
    TrainingArguments {
        output_dir: dir.to_string_lossy().into(),
        max_steps: steps,
        logging_steps: LOGGING_STEPS,
        save_strategy: trainbox::args::SaveStrategy::No,
        disable_tqdm: true,
        ..Default::default()
    }
}

fn load(
    sandbox: &Sandbox,
    name: &str,
    args: &TrainingArguments,
    config: &[(&str, &str)],
) -> WasmPlugin {
    let compiled = sandbox
        .compile(&plugin_path(name))
        .expect("compiling plugin");
    let settings = PluginSettings {
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    sandbox
        .instantiate(&compiled, settings, &args.into(), 0)
        .expect("instantiating plugin")
}

/// One timed training run.
struct StepTime {
    /// Wall seconds per step.
    seconds: f64,
    /// Microseconds per step spent inside each plugin's event calls
    /// (lowering, the guest's code and the host calls it makes), by name.
    in_calls: Vec<(String, f64)>,
}

/// Seconds per training step of a task, with or without plugins.
fn step_time(task: &str, steps: i64, batch: u32, with_plugins: bool) -> StepTime {
    let mut args = args(
        if with_plugins {
            "trainbox-bench-plugins"
        } else {
            "trainbox-bench-none"
        },
        steps,
    );
    args.per_device_train_batch_size = batch;
    let _ = std::fs::remove_dir_all(&args.output_dir);
    tch::manual_seed(0);
    let mut options = trainbox::tasks::TaskOptions::new();
    options.insert("train_size".into(), "4096".into());
    let task = trainbox::tasks::build(task, &options).unwrap();
    let view = RunView::default();
    let mut plugins: Vec<Box<dyn Callback>> = Vec::new();
    let sandbox = Sandbox::new(view.clone(), Some(compiled_cache())).unwrap();
    if with_plugins {
        for name in ["recorder", "printer", "progress"] {
            plugins.push(Box::new(load(&sandbox, name, &args, &[])));
        }
    }
    let mut trainer = Trainer::builder(args, task.model, task.train)
        .view(view)
        .callbacks(plugins)
        .build()
        .unwrap();
    let start = Instant::now();
    trainer.train().unwrap();
    let seconds = start.elapsed().as_secs_f64() / steps as f64;
    let in_calls = trainer
        .callbacks()
        .filter_map(|c| c.report())
        .map(|r| {
            // `exports` is in the report's column order: the event calls first.
            let events = r.exports[0];
            (r.label, events.total.as_secs_f64() * 1e6 / steps as f64)
        })
        .collect();
    StepTime { seconds, in_calls }
}

/// Alternating runs without and with plugins; prints the medians side by side.
fn compare(task: &str, steps: i64, batch: u32, repeats: usize, what: &str) {
    let (mut none, mut loaded) = (Vec::new(), Vec::new());
    let mut in_calls: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..repeats {
        none.push(step_time(task, steps, batch, false).seconds);
        let run = step_time(task, steps, batch, true);
        loaded.push(run.seconds);
        for (i, (name, us)) in run.in_calls.into_iter().enumerate() {
            if in_calls.len() <= i {
                in_calls.push((name, Vec::new()));
            }
            in_calls[i].1.push(us);
        }
    }
    let (none, loaded) = (median(none), median(loaded));
    println!("{task} task, {steps} steps of {what}, batch {batch}, logging_steps {LOGGING_STEPS} (median of {repeats} alternating runs):");
    println!(
        "  {:<34} {:>10.1} steps/s {:>10.1} µs/step",
        "no plugins",
        1.0 / none,
        none * 1e6
    );
    println!(
        "  {:<34} {:>10.1} steps/s {:>10.1} µs/step   {:+.1}% step time",
        "printer + progress + recorder",
        1.0 / loaded,
        loaded * 1e6,
        (loaded / none - 1.0) * 100.0
    );
    // The time inside the calls, measured by the call path itself: less
    // noisy than the difference of two wall times on a shared machine.
    let mut total = 0.0;
    for (name, times) in in_calls {
        let us = median(times);
        total += us;
        println!(
            "    {:<32} {us:>10.2} µs/step in its event calls   ({:.2}% of the step without plugins)",
            name,
            us / (none * 1e6) * 100.0
        );
    }
    println!(
        "    {:<32} {total:>10.2} µs/step in event calls   ({:.2}%)",
        "all three",
        total / (none * 1e6) * 100.0
    );
}

/// The state the call figures hand the plugin.
fn bench_state() -> TrainerState {
    TrainerState {
        global_step: 1,
        max_steps: 10,
        ..Default::default()
    }
}

/// Nanoseconds per `on_event` call into a plugin that does nothing with it.
fn call_cost(plugin: &mut WasmPlugin, event: Event, payload: &Logs) -> f64 {
    calls(plugin, event, &bench_state(), payload, CALLS)
}

/// Nanoseconds per call over `n` calls.
fn calls(
    plugin: &mut WasmPlugin,
    event: Event,
    state: &TrainerState,
    payload: &Logs,
    n: u32,
) -> f64 {
    let args = TrainingArguments::default();
    let control = TrainerControl::default();
    let start = Instant::now();
    for _ in 0..n {
        // A context per call, as the handler makes one per event: the
        // records plugins receive are made for each.
        let cx = EventContext::new(event, &args, state, payload);
        std::hint::black_box(plugin.on_event(&cx, control).unwrap());
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Whether section `name` was asked for (all are, when none is named).
fn wanted(name: &str) -> bool {
    // `cargo bench` passes `--bench`; section names are the other arguments.
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|a| a == name)
}

/// A 4-entry log payload, as `on_log` carries at a logging step.
fn log_entry(step: u64) -> Logs {
    let mut log = Logs::new();
    for (k, v) in [
        ("loss", 0.5),
        ("grad_norm", 1.0),
        ("learning_rate", 5e-5),
        ("epoch", 0.125),
    ] {
        log.insert(k, trainbox::Value::Float(v));
    }
    log.insert("step", trainbox::Value::Int(step as i64));
    log
}

fn main() {
    if wanted("steps") || wanted("regression") {
        // Warm the compile cache and libtorch before timing anything.
        step_time("regression", 100, 8, true);
        compare("regression", 3000, 8, 11, "a 2-parameter model");
    }
    if wanted("steps") || wanted("sort") {
        compare("sort", 150, 64, 3, "the demo transformer");
    }
    let args = args("trainbox-bench-calls", 1);
    let sandbox = Sandbox::new(RunView::default(), Some(compiled_cache())).unwrap();
    let stopper = || load(&sandbox, "stopper", &args, &[("at_step", "1000000000")]);
    if wanted("calls") {
        call_figures(&args, stopper());
    }
    if wanted("history") {
        history_figures(&args);
    }
    if wanted("plugins") {
        shipped_plugin_figures(&sandbox, &args);
    }
    if wanted("languages") {
        language_figures(&sandbox, &args);
    }
    if wanted("restart") {
        restart_figures(stopper());
    }
    if wanted("load") {
        load_figures(&args);
    }
}

/// One event call into a trivial Rust plugin: bare, with a payload, and
/// without limits.
fn call_figures(args: &TrainingArguments, mut stopper: WasmPlugin) {
    let unlimited = Sandbox::without_limits(RunView::default(), Some(compiled_cache())).unwrap();
    let mut free = load(&unlimited, "stopper", args, &[("at_step", "1000000000")]);
    let log = log_entry(1);
    let empty = Logs::new();
    let per_call = |plugin: &mut WasmPlugin, payload: &Logs| {
        median(
            (0..REPEATS)
                .map(|_| call_cost(plugin, Event::StepEnd, payload))
                .collect(),
        ) / 1e3
    };
    println!("one event call into a Rust plugin ({CALLS} calls, median of {REPEATS}):");
    let row = |what: &str, us: f64| println!("  {what:<34} {us:>10.3} µs/call");
    row(
        "on_step_end, trivial handler",
        per_call(&mut stopper, &empty),
    );
    row(
        "same, with a 5-entry log payload",
        per_call(&mut stopper, &log),
    );
    row(
        "same, without deadline or memory cap",
        per_call(&mut free, &empty),
    );
    // HF's own dispatch is measured in the same `make bench` run, right
    // after this, by bench/hf_dispatch.py (transformers' CallbackHandler).
    println!("  (HF's callback dispatch: measured next by bench/hf_dispatch.py)");
}

/// The same calls with a log history of 10 and of 1,000,000 entries, in the
/// state and in the plugins' view alike: a call must cost the same.
fn history_figures(args: &TrainingArguments) {
    let lengths = [10u64, 1_000_000];
    let mut runs: Vec<(WasmPlugin, TrainerState)> = lengths
        .iter()
        .map(|&n| {
            let view = RunView::default();
            let state = bench_state();
            // One history, shared by the state and the view (as the trainer does).
            view.lock().log_history = state.log_history.share();
            for step in 0..n {
                state.log_history.push(&log_entry(step));
            }
            let sandbox = Sandbox::new(view, Some(compiled_cache())).unwrap();
            let plugin = load(&sandbox, "stopper", args, &[("at_step", "1000000000")]);
            (plugin, state)
        })
        .collect();
    let payload = log_entry(1);
    let empty = Logs::new();
    println!("one event call into a Rust plugin by length of the log history ({CALLS} calls, median of {REPEATS} alternating):");
    println!(
        "  {:<34} {:>18} {:>18}",
        "", "10 entries", "1,000,000 entries"
    );
    for (what, event, payload) in [
        ("on_step_end", Event::StepEnd, &empty),
        ("on_log, 5-entry payload", Event::Log, &payload),
    ] {
        // Alternating, so that both lengths see the same machine.
        let mut times = vec![Vec::new(); lengths.len()];
        for _ in 0..REPEATS {
            for (i, (plugin, state)) in runs.iter_mut().enumerate() {
                times[i].push(calls(plugin, event, state, payload, CALLS) / 1e3);
            }
        }
        let [short, long]: [f64; 2] = times
            .into_iter()
            .map(median)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        println!(
            "  {what:<34} {short:>10.3} µs/call {long:>10.3} µs/call   ({:+.1}%)",
            (long / short - 1.0) * 100.0
        );
    }
}

/// One call into each plugin of the default set, on the events of a step;
/// the progress plugin with its training bar drawn (after `on_train_begin`).
fn shipped_plugin_figures(sandbox: &Sandbox, args: &TrainingArguments) {
    let empty = Logs::new();
    println!("one event call into the shipped plugins ({LANG_CALLS} calls, median of {REPEATS}):");
    let mut state = bench_state();
    state.max_steps = u64::MAX;
    for (name, event) in [
        ("recorder", Event::StepBegin),
        ("recorder", Event::StepEnd),
        ("progress", Event::StepEnd),
    ] {
        let mut p = load(sandbox, name, args, &[]);
        calls(&mut p, Event::TrainBegin, &state, &empty, 1);
        let us = median(
            (0..REPEATS)
                .map(|_| calls(&mut p, event, &state, &empty, LANG_CALLS))
                .collect(),
        ) / 1e3;
        println!("  {:<34} {us:>10.3} µs/call", format!("{name}, {event}"));
    }
}

/// One trivial event per language: each plugin gets an event it ignores.
fn language_figures(sandbox: &Sandbox, args: &TrainingArguments) {
    let empty = Logs::new();
    println!("one event call by plugin language (on_step_end, ignored by the plugin; {LANG_CALLS} calls, median of {REPEATS}):");
    for (lang, name) in [
        ("Rust", "stopper"),
        ("C", "grad-warn"),
        ("Python", "nan-guard"),
        ("JavaScript", "csv-logger"),
    ] {
        let mut p = load(
            sandbox,
            name,
            args,
            if name == "stopper" {
                &[("at_step", "1000000000")]
            } else {
                &[]
            },
        );
        let us = median(
            (0..REPEATS)
                .map(|_| calls(&mut p, Event::StepEnd, &bench_state(), &empty, LANG_CALLS))
                .collect(),
        ) / 1e3;
        let size = std::fs::metadata(plugin_path(name))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "  {:<34} {us:>10.3} µs/call   ({name}, {:.1} MB component)",
            lang,
            size as f64 / 1e6
        );
    }
}

/// Restarting a plugin after a fault.
fn restart_figures(mut stopper: WasmPlugin) {
    let restarts: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..100 {
                stopper.restart().unwrap();
            }
            start.elapsed().as_secs_f64() * 1e6 / 100.0
        })
        .collect();
    println!(
        "restarting a Rust plugin (re-instantiate, configure, restore state), median of {REPEATS}:"
    );
    println!("  {:<34} {:>10.1} µs", "restart", median(restarts));
}

/// Loading plugins with a cold and a warm compile cache.
fn load_figures(args: &TrainingArguments) {
    let cache = std::env::temp_dir().join("trainbox-bench-cache");
    let names = [
        "recorder",
        "printer",
        "progress",
        "early-stopping",
        "stopper",
        "probe",
    ];
    let mut load_args = args.clone();
    load_args.metric_for_best_model = Some("loss".into());
    load_args.eval_strategy = trainbox::args::IntervalStrategy::Epoch;
    let load_all = || {
        let sandbox = Sandbox::new(RunView::default(), Some(cache.clone())).unwrap();
        let start = Instant::now();
        for i in 0..12 {
            let compiled = sandbox
                .compile(&plugin_path(names[i % names.len()]))
                .unwrap();
            sandbox
                .instantiate(
                    &compiled,
                    PluginSettings::default(),
                    &(&load_args).into(),
                    i,
                )
                .unwrap();
        }
        start.elapsed().as_secs_f64() * 1e3
    };
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(&cache);
        cold.push(load_all());
        warm.push(load_all());
    }
    println!(
        "loading 12 plugins ({} distinct files): compile, instantiate, configure (median of 3):",
        names.len()
    );
    println!("  {:<34} {:>10.1} ms", "cold compile cache", median(cold));
    println!("  {:<34} {:>10.1} ms", "warm compile cache", median(warm));
}
