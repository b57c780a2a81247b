//! probe (test plugin): queries the host's read-only views (log history,
//! model and gradient statistics, learning rates, dataloader lengths) and
//! writes what it saw to `probe.jsonl` in its directory, one line per event,
//! so tests can compare the views with `trainer_state.json`.

use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use trainbox_sdk::views::{self, TensorStats};
use trainbox_sdk::{export_plugin, hf_name, Callback, Config, Context, Event, Logs, TrainingArgs};

#[derive(Default)]
struct Probe {
    out: Option<BufWriter<File>>,
}

fn stats(s: Option<TensorStats>) -> Value {
    match s {
        Some(s) => {
            json!({"numel": s.numel, "norm": s.norm, "mean": s.mean, "min": s.min, "max": s.max, "nonfinite": s.nonfinite})
        }
        None => Value::Null,
    }
}

impl Callback for Probe {
    const NAME: &'static str = "probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[
        Event::TrainBegin,
        Event::PreOptimizerStep,
        Event::OptimizerStep,
        Event::Log,
    ];

    fn configure(&mut self, _args: &TrainingArgs, _config: &Config) -> Result<(), String> {
        let file = File::create("probe.jsonl").map_err(|e| format!("creating probe.jsonl: {e}"))?;
        self.out = Some(BufWriter::new(file));
        Ok(())
    }

    fn on_event(&mut self, cx: &mut Context, payload: &Logs) {
        let model = views::model();
        let history = views::history();
        let mut line = json!({
            "event": hf_name(cx.event),
            "global_step": cx.state.global_step,
            "grad_norm": model.grad_norm(),
            "learning_rates": model.learning_rates(),
            "history_len": history.len(),
        });
        match cx.event {
            Event::TrainBegin => {
                let d = views::dataloaders();
                line["dataloaders"] = json!({"train": d.train, "eval": d.eval});
                line["parameters"] = json!(model.parameter_names());
                line["parameter_count"] = json!(model.parameter_count());
            }
            Event::PreOptimizerStep | Event::OptimizerStep => {
                let names = model.parameter_names();
                line["gradients"] = names
                    .iter()
                    .map(|n| (n.clone(), stats(model.gradient(n))))
                    .collect();
                line["values"] = names
                    .iter()
                    .map(|n| (n.clone(), stats(model.parameter(n))))
                    .collect();
            }
            Event::Log => {
                let last = history
                    .get(history.len().saturating_sub(1))
                    .unwrap_or_default();
                line["last_entry_keys"] =
                    json!(last.iter().map(|e| e.key.clone()).collect::<Vec<_>>());
                line["payload_keys"] = json!(payload.keys().collect::<Vec<_>>());
                line["missing_entry"] = json!(history.get(history.len()).is_none());
            }
            _ => {}
        }
        if let Some(out) = self.out.as_mut() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

export_plugin!(Probe);
