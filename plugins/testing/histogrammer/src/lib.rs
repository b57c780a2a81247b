//! histogrammer (test plugin): at `train_begin` and every
//! `pre_optimizer_step`, reads the histogram of each parameter's values and
//! gradient (`views.model-stats.histogram`, new in trainbox:callback@0.2.0)
//! with `histogrammer.bins` bins (default 16), beside their statistics, and
//! writes one line per event to `histograms.jsonl` in its directory, so that
//! tests can check the one against the other.

use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use trainbox_sdk::views::{self, Histogram, ModelStats, TensorKind, TensorStats};
use trainbox_sdk::{export_plugin, hf_name, Callback, Config, Context, Event, Logs, TrainingArgs};

#[derive(Default)]
struct Histogrammer {
    out: Option<BufWriter<File>>,
    bins: u32,
}

fn stats(s: Option<TensorStats>) -> Value {
    s.map_or(
        Value::Null,
        |s| json!({"numel": s.numel, "min": s.min, "max": s.max, "nonfinite": s.nonfinite}),
    )
}

fn histogram(h: Option<Histogram>) -> Value {
    h.map_or(
        Value::Null,
        |h| json!({"min": h.min, "max": h.max, "counts": h.counts, "edges": h.edges()}),
    )
}

fn tensor(model: &ModelStats, name: &str, kind: TensorKind, bins: u32) -> Value {
    let s = match kind {
        TensorKind::Value => model.parameter(name),
        TensorKind::Gradient => model.gradient(name),
    };
    json!({"stats": stats(s), "histogram": histogram(model.histogram(name, kind, bins))})
}

impl Callback for Histogrammer {
    const NAME: &'static str = "histogrammer";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::PreOptimizerStep];

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["bins"])?;
        self.bins = config.parse("bins")?.unwrap_or(16);
        let file = File::create("histograms.jsonl")
            .map_err(|e| format!("creating histograms.jsonl: {e}"))?;
        self.out = Some(BufWriter::new(file));
        Ok(())
    }

    fn on_event(&mut self, cx: &mut Context, _payload: &Logs) {
        let model = views::model();
        let tensors: serde_json::Map<String, Value> = model
            .parameter_names()
            .iter()
            .map(|n| {
                let v = json!({
                    "value": tensor(&model, n, TensorKind::Value, self.bins),
                    "gradient": tensor(&model, n, TensorKind::Gradient, self.bins),
                });
                (n.clone(), v)
            })
            .collect();
        let line = json!({
            "event": hf_name(cx.event),
            "global_step": cx.state.global_step,
            "tensors": tensors,
        });
        if let Some(out) = self.out.as_mut() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

export_plugin!(Histogrammer);
