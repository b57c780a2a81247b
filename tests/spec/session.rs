//! The library's one call for a run with plugins (`trainbox::Run`): plugin
//! folders, plugin config, native callbacks and the progress bar in the
//! CLI's order, the end-of-run report, and the CLI's checks and errors.

use crate::library::Linear;
use crate::util::{fresh_dir, plugin, plugin_dir};
use anyhow::Result;
use std::sync::{Arc, Mutex};
use tch::{nn, Tensor};
use trainbox::{
    Callback, Event, EventContext, Model, Run, TensorDataset, TrainerControl, TrainingArguments,
};

fn model() -> Box<dyn Model> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let layer = nn::linear(vs.root() / "layer", 4, 1, Default::default());
    Box::new(Linear { vs, layer })
}

fn data(n: i64) -> Box<TensorDataset> {
    let x = Tensor::randn([n, 4], (tch::Kind::Float, tch::Device::Cpu));
    let y = x.matmul(&Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0]));
    Box::new(TensorDataset::new([("x", x), ("labels", y)]))
}

/// Arguments for a short run in a fresh folder; the printer, not bars.
fn short_run(test: &str) -> (std::path::PathBuf, TrainingArguments) {
    let dir = fresh_dir(test);
    let args = TrainingArguments {
        output_dir: dir.join("out").to_string_lossy().into(),
        max_steps: 6,
        logging_steps: 2.0,
        disable_tqdm: true,
        ..Default::default()
    };
    (dir, args)
}

/// The events a native callback sees.
struct Seen(Arc<Mutex<Vec<Event>>>);

impl Callback for Seen {
    fn name(&self) -> &str {
        "seen"
    }
    fn on_event(
        &mut self,
        cx: &EventContext<'_>,
        control: TrainerControl,
    ) -> Result<TrainerControl> {
        self.0.lock().unwrap().push(cx.event);
        Ok(control)
    }
}

#[test]
fn a_run_loads_plugin_folders_with_their_config_then_native_callbacks_then_the_printer() {
    let (dir, args) = short_run("session_order");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(plugin("recorder"), plugins.join("recorder.wasm")).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let outcome = Run::new(args)
        .plugins(&plugins)
        .plugin_config("recorder", "file", "trace.jsonl")
        .builtin_plugins(plugin_dir())
        .callback(Box::new(Seen(seen.clone())))
        .model(model(), data(64))
        .train()
        .unwrap();
    assert_eq!(outcome.output.global_step, 6);
    let names: Vec<&str> = outcome.trainer.callbacks().map(|c| c.name()).collect();
    assert_eq!(
        names,
        ["DefaultFlowCallback", "recorder", "seen", "printer"],
        "HF's order: flow, user plugins, native callbacks, the printer last"
    );
    let labels: Vec<&str> = outcome.plugins.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["recorder", "printer"], "a report row per plugin");
    assert!(outcome.faulted.is_empty(), "{:?}", outcome.faulted);
    // The recorder got its config: it wrote the file it was told to.
    let trace = dir.join("out/plugins/recorder/trace.jsonl");
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.contains("\"on_train_end\""), "{text}");
    assert_eq!(seen.lock().unwrap().last(), Some(&Event::TrainEnd));
}

#[test]
fn a_run_refuses_settings_for_a_plugin_it_does_not_load() {
    let (_dir, args) = short_run("session_unknown_config");
    let err = Run::new(args)
        .plugin_config("recordr", "file", "x.jsonl")
        .builtin_plugins(plugin_dir())
        .model(model(), data(16))
        .start()
        .err()
        .expect("settings for a plugin not loaded");
    let err = format!("{err:#}");
    assert!(
        err.contains("\"recordr\"") && err.contains("no plugin of that name is loaded"),
        "{err}"
    );
}

#[test]
fn a_run_without_its_builtin_plugins_says_where_it_looked_and_the_fix() {
    let (dir, args) = short_run("session_no_builtins");
    let err = Run::new(args)
        .builtin_plugins(dir.join("nowhere"))
        .model(model(), data(16))
        .start()
        .err()
        .expect("no printer.wasm");
    let err = format!("{err:#}");
    assert!(err.contains("printer.wasm not found"), "{err}");
    assert!(err.contains("make install"), "{err}");
    // Without the progress bar, no built-in plugin is needed.
    let (_dir, args) = short_run("session_no_builtins_needed");
    let out = Run::new(args)
        .builtin_plugins(dir.join("nowhere"))
        .without_progress()
        .model(model(), data(16))
        .train()
        .unwrap();
    assert!(out.plugins.is_empty());
}
