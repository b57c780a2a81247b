//! The one path into a plugin: every export (instantiation, `describe`,
//! `configure`, `on-event`, `save-state`, `load-state`, `finish`) is called
//! through [`call`], which arms the deadline, times the call into the
//! plugin's [`CallReport`] and classifies a failure as a [`PluginFault`]
//! (as Zed's `WasmExtension::call` does for its extensions).

use super::fault::PluginFault;
use super::host::PluginHost;
use super::limits::ticks;
use super::report::{CallReport, Export};
use std::time::{Duration, Instant};
use wasmtime::Store;

/// Calls `f` on `store` under `deadline`, counted as a call through `export`.
pub(super) fn call<T>(
    store: &mut Store<PluginHost>,
    report: &mut CallReport,
    export: Export,
    deadline: Duration,
    f: impl FnOnce(&mut Store<PluginHost>) -> wasmtime::Result<T>,
) -> Result<T, PluginFault> {
    // One clock read starts both the deadline and the call's timing.
    let started = Instant::now();
    arm(store, deadline, started);
    store.data().stderr.begin_call();
    let result = f(store);
    report.add(export, started.elapsed());
    result.map_err(|e| {
        PluginFault::classify(&e, deadline).quoting(|| store.data().stderr.recent_lines())
    })
}

/// Arms a store for a call of at most `d` from `now`: the epoch deadline
/// for the guest's own code, and the instant at which every wait in a host
/// call (`wait.rs`) and every HTTP request ends (epochs do not interrupt a
/// plugin blocked in a host call).
fn arm(store: &mut Store<PluginHost>, d: Duration, now: Instant) {
    store.set_epoch_deadline(ticks(d));
    store.data_mut().call_deadline = Some(now + d);
}
