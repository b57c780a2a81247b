//! One loaded plugin: its store and instance, the calls into it, and what
//! happens when it misbehaves (its fault policy).
//!
//! A trapped instance is dead (wasmtime refuses to re-enter it): under
//! `on_error = restart` the plugin is re-instantiated from its `InstancePre`,
//! configured again and given its last saved state, at most
//! [`MAX_RESTARTS`] times; then it is disabled. Under `disable` it is
//! disabled at once; under `abort` the run stops with the fault.

use super::bindings::{entries, wit, CallbackPre, CallbackWorld};
use super::host::PluginHost;
use super::limits::{arm, Limiter, MemoryExceeded, PluginLimits};
use super::output::clean_line;
use super::{PluginInfo, PluginSettings};
use crate::callbacks::{CallReport, Callback, EventContext, EventSet};
use crate::pyjson::Json;
use crate::state::TrainerControl;
use anyhow::{anyhow, bail, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap};

/// Restarts allowed under `on_error = restart` before the plugin is disabled.
pub const MAX_RESTARTS: u32 = 3;

/// What to do when a plugin faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnError {
    /// Re-instantiate it with its last saved state (at most 3 times), then disable it.
    #[default]
    Restart,
    /// Stop calling it; training goes on.
    Disable,
    /// Stop the run.
    Abort,
}

impl std::str::FromStr for OnError {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "restart" => Ok(OnError::Restart),
            "disable" => Ok(OnError::Disable),
            "abort" => Ok(OnError::Abort),
            _ => Err(format!(
                "on_error must be restart, disable or abort, got {s:?}"
            )),
        }
    }
}

/// How a plugin call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginFault {
    /// The call ran past its deadline and was interrupted.
    Deadline(Duration),
    /// The plugin outgrew its memory cap.
    Memory(MemoryExceeded),
    /// The plugin called `exit`.
    Exit(i32),
    /// Any other trap: a panic, `unreachable`, an out-of-bounds access, a bad host call.
    Trap(String),
    /// The call returned, but what it returned is refused (a state too
    /// large or not in HF's shape).
    BadOutput(String),
}

impl PluginFault {
    /// Classifies a call error by type, never by message.
    pub fn classify(err: &wasmtime::Error, deadline: Duration) -> PluginFault {
        if let Some(m) = err.downcast_ref::<MemoryExceeded>() {
            return PluginFault::Memory(*m);
        }
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return PluginFault::Exit(exit.0);
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginFault::Deadline(deadline),
            Some(Trap::UnreachableCodeReached) => {
                PluginFault::Trap("wasm `unreachable` executed (a panic or abort)".into())
            }
            Some(trap) => PluginFault::Trap(trap.to_string()),
            // A host call that refused (a bad handle, too many handles, …).
            None => PluginFault::Trap(err.root_cause().to_string().replace('\n', " ")),
        }
    }
}

impl fmt::Display for PluginFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginFault::Deadline(d) => write!(f, "ran past its deadline of {} ms", d.as_millis()),
            PluginFault::Memory(m) => write!(f, "{m}"),
            PluginFault::Exit(code) => write!(f, "called exit({code})"),
            PluginFault::Trap(msg) => write!(f, "trapped: {msg}"),
            PluginFault::BadOutput(msg) => write!(f, "{msg}"),
        }
    }
}

struct Live {
    store: Store<PluginHost>,
    bindings: CallbackWorld,
}

/// A plugin, ready to receive events. Implements [`Callback`].
pub struct WasmPlugin {
    info: PluginInfo,
    /// The name in messages (`recorder`, or `recorder#2` for a second instance).
    label: String,
    path: PathBuf,
    pre: CallbackPre<PluginHost>,
    settings: PluginSettings,
    args: wit::TrainingArgs,
    make_store: Box<dyn Fn() -> Result<Store<PluginHost>> + Send>,
    live: Option<Live>,
    stats: CallReport,
    last_state: Option<String>,
}

impl WasmPlugin {
    /// Instantiates and configures a plugin. `make_store` builds a fresh
    /// store with the plugin's grants (called again on restart).
    pub(super) fn start(
        info: PluginInfo,
        label: String,
        path: PathBuf,
        pre: CallbackPre<PluginHost>,
        settings: PluginSettings,
        args: wit::TrainingArgs,
        make_store: Box<dyn Fn() -> Result<Store<PluginHost>> + Send>,
    ) -> Result<WasmPlugin> {
        let mut plugin = WasmPlugin {
            info,
            label,
            path,
            pre,
            settings,
            args,
            make_store,
            live: None,
            stats: CallReport::default(),
            last_state: None,
        };
        plugin.live = Some(plugin.instantiate()?);
        Ok(plugin)
    }

    /// What the plugin said of itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Call statistics so far.
    pub fn stats(&self) -> &CallReport {
        &self.stats
    }

    /// Replaces the instance with a fresh one from the `InstancePre`,
    /// configured and given its last saved state (what a restart after a
    /// fault does; public to measure it).
    pub fn restart(&mut self) -> Result<()> {
        self.live = Some(self.instantiate()?);
        Ok(())
    }

    /// A fresh instance, configured, with the last saved state restored.
    fn instantiate(&mut self) -> Result<Live> {
        let mut store = (self.make_store)()?;
        let init = self.settings.limits.init_deadline;
        arm(&mut store, init);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| anyhow!("{}: instantiation failed: {e:#}", self.label))?;
        arm(&mut store, init);
        let config: Vec<(String, String)> = self.settings.config.clone();
        bindings
            .trainbox_callback_plugin()
            .call_configure(&mut store, &self.args, &config)
            .map_err(|e| {
                anyhow!(
                    "{}: configure {}",
                    self.label,
                    PluginFault::classify(&e, self.settings.limits.init_deadline)
                )
            })?
            .map_err(|msg| {
                anyhow!(
                    "{}: configuration rejected: {}",
                    self.label,
                    clean_line(&msg)
                )
            })?;
        if let Some(state) = &self.last_state {
            arm(&mut store, init);
            bindings
                .trainbox_callback_plugin()
                .call_load_state(&mut store, state)
                .map_err(|e| {
                    anyhow!(
                        "{}: load-state {}",
                        self.label,
                        PluginFault::classify(&e, self.settings.limits.init_deadline)
                    )
                })?
                .map_err(|msg| {
                    anyhow!(
                        "{}: rejected its saved state: {}",
                        self.label,
                        clean_line(&msg)
                    )
                })?;
        }
        Ok(Live { store, bindings })
    }

    /// Applies the fault policy after a failed call.
    fn fault(&mut self, what: &str, fault: PluginFault) -> Result<()> {
        // Name the setting that would help, where there is one: event calls
        // run under `deadline_ms`; describe, configure and load-state under
        // a fixed init deadline.
        let hint = match fault {
            PluginFault::Deadline(d) if d == self.settings.limits.deadline => "deadline_ms",
            PluginFault::Memory(_) => "memory_mb",
            _ => "",
        };
        let record = if hint.is_empty() {
            format!("{what}: {fault}")
        } else {
            format!(
                "{what}: {fault} (if it needs more, set plugins.{}.{hint})",
                self.info.name
            )
        };
        self.stats.faults.push(record.clone());
        self.live = None;
        let head = format!(
            "plugin {} {} ({})",
            self.label,
            self.info.version,
            self.path.display()
        );
        match self.settings.on_error {
            OnError::Abort => bail!("{head}: {record}; aborting the run (on_error = abort)"),
            OnError::Disable => {
                self.stats.disabled = true;
                crate::ui::warn(&format!("{head}: {record}; disabled (on_error = disable)"));
            }
            OnError::Restart if self.stats.restarts >= MAX_RESTARTS => {
                self.stats.disabled = true;
                crate::ui::warn(&format!(
                    "{head}: {record}; disabled after {MAX_RESTARTS} restarts"
                ));
            }
            OnError::Restart => {
                self.stats.restarts += 1;
                crate::ui::warn(&format!(
                    "{head}: {record}; restarting ({}/{MAX_RESTARTS})",
                    self.stats.restarts
                ));
                match self.instantiate() {
                    Ok(live) => self.live = Some(live),
                    Err(e) => {
                        self.stats.disabled = true;
                        crate::ui::warn(&format!("{head}: restart failed: {e:#}; disabled"));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Callback for WasmPlugin {
    fn name(&self) -> &str {
        &self.info.name
    }

    fn events(&self) -> EventSet {
        self.info.events
    }

    fn on_event(
        &mut self,
        cx: &EventContext<'_>,
        control: TrainerControl,
    ) -> Result<TrainerControl> {
        let Some(live) = self.live.as_mut() else {
            return Ok(control);
        };
        let deadline = self.settings.limits.deadline;
        arm(&mut live.store, deadline);
        let state = wit::TrainerState::from(cx.state);
        let payload = entries(cx.payload);
        let started = Instant::now();
        let result = live.bindings.trainbox_callback_plugin().call_on_event(
            &mut live.store,
            cx.event.into(),
            &state,
            control.into(),
            &payload,
        );
        let took = started.elapsed();
        self.stats.calls += 1;
        self.stats.total += took;
        self.stats.max = self.stats.max.max(took);
        match result {
            Ok(returned) => Ok(returned.into()),
            Err(e) => {
                self.fault(cx.event.hf_name(), PluginFault::classify(&e, deadline))?;
                Ok(control)
            }
        }
    }

    fn stateful(&self) -> bool {
        self.info.stateful
    }

    fn save_state(&mut self) -> Result<Option<Json>> {
        if !self.info.stateful {
            return Ok(None);
        }
        let Some(live) = self.live.as_mut() else {
            return Ok(self.last_state.as_deref().and_then(|s| Json::parse(s).ok()));
        };
        arm(&mut live.store, self.settings.limits.deadline);
        let text = match live
            .bindings
            .trainbox_callback_plugin()
            .call_save_state(&mut live.store)
        {
            Ok(text) => text,
            Err(e) => {
                self.fault(
                    "save-state",
                    PluginFault::classify(&e, self.settings.limits.deadline),
                )?;
                return Ok(self.last_state.as_deref().and_then(|s| Json::parse(s).ok()));
            }
        };
        match check_state(&text) {
            Ok(json) => {
                self.last_state = Some(text);
                Ok(Some(json))
            }
            Err(why) => {
                self.fault("save-state", PluginFault::BadOutput(why))?;
                Ok(self.last_state.as_deref().and_then(|s| Json::parse(s).ok()))
            }
        }
    }

    fn load_state(&mut self, state: &Json) -> Result<()> {
        let text = state.to_compact();
        let Some(live) = self.live.as_mut() else {
            self.last_state = Some(text);
            return Ok(());
        };
        // Kept before the call: if the plugin faults while loading, its
        // restart is given this state again.
        self.last_state = Some(text.clone());
        arm(&mut live.store, self.settings.limits.init_deadline);
        match live
            .bindings
            .trainbox_callback_plugin()
            .call_load_state(&mut live.store, &text)
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => bail!(
                "plugin {} rejected its saved state: {}",
                self.label,
                clean_line(&msg)
            ),
            Err(e) => {
                self.fault(
                    "load-state",
                    PluginFault::classify(&e, self.settings.limits.init_deadline),
                )?;
                Ok(())
            }
        }
    }

    fn finish(&mut self, outcome: &Result<(), String>) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let outcome = match outcome {
            Ok(()) => wit::RunOutcome::Completed,
            Err(e) => wit::RunOutcome::Aborted(e.clone()),
        };
        arm(&mut live.store, self.settings.limits.init_deadline);
        if let Err(e) = live
            .bindings
            .trainbox_callback_plugin()
            .call_finish(&mut live.store, &outcome)
        {
            let fault = PluginFault::classify(&e, self.settings.limits.init_deadline);
            self.stats.faults.push(format!("finish: {fault}"));
            crate::ui::warn(&format!("plugin {}: finish {fault}", self.label));
        }
    }

    fn report(&self) -> Option<CallReport> {
        Some(CallReport {
            label: self.label.clone(),
            ..self.stats.clone()
        })
    }
}

/// Largest state a plugin may keep in a checkpoint.
pub const MAX_STATE_BYTES: usize = 16 << 20;

/// Checks a `save-state` result: JSON in HF's `ExportableState` shape,
/// `{"args": {…}, "attributes": {…}}`, of reasonable size.
/// Deepest nesting of a plugin's state.
const MAX_STATE_DEPTH: usize = crate::pyjson::MAX_DEPTH - 8;

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
    let shaped = json.as_object().is_some_and(|o| {
        o.get("args").is_some_and(|a| a.as_object().is_some())
            && o.get("attributes").is_some_and(|a| a.as_object().is_some())
    });
    if !shaped {
        return Err("returned a state not in HF's ExportableState shape {\"args\": {…}, \"attributes\": {…}}".into());
    }
    Ok(json)
}

/// A fresh limiter for a store.
pub(super) fn limiter(limits: &PluginLimits) -> Limiter {
    Limiter::new(limits.memory_bytes)
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
}
