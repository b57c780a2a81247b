//! One loaded plugin: its store and instance, the calls into it, and what
//! happens when it misbehaves (its fault policy).
//!
//! Every call goes through [`call`](super::call::call), so each export is
//! timed and its failure classified the same way. A trapped instance is
//! dead (wasmtime refuses to re-enter it): under `on_error = restart` the
//! plugin is re-instantiated from its `InstancePre`, configured again and
//! given its last saved state, at most [`MAX_RESTARTS`] times; then it is
//! disabled. Under `disable` it is disabled at once; under `abort` the run
//! stops with the fault.

use super::bindings::{entries, wit, Bindings, BindingsPre};
use super::call::call;
use super::describe::PluginInfo;
use super::fault::{OnError, PluginFault};
use super::host::PluginHost;
use super::output::clean_line;
use super::report::{CallReport, Export};
use super::PluginSettings;
use crate::event::Event;
use crate::pyjson::{json_dumps_len, Json};
use crate::state::{Logs, TrainerControl, TrainerState};
use anyhow::{anyhow, bail, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::Store;

/// Restarts allowed under `on_error = restart` before the plugin is disabled.
pub const MAX_RESTARTS: u32 = 3;

struct Live {
    store: Store<PluginHost>,
    bindings: Bindings,
}

/// Why a fresh instance could not be started.
enum StartFailure {
    /// Its store could not be made (a granted directory is gone, …).
    Store(anyhow::Error),
    /// Instantiating it faulted (its start function, or a cap it outgrew).
    Instantiate(PluginFault),
    /// A call faulted.
    Fault(Export, PluginFault),
    /// `configure` refused the configuration.
    ConfigRejected(String),
    /// `load-state` refused the saved state.
    StateRejected(String),
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFailure::Store(e) => write!(f, "{e:#}"),
            StartFailure::Instantiate(fault) => write!(f, "instantiation failed: {fault}"),
            StartFailure::Fault(export, fault) => write!(f, "{} {fault}", export.wit_name()),
            StartFailure::ConfigRejected(msg) => write!(f, "configuration rejected: {msg}"),
            StartFailure::StateRejected(msg) => write!(f, "rejected its saved state: {msg}"),
        }
    }
}

/// An event's state and payload as plugins receive them. Made once per
/// event and shared by every plugin it reaches; nothing in it grows with
/// the run (the log history is read through `views`, not sent).
pub struct EventRecords {
    state: wit::TrainerState,
    payload: Vec<wit::Entry>,
}

impl EventRecords {
    /// `state` and `payload` in the contract's types.
    pub fn new(state: &TrainerState, payload: &Logs) -> Self {
        EventRecords {
            state: wit::TrainerState::from(state),
            payload: entries(payload),
        }
    }
}

/// A plugin, ready to receive events (`callbacks` adapts it to `Callback`).
pub struct WasmPlugin {
    info: PluginInfo,
    path: PathBuf,
    pre: BindingsPre<PluginHost>,
    settings: PluginSettings,
    args: wit::TrainingArgs,
    make_store: Box<dyn Fn() -> Result<Store<PluginHost>> + Send>,
    live: Option<Live>,
    /// Calls and faults so far; its label is the name in messages
    /// (`recorder`, or `recorder#2` for a second instance).
    report: CallReport,
    last_state: Option<String>,
}

impl WasmPlugin {
    /// Instantiates and configures a plugin. `make_store` builds a fresh
    /// store with the plugin's grants (called again on restart); `report`
    /// holds what loading it cost so far (its `describe`).
    pub(super) fn start(
        info: PluginInfo,
        path: PathBuf,
        pre: BindingsPre<PluginHost>,
        settings: PluginSettings,
        args: wit::TrainingArgs,
        make_store: Box<dyn Fn() -> Result<Store<PluginHost>> + Send>,
        report: CallReport,
    ) -> Result<WasmPlugin> {
        let mut plugin = WasmPlugin {
            info,
            path,
            pre,
            settings,
            args,
            make_store,
            live: None,
            report,
            last_state: None,
        };
        let live = plugin
            .instantiate()
            .map_err(|failure| anyhow!("{}: {failure}", plugin.report.label))?;
        plugin.live = Some(live);
        Ok(plugin)
    }

    /// What the plugin said of itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Calls, times and faults so far.
    pub fn report(&self) -> &CallReport {
        &self.report
    }

    /// Replaces the instance with a fresh one from the `InstancePre`,
    /// configured and given its last saved state (what a restart after a
    /// fault does; public to measure it).
    pub fn restart(&mut self) -> Result<()> {
        let live = self
            .instantiate()
            .map_err(|failure| anyhow!("{}: {failure}", self.report.label))?;
        self.live = Some(live);
        Ok(())
    }

    /// A fresh instance, configured, with the last saved state restored.
    fn instantiate(&mut self) -> Result<Live, StartFailure> {
        let mut store = (self.make_store)().map_err(StartFailure::Store)?;
        let init = self.settings.limits.init_deadline;
        let report = &mut self.report;
        let fault = |export| move |f| StartFailure::Fault(export, f);
        // Instantiation is timed with the `configure` that follows it.
        let bindings = call(&mut store, report, Export::Configure, init, |s| {
            self.pre.instantiate(s)
        })
        .map_err(StartFailure::Instantiate)?;
        call(&mut store, report, Export::Configure, init, |s| {
            bindings.configure(s, &self.args, &self.settings.config)
        })
        .map_err(fault(Export::Configure))?
        .map_err(|msg| StartFailure::ConfigRejected(clean_line(&msg)))?;
        if let Some(state) = &self.last_state {
            call(&mut store, report, Export::LoadState, init, |s| {
                bindings.load_state(s, state)
            })
            .map_err(fault(Export::LoadState))?
            .map_err(|msg| StartFailure::StateRejected(clean_line(&msg)))?;
        }
        Ok(Live { store, bindings })
    }

    /// Calls the live instance through `export`, under `deadline`; `None`
    /// when the plugin is disabled.
    fn call<T>(
        &mut self,
        export: Export,
        deadline: Duration,
        f: impl FnOnce(&Bindings, &mut Store<PluginHost>) -> wasmtime::Result<T>,
    ) -> Option<Result<T, PluginFault>> {
        let live = self.live.as_mut()?;
        let bindings = &live.bindings;
        Some(call(
            &mut live.store,
            &mut self.report,
            export,
            deadline,
            |s| f(bindings, s),
        ))
    }

    /// `plugin <label> <version> (<path>)`: how messages name the plugin.
    fn head(&self) -> String {
        format!(
            "plugin {} {} ({})",
            self.report.label,
            self.info.version,
            self.path.display()
        )
    }

    /// Records the fault `cause` of `what` in the report, cleaned (its text
    /// may hold what the plugin wrote), and returns the cleaned cause.
    fn record_fault(&mut self, what: &str, cause: &str) -> String {
        let cause = clean_line(cause);
        self.report.faults.push(format!("{what}: {cause}"));
        cause
    }

    /// Applies the fault policy after a failed call of `what` (an event's
    /// HF name or an export's WIT name).
    fn fault(&mut self, what: &str, fault: PluginFault) -> Result<()> {
        // Name the setting that would help, where there is one: event calls
        // run under `deadline_ms`; describe, configure and load-state under
        // a fixed init deadline.
        let hint = match fault {
            PluginFault::Deadline(d) if d == self.settings.limits.deadline => "deadline_ms",
            PluginFault::Memory(_) => "memory_mb",
            PluginFault::Files(e) => e.key().unwrap_or_default(),
            _ => "",
        };
        let cause = if hint.is_empty() {
            fault.to_string()
        } else {
            format!(
                "{fault} (if it needs more, set plugins.{}.{hint})",
                self.info.name
            )
        };
        let record = format!("{what}: {}", self.record_fault(what, &cause));
        self.live = None;
        let head = self.head();
        match self.settings.on_error {
            OnError::Abort => bail!("{head}: {record}; aborting the run (on_error = abort)"),
            OnError::Disable => {
                self.report.disabled = true;
                crate::ui::warn(&format!("{head}: {record}; disabled (on_error = disable)"));
            }
            OnError::Restart if self.report.restarts >= MAX_RESTARTS => {
                self.report.disabled = true;
                crate::ui::warn(&format!(
                    "{head}: {record}; disabled after {MAX_RESTARTS} restarts"
                ));
            }
            OnError::Restart => {
                self.report.restarts += 1;
                crate::ui::warn(&format!(
                    "{head}: {record}; restarting ({}/{MAX_RESTARTS})",
                    self.report.restarts
                ));
                match self.instantiate() {
                    Ok(live) => self.live = Some(live),
                    Err(failure) => {
                        self.report.disabled = true;
                        let failure = self.record_fault("restart", &failure.to_string());
                        crate::ui::warn(&format!("{head}: restart failed: {failure}; disabled"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Delivers one event; returns the control the plugin hands back, or
    /// `control` unchanged when it is disabled or faulted. An `Err` only
    /// under `on_error = abort`.
    pub fn handle_event(
        &mut self,
        event: Event,
        state: &TrainerState,
        control: TrainerControl,
        payload: &Logs,
    ) -> Result<TrainerControl> {
        if self.live.is_none() {
            return Ok(control);
        }
        self.handle_records(event, &EventRecords::new(state, payload), control)
    }

    /// [`handle_event`](Self::handle_event) with the state and payload
    /// already in the contract's types (made once for all the plugins an
    /// event reaches).
    pub fn handle_records(
        &mut self,
        event: Event,
        records: &EventRecords,
        control: TrainerControl,
    ) -> Result<TrainerControl> {
        if self.live.is_none() {
            return Ok(control);
        }
        let deadline = self.settings.limits.deadline;
        let result = self.call(Export::OnEvent, deadline, |b, s| {
            b.on_event(
                s,
                event.into(),
                &records.state,
                control.into(),
                &records.payload,
            )
        });
        match result {
            None => Ok(control),
            Some(Ok(returned)) => Ok(returned.into()),
            Some(Err(fault)) => {
                self.fault(event.hf_name(), fault)?;
                Ok(control)
            }
        }
    }

    /// The last state known to be good, for when a fresh one cannot be had.
    fn last_good_state(&self) -> Option<Json> {
        self.last_state.as_deref().and_then(|s| Json::parse(s).ok())
    }

    /// The plugin's state for a checkpoint (stateful plugins only), checked
    /// to be HF's `ExportableState` shape and within the size limit.
    pub fn save_state(&mut self) -> Result<Option<Json>> {
        if !self.info.stateful {
            return Ok(None);
        }
        let deadline = self.settings.limits.deadline;
        let result = self.call(Export::SaveState, deadline, |b, s| b.save_state(s));
        let text = match result {
            None => return Ok(self.last_good_state()),
            Some(Ok(text)) => text,
            Some(Err(fault)) => {
                self.fault(Export::SaveState.wit_name(), fault)?;
                return Ok(self.last_good_state());
            }
        };
        match check_state(&text) {
            Ok(json) => {
                self.last_state = Some(text);
                Ok(Some(json))
            }
            Err(why) => {
                self.fault(Export::SaveState.wit_name(), PluginFault::BadOutput(why))?;
                Ok(self.last_good_state())
            }
        }
    }

    /// Restores a state from a checkpoint. A state the plugin rejects is a
    /// fault like any other: the policy applies, and a restart starts it
    /// afresh, without that state. An `Err` only under `on_error = abort`.
    pub fn load_state(&mut self, state: &Json) -> Result<()> {
        let text = state.to_compact();
        // Kept before the call: if the plugin faults while loading, its
        // restart is given this state again.
        self.last_state = Some(text.clone());
        let init = self.settings.limits.init_deadline;
        let result = self.call(Export::LoadState, init, |b, s| b.load_state(s, &text));
        match result {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(msg))) => {
                self.last_state = None;
                let why = format!("rejected its saved state: {}", clean_line(&msg));
                self.fault(Export::LoadState.wit_name(), PluginFault::BadOutput(why))
            }
            Some(Err(fault)) => self.fault(Export::LoadState.wit_name(), fault),
        }
    }

    /// Tells the plugin the run is over, and how. A fault here is reported,
    /// and no policy applies: there is nothing left to restart for.
    pub fn finish(&mut self, outcome: &Result<(), String>) {
        let outcome = match outcome {
            Ok(()) => wit::RunOutcome::Completed,
            Err(e) => wit::RunOutcome::Aborted(e.clone()),
        };
        let init = self.settings.limits.init_deadline;
        let result = self.call(Export::Finish, init, |b, s| b.finish(s, &outcome));
        if let Some(Err(fault)) = result {
            let fault = self.record_fault("finish", &fault.to_string());
            crate::ui::warn(&format!("{}: finish {fault}", self.head()));
        }
    }
}

/// Largest state a plugin may keep in a checkpoint.
const MAX_STATE_BYTES: usize = 16 << 20;

/// How deep `trainer_state.json` writes a plugin's state at most
/// (`stateful_callbacks` → its name → the list of its instances → the state).
const STATE_LEVEL: usize = 3;

/// Deepest nesting of a plugin's state.
const MAX_STATE_DEPTH: usize = crate::pyjson::MAX_DEPTH - 8;

/// Checks a `save-state` result: JSON in HF's `ExportableState` shape,
/// `{"args": {…}, "attributes": {…}}`, of reasonable size.
fn check_state(text: &str) -> Result<Json, String> {
    if text.len() > MAX_STATE_BYTES {
        return Err(format!(
            "returned a state of {} bytes; the limit is {MAX_STATE_BYTES}",
            text.len()
        ));
    }
    let json = Json::parse(text).map_err(|e| format!("returned a state that is not JSON: {e}"))?;
    // Room for the levels `trainer_state.json` puts around it, which must
    // stay readable on resume.
    if json.depth() > MAX_STATE_DEPTH {
        return Err(format!(
            "returned a state nested deeper than {MAX_STATE_DEPTH} levels"
        ));
    }
    // The limit holds for what is written: indented, a small deeply nested
    // state can take a thousand times its size on disk, in every checkpoint.
    if json_dumps_len(&json, Some(2), STATE_LEVEL, MAX_STATE_BYTES).is_none() {
        return Err(format!(
            "returned a state that takes more than {MAX_STATE_BYTES} bytes as trainer_state.json writes it (indented); the limit is {MAX_STATE_BYTES}"
        ));
    }
    let shaped = json.as_object().is_some_and(|o| {
        o.get("args").is_some_and(|a| a.as_object().is_some())
            && o.get("attributes").is_some_and(|a| a.as_object().is_some())
    });
    if !shaped {
        return Err("returned a state not in HF's ExportableState shape {\"args\": {…}, \"attributes\": {…}}".into());
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!(
            "{{\"args\": {{}}, \"attributes\": {{\"x\": {}{}}}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    }

    #[test]
    fn states_must_be_shaped_and_shallow_enough_to_resume() {
        assert!(check_state(&nested(MAX_STATE_DEPTH - 2)).is_ok());
        let err = check_state(&nested(MAX_STATE_DEPTH)).unwrap_err();
        assert!(err.contains("nested deeper than 120 levels"), "{err}");
        let err = check_state(&nested(100_000)).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        assert!(check_state("{\"args\": []}").is_err());
    }

    #[test]
    fn the_state_limit_holds_for_the_indented_bytes_written() {
        // 1,500 lists nested 100 deep: 300 KB as returned, over 30 MB once
        // indented in trainer_state.json.
        let leaf = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let wide = vec![leaf.as_str(); 1_500].join(", ");
        let text = format!("{{\"args\": {{}}, \"attributes\": {{\"x\": [{wide}]}}}}");
        assert!(text.len() < MAX_STATE_BYTES / 8);
        let err = check_state(&text).unwrap_err();
        assert!(err.contains("as trainer_state.json writes it"), "{err}");
        // A flat state of about the same size is fine.
        let flat = format!(
            "{{\"args\": {{}}, \"attributes\": {{\"x\": \"{}\"}}}}",
            "y".repeat(1 << 20)
        );
        assert!(check_state(&flat).is_ok());
    }
}
