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

/// Longest time events stay in the write buffer (but see [`MAX_STRIDE`]).
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// The write buffer: a host write (a call out of the sandbox and a
/// `pwritev`) every ~300 lines instead of every ~40 of the default 8 KiB.
const BUFFER: usize = 64 * 1024;
/// Most events between two reads of the clock. Reading it is a call out of
/// the sandbox, about a tenth of the rest of an event; events that come
/// quickly are checked every few, so a line waits at most `FLUSH_EVERY`
/// or, after a quick run of events, `MAX_STRIDE - 1` more events.
const MAX_STRIDE: u32 = 8;
/// Reads of the clock this close together let the next come later.
const QUICK: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Recorder {
    out: Option<BufWriter<File>>,
    values: bool,
    flush_clock: FlushClock,
    /// The line being written, kept to reuse its allocation.
    line: String,
}

/// When the write buffer is due to be flushed: [`FLUSH_EVERY`] after the
/// last flush, read from the clock at every event while events come slowly
/// and at every `stride`-th event while they come quickly.
#[derive(Default)]
struct FlushClock {
    last_flush: Option<Instant>,
    last_read: Option<Instant>,
    /// Events between two reads of the clock (0 and 1: every event).
    stride: u32,
    /// Events since the clock was last read.
    unread: u32,
}

impl FlushClock {
    /// Whether the buffer is due, at an event.
    fn due(&mut self) -> bool {
        self.unread += 1;
        if self.unread < self.stride {
            return false;
        }
        self.unread = 0;
        let now = Instant::now();
        let quick = self.last_read.is_some_and(|t| now - t < QUICK);
        self.stride = if quick {
            (self.stride.max(1) * 2).min(MAX_STRIDE)
        } else {
            1
        };
        self.last_read = Some(now);
        self.last_flush.is_none_or(|t| now - t >= FLUSH_EVERY)
    }

    /// The buffer was flushed, counted from the last read of the clock (at
    /// most a few quick events ago): a flush is never put off by it.
    fn flushed(&mut self) {
        self.last_flush = self.last_read;
    }
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
        self.out = Some(BufWriter::with_capacity(BUFFER, file));
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
        // Put together by hand rather than through a JSON map or one
        // `write!`: this runs on every event, and each formatted argument
        // costs more than the rest of the call.
        let line = &mut self.line;
        line.clear();
        line.push_str("{\"event\":\"");
        line.push_str(hf_name(cx.event));
        line.push_str("\",\"global_step\":");
        push_u64(line, s.global_step);
        line.push_str(",\"epoch\":");
        push_number(line, s.epoch);
        line.push_str(",\"max_steps\":");
        push_u64(line, s.max_steps);
        for (name, flag) in [
            (
                ",\"control\":{\"should_training_stop\":",
                c.should_training_stop,
            ),
            (",\"should_epoch_stop\":", c.should_epoch_stop),
            (",\"should_save\":", c.should_save),
            (",\"should_evaluate\":", c.should_evaluate),
            (",\"should_log\":", c.should_log),
        ] {
            line.push_str(name);
            line.push_str(if flag { "true" } else { "false" });
        }
        line.push('}');
        let _ = out.write_all(line.as_bytes());
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
        let _ = out.write_all(b"}\n");
        // Flush at the points a reader may look and at least every
        // FLUSH_EVERY (a run killed outright loses no more), and in `finish`.
        let at_a_look = matches!(
            cx.event,
            Event::EpochEnd | Event::Evaluate | Event::Save | Event::TrainEnd
        );
        let due = self.flush_clock.due();
        if due || at_a_look {
            let _ = out.flush();
            self.flush_clock.flushed();
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

/// Appends `v` in decimal, as `{}` writes it.
fn push_u64(line: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // ASCII digits only.
    line.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Appends a float as a JSON number, as `{:?}` writes it (`null` when not
/// finite).
fn push_number(line: &mut String, v: f64) {
    use std::fmt::Write as _;
    if !v.is_finite() {
        line.push_str("null");
    } else if v == v.trunc() && v.abs() < 1e15 {
        // A whole number: `{:?}` writes it with `.0` (the fractional epoch
        // of a step that ends an epoch, 0.0 before the first).
        push_u64_signed(line, v);
        line.push_str(".0");
    } else {
        let _ = write!(line, "{v:?}");
    }
}

/// Appends a whole float below 1e15 in magnitude, sign and digits.
fn push_u64_signed(line: &mut String, v: f64) {
    if v.is_sign_negative() {
        line.push('-');
    }
    push_u64(line, v.abs() as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `due` once; whether it read the clock.
    fn read_clock(c: &mut FlushClock) -> bool {
        let before = c.last_read;
        c.due();
        c.last_read != before
    }

    #[test]
    fn quick_events_read_the_clock_every_few_and_a_slow_one_every_time() {
        let mut c = FlushClock::default();
        // The first event reads the clock and is due (nothing flushed yet).
        assert!(c.due());
        c.flushed();
        let reads = (0..800).filter(|_| read_clock(&mut c)).count();
        assert!(
            reads < 400,
            "{reads} reads of the clock in 800 quick events"
        );
        assert!(c.stride <= MAX_STRIDE);
        // After a slow gap, the next read sets the stride back to 1, so
        // that every event reads the clock while they stay slow.
        std::thread::sleep(QUICK * 2);
        let until_read = (1..=MAX_STRIDE).find(|_| read_clock(&mut c));
        assert!(until_read.is_some(), "no read within {MAX_STRIDE} events");
        assert_eq!(c.stride, 1);
        for _ in 0..3 {
            std::thread::sleep(QUICK * 2);
            assert!(read_clock(&mut c));
        }
        // Due FLUSH_EVERY after the last flush, not before.
        c.flushed();
        std::thread::sleep(QUICK * 2);
        assert!(!c.due());
        std::thread::sleep(FLUSH_EVERY);
        assert!(c.due());
    }

    #[test]
    fn numbers_are_written_as_rust_formats_them() {
        for v in [0u64, 7, 10, 999, 1 << 40, u64::MAX] {
            let mut line = String::new();
            push_u64(&mut line, v);
            assert_eq!(line, v.to_string());
        }
        for v in [
            0.0,
            -0.0,
            1.0,
            2.0,
            -3.0,
            0.5,
            0.125,
            1.0 / 3.0,
            1e15,
            1e16,
            123456789.0,
            1e-7,
            2.34375,
        ] {
            let mut line = String::new();
            push_number(&mut line, v);
            assert_eq!(line, format!("{v:?}"), "{v}");
        }
        let mut line = String::new();
        push_number(&mut line, f64::NAN);
        assert_eq!(line, "null");
    }
}

export_plugin!(Recorder);
