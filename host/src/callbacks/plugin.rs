//! A sandboxed plugin as a [`Callback`]: the handler calls it like any
//! other callback; the sandbox applies its limits and fault policy.

use super::{Callback, EventContext};
use crate::event::EventSet;
use crate::pyjson::Json;
use crate::sandbox::{CallReport, WasmPlugin};
use crate::state::TrainerControl;
use anyhow::Result;

impl Callback for WasmPlugin {
    fn name(&self) -> &str {
        &self.info().name
    }

    fn events(&self) -> EventSet {
        self.info().events
    }

    fn on_event(
        &mut self,
        cx: &EventContext<'_>,
        control: TrainerControl,
    ) -> Result<TrainerControl> {
        WasmPlugin::handle_records(self, cx.event, cx.records(), control)
    }

    fn stateful(&self) -> bool {
        self.info().stateful
    }

    fn save_state(&mut self) -> Result<Option<Json>> {
        WasmPlugin::save_state(self)
    }

    fn load_state(&mut self, state: &Json) -> Result<()> {
        WasmPlugin::load_state(self, state)
    }

    fn finish(&mut self, outcome: &Result<(), String>) {
        WasmPlugin::finish(self, outcome)
    }

    fn report(&self) -> Option<CallReport> {
        Some(WasmPlugin::report(self).clone())
    }
}
