//! `trainbox replay TRACE.jsonl PLUGIN.wasm [FLAGS]`: feeds a recorded event
//! trace (the recorder's format) to a plugin, offline, and prints the
//! control flags it returns, one JSON line per event it subscribes to, so
//! that a plugin can be tested without training.
//!
//! The trace's `event`, `global_step`, `epoch`, `max_steps` and `control`
//! make the state and control of each call. Log and metric values come from
//! the trace's `logs`/`metrics` objects when it has them (record with
//! `--plugin_config recorder.values=true`); otherwise each key of
//! `log_keys`/`metric_keys` carries NaN. As the trainer would, replay tracks
//! `best_metric` and `best_global_step` from the evaluations (by
//! `--metric_for_best_model`) and fills the log-history view from the logs.
//! FLAGS are `trainbox train`'s: the training arguments and `--plugin_config`
//! reach the plugin's `configure`.

use super::config::RunConfig;
use crate::args::{TrainerStateExt, TrainingArguments};
use crate::callbacks::{Callback, EventContext};
use crate::event::Event;
use crate::pyjson::Json;
use crate::sandbox::{default_cache_dir, Sandbox, WasmPlugin};
use crate::state::{Logs, TrainerControl, TrainerState, Value};
use crate::view::RunView;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// One recorded event.
struct Recorded {
    event: Event,
    state: TrainerState,
    control: TrainerControl,
    payload: Logs,
}

fn parse_line(line: &str) -> Result<Recorded, String> {
    let j = Json::parse(line).map_err(|e| format!("not JSON: {e}"))?;
    let j = j.as_object().ok_or("not a JSON object")?;
    let name = j
        .get("event")
        .and_then(Json::as_str)
        .ok_or("no \"event\"")?;
    let event = Event::from_name(name).ok_or_else(|| format!("unknown event {name:?}"))?;
    let step = |k: &str| j.get(k).and_then(Json::as_i64).filter(|n| *n >= 0);
    let state = TrainerState {
        global_step: step("global_step").ok_or("no \"global_step\"")? as u64,
        epoch: j.get("epoch").and_then(Json::as_f64).unwrap_or(0.0),
        max_steps: step("max_steps").unwrap_or(0) as u64,
        ..Default::default()
    };
    let mut payload = Logs::new();
    let values = j
        .get("logs")
        .or_else(|| j.get("metrics"))
        .and_then(Json::as_object);
    if let Some(values) = values {
        for (k, v) in values {
            payload.insert(
                k.clone(),
                Value::from_json(v).ok_or_else(|| format!("value of {k:?} is not a scalar"))?,
            );
        }
    } else if let Some(keys) = j
        .get("log_keys")
        .or_else(|| j.get("metric_keys"))
        .and_then(Json::as_array)
    {
        for k in keys.iter().filter_map(Json::as_str) {
            payload.insert(k, Value::Float(f64::NAN));
        }
    }
    let control = j
        .get("control")
        .and_then(Json::as_object)
        .map(TrainerControl::from_flags)
        .unwrap_or_default();
    Ok(Recorded {
        event,
        state,
        control,
        payload,
    })
}

fn read_trace(path: &Path) -> Result<Vec<Recorded>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading trace {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| parse_line(l).map_err(|e| anyhow!("{}:{}: {e}", path.display(), n + 1)))
        .collect()
}

fn control_json(c: &TrainerControl) -> serde_json::Value {
    c.named()
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::Bool(*v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Runs `trainbox replay`; exit code 1 when the plugin faulted.
pub fn run(argv: &[String]) -> Result<i32> {
    let [trace, plugin, flags @ ..] = argv else {
        bail!(
            "usage: trainbox replay TRACE.jsonl PLUGIN.wasm [--plugin_config NAME.KEY=VALUE ...]"
        );
    };
    let mut cfg: RunConfig = super::flags::parse_train(flags)?;
    cfg.args
        .finish()
        .map_err(|e| anyhow!("invalid training arguments: {e}"))?;
    let events = read_trace(Path::new(trace))?;
    let view = RunView::default();
    let sandbox = Sandbox::new(view.clone(), default_cache_dir())?;
    let compiled = sandbox.compile(Path::new(plugin))?;
    let name = compiled.info.name.clone();
    // Settings bound to their file, as in `train`.
    let setup = super::train::plugin_setup(&cfg);
    let mut plugin = crate::session::start_one(&sandbox, compiled, &setup, &cfg.args)?;
    let fed = feed(&events, &mut plugin, &cfg.args, &view);
    // As at the end of a training run: the plugin hears how it ended.
    plugin.finish(&fed.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
    let delivered = fed?;
    let report = plugin.report().clone();
    crate::ui::eprintln(&format!(
        "replayed {delivered} of {} events into {name}",
        events.len()
    ));
    for line in crate::sandbox::CallReport::table(std::slice::from_ref(&report)) {
        crate::ui::eprintln(&line);
    }
    Ok(if report.faults.is_empty() { 0 } else { 1 })
}

/// Feeds the recorded events to the plugin, tracking the best metric and
/// the log history as the trainer would; returns the events delivered.
fn feed(
    events: &[Recorded],
    plugin: &mut WasmPlugin,
    args: &TrainingArguments,
    view: &RunView,
) -> Result<usize> {
    let events_wanted = plugin.events();
    let mut delivered = 0;
    let (mut best_metric, mut best_global_step) = (None, None);
    for r in events {
        let mut state = r.state.clone();
        (state.best_metric, state.best_global_step) = (best_metric, best_global_step);
        if r.event == Event::Log {
            let mut entry = r.payload.clone();
            entry.insert("step", Value::Int(state.global_step as i64));
            view.lock().log_history.push(&entry);
        }
        if events_wanted.contains(r.event) {
            let cx = EventContext::new(r.event, args, &state, &r.payload);
            let mut control = r.control;
            control.merge(plugin.on_event(&cx, r.control)?);
            delivered += 1;
            let line = serde_json::json!({
                "event": r.event.hf_name(),
                "global_step": state.global_step,
                "control": control_json(&control),
            });
            crate::ui::println(&line.to_string());
        }
        // The trainer's `_determine_best_metric`, after `on_evaluate`.
        if r.event == Event::Evaluate {
            state.determine_best_metric(args, &r.payload)?;
            (best_metric, best_global_step) = (state.best_metric, state.best_global_step);
        }
    }
    Ok(delivered)
}
