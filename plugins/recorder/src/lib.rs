//! recorder: writes every event it receives to
//! `<output_dir>/plugins/recorder/events.jsonl`, one JSON object per line:
//! `event` (HF name), `global_step`, `epoch`, `max_steps`, `control` (the five
//! flags as received), plus `log_keys` on `on_log` and `metric_keys` on
//! `on_evaluate`/`on_predict` (sorted). With `recorder.values=true` it also
//! writes the values, as `logs` or `metrics`, so that `trainbox replay` can
//! feed them back. `recorder.file` names the file. The trace is what
//! `trainbox replay` and the conformance tests read. When the run is over,
//! `outcome.txt` says how: `completed`, or `aborted: <the error>`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};
use trainbox_sdk::{
    export_plugin, hf_name, Callback, Config, Context, Event, Logs, RunOutcome, TrainingArgs,
    Value, ALL_EVENTS,
};

/// Longest time events stay in the write buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Recorder {
    out: Option<BufWriter<File>>,
    values: bool,
    last_flush: Option<Instant>,
}

impl Callback for Recorder {
    const NAME: &'static str = "recorder";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = ALL_EVENTS;

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["file", "values"])?;
        self.values = config.parse("values")?.unwrap_or(false);
        let name = config.get("file").unwrap_or("events.jsonl");
        let file = File::options()
            .create(true)
            .append(true)
            .open(name)
            .map_err(|e| format!("opening {name}: {e}"))?;
        self.out = Some(BufWriter::new(file));
        Ok(())
    }

    fn finish(&mut self, outcome: &RunOutcome) {
        if let Some(out) = self.out.as_mut() {
            let _ = out.flush();
        }
        let text = match outcome {
            RunOutcome::Completed => "completed\n".to_string(),
            RunOutcome::Aborted(why) => format!("aborted: {why}\n"),
        };
        let _ = std::fs::write("outcome.txt", text);
    }

    fn on_event(&mut self, cx: &mut Context, payload: &Logs) {
        let Some(out) = self.out.as_mut() else { return };
        let (s, c) = (cx.state, &cx.control);
        // Written by hand rather than through a JSON map: this runs on every event.
        let _ = write!(
            out,
            "{{\"event\":\"{}\",\"global_step\":{},\"epoch\":{},\"max_steps\":{},\"control\":{{\"should_training_stop\":{},\"should_epoch_stop\":{},\"should_save\":{},\"should_evaluate\":{},\"should_log\":{}}}",
            hf_name(cx.event),
            s.global_step,
            Number(s.epoch),
            s.max_steps,
            c.should_training_stop,
            c.should_epoch_stop,
            c.should_save,
            c.should_evaluate,
            c.should_log,
        );
        let keys_field = match cx.event {
            Event::Log => Some("log_keys"),
            Event::Evaluate | Event::Predict => Some("metric_keys"),
            _ => None,
        };
        if let Some(field) = keys_field {
            let mut keys: Vec<&str> = payload.keys().collect();
            keys.sort_unstable();
            let _ = write!(
                out,
                ",\"{field}\":{}",
                serde_json::to_string(&keys).unwrap_or_default()
            );
            if self.values {
                let values: serde_json::Map<String, serde_json::Value> = payload
                    .iter()
                    .map(|(k, v)| (k.to_string(), json_value(v)))
                    .collect();
                let name = if field == "log_keys" {
                    "logs"
                } else {
                    "metrics"
                };
                let _ = write!(out, ",\"{name}\":{}", serde_json::Value::Object(values));
            }
        }
        let _ = writeln!(out, "}}");
        // Flush at the points a reader may look and at least every
        // FLUSH_EVERY (a run killed outright loses no more), and in `finish`.
        let due = self.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY);
        if due
            || matches!(
                cx.event,
                Event::EpochEnd | Event::Evaluate | Event::Save | Event::TrainEnd
            )
        {
            let _ = out.flush();
            self.last_flush = Some(Instant::now());
        }
    }
}

/// A log value as JSON (non-finite floats as null).
fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Int(i) => (*i).into(),
        Value::Text(s) => s.clone().into(),
        Value::Flag(b) => (*b).into(),
    }
}

/// A float as a JSON number (`null` when not finite).
struct Number(f64);

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_finite() {
            write!(f, "{:?}", self.0)
        } else {
            f.write_str("null")
        }
    }
}

export_plugin!(Recorder);
