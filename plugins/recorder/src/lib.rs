//! recorder: writes every event it receives to
//! `<output_dir>/plugins/recorder/events.jsonl`, one JSON object per line:
//! `event` (HF name), `global_step`, `epoch`, `max_steps`, `control` (the five
//! flags as received), plus `log_keys` on `on_log` and `metric_keys` on
//! `on_evaluate`/`on_predict` (sorted). The trace is what `trainbox replay`
//! and the conformance tests read.

use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use trainbox_sdk::{
    export_plugin, hf_name, Callback, Config, Context, Event, Logs, TrainingArgs, ALL_EVENTS,
};

#[derive(Default)]
struct Recorder {
    out: Option<BufWriter<File>>,
}

impl Callback for Recorder {
    const NAME: &'static str = "recorder";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = ALL_EVENTS;

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["file"])?;
        let name = config.get("file").unwrap_or("events.jsonl");
        let file = File::options()
            .create(true)
            .append(true)
            .open(name)
            .map_err(|e| format!("opening {name}: {e}"))?;
        self.out = Some(BufWriter::new(file));
        Ok(())
    }

    fn on_event(&mut self, cx: &mut Context, payload: &Logs) {
        let c = &cx.control;
        let mut line = Map::new();
        line.insert("event".into(), json!(hf_name(cx.event)));
        line.insert("global_step".into(), json!(cx.state.global_step));
        line.insert("epoch".into(), json!(cx.state.epoch));
        line.insert("max_steps".into(), json!(cx.state.max_steps));
        line.insert(
            "control".into(),
            json!({
                "should_training_stop": c.should_training_stop,
                "should_epoch_stop": c.should_epoch_stop,
                "should_save": c.should_save,
                "should_evaluate": c.should_evaluate,
                "should_log": c.should_log,
            }),
        );
        let keys_field = match cx.event {
            Event::Log => Some("log_keys"),
            Event::Evaluate | Event::Predict => Some("metric_keys"),
            _ => None,
        };
        if let Some(field) = keys_field {
            let mut keys: Vec<&str> = payload.keys().collect();
            keys.sort_unstable();
            line.insert(field.into(), json!(keys));
        }
        if let Some(out) = self.out.as_mut() {
            let _ = writeln!(out, "{}", Value::Object(line));
            // Flush at the points a reader may look: a run can be killed anywhere.
            if matches!(
                cx.event,
                Event::TrainEnd | Event::Save | Event::EpochEnd | Event::Log
            ) {
                let _ = out.flush();
            }
        }
    }
}

export_plugin!(Recorder);
