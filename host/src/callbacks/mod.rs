//! Callbacks and the handler that calls them.
//!
//! A [`Callback`] is anything that handles events: the native
//! `DefaultFlowCallback` (see `flow`) and the wasm plugins of `sandbox` alike
//! (`plugin.rs` adapts a `WasmPlugin` to the trait). The
//! [`CallbackHandler`] owns them in list order, applies HF's control resets
//! before each event, skips callbacks not subscribed to it, and merges the
//! control each one returns. The read-only run (log history, parameters,
//! gradients) is `view::RunView`, which callbacks query on demand.

mod plugin;

use crate::args::TrainingArguments;
use crate::event::{Event, EventSet};
use crate::pyjson::Json;
use crate::sandbox::{CallReport, EventRecords};
use crate::state::{Logs, TrainerControl, TrainerState};
use anyhow::Result;

/// What a callback receives with an event. Everything here is read-only.
pub struct EventContext<'a> {
    pub event: Event,
    pub args: &'a TrainingArguments,
    pub state: &'a TrainerState,
    /// The entry of `on_log`, the metrics of `on_evaluate` and `on_predict`;
    /// empty for every other event.
    pub payload: &'a Logs,
    /// The state and payload as plugins receive them: made for the first
    /// plugin the event reaches, shared by the others.
    records: std::cell::OnceCell<EventRecords>,
}

impl<'a> EventContext<'a> {
    /// The context of one event.
    pub fn new(
        event: Event,
        args: &'a TrainingArguments,
        state: &'a TrainerState,
        payload: &'a Logs,
    ) -> Self {
        EventContext {
            event,
            args,
            state,
            payload,
            records: std::cell::OnceCell::new(),
        }
    }

    /// The state and payload in the plugins' types, made once per event.
    pub(crate) fn records(&self) -> &EventRecords {
        self.records
            .get_or_init(|| EventRecords::new(self.state, self.payload))
    }
}

/// A training callback, as HF's `TrainerCallback`.
///
/// Only the returned control is read back: a callback changes nothing else.
pub trait Callback {
    /// The name used in messages, reports and `stateful_callbacks`.
    fn name(&self) -> &str;

    /// The events to deliver; the handler never calls the callback for others.
    fn events(&self) -> EventSet {
        EventSet::ALL
    }

    /// Handles one event and returns the control flags. An `Err` aborts the
    /// run: callbacks that may fail without harm (plugins) handle their own
    /// faults and only return `Err` when their policy says abort.
    fn on_event(
        &mut self,
        cx: &EventContext<'_>,
        control: TrainerControl,
    ) -> Result<TrainerControl>;

    /// Whether the callback keeps state in checkpoints (HF's `ExportableState`).
    fn stateful(&self) -> bool {
        false
    }

    /// The state to store in checkpoints, as `{"args": …, "attributes": …}`
    /// (stateful callbacks only; `None` when it cannot be had).
    fn save_state(&mut self) -> Result<Option<Json>> {
        Ok(None)
    }

    /// Restores a state produced by `save_state`. An `Err` is a state the
    /// callback rejects; it stops the resume with the message.
    fn load_state(&mut self, _state: &Json) -> Result<()> {
        Ok(())
    }

    /// Called once when a training run is over: `Ok` when it completed
    /// (after `on_train_end`), `Err` with the error when it aborted.
    fn finish(&mut self, _outcome: &Result<(), String>) {}

    /// What the end-of-run report says of this callback, if anything.
    fn report(&self) -> Option<CallReport> {
        None
    }
}

/// The ordered list of callbacks, as HF's `CallbackHandler`.
#[derive(Default)]
pub struct CallbackHandler {
    callbacks: Vec<Box<dyn Callback>>,
    /// `events()` of each callback, read once.
    subscriptions: Vec<EventSet>,
    /// Callbacks already warned about clearing a stop.
    warned: Vec<bool>,
}

impl CallbackHandler {
    /// Appends a callback at the end of the list.
    pub fn add(&mut self, callback: Box<dyn Callback>) {
        self.subscriptions.push(callback.events());
        self.callbacks.push(callback);
        self.warned.push(false);
    }

    /// The callbacks' names, in list order.
    pub fn names(&self) -> Vec<String> {
        self.callbacks
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    }

    /// The callbacks, in list order.
    pub fn callbacks_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Callback>> {
        self.callbacks.iter_mut()
    }

    pub fn callbacks(&self) -> impl Iterator<Item = &Box<dyn Callback>> {
        self.callbacks.iter()
    }

    /// Tells every callback that the run is over, and how.
    pub fn finish(&mut self, outcome: &Result<(), String>) {
        for cb in &mut self.callbacks {
            cb.finish(outcome);
        }
    }

    /// Fires `event`: resets the flags HF resets for it, then passes the
    /// control through every subscribed callback in list order.
    pub fn call(
        &mut self,
        event: Event,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
        payload: &Logs,
    ) -> Result<()> {
        reset_for(event, control);
        let cx = EventContext::new(event, args, state, payload);
        for (i, cb) in self.callbacks.iter_mut().enumerate() {
            if !self.subscriptions[i].contains(event) {
                continue;
            }
            let returned = cb.on_event(&cx, *control)?;
            if control.merge(returned) && !self.warned[i] {
                self.warned[i] = true;
                crate::ui::warn(&format!(
                    "{} tried to clear a stop flag in {event}; a stop, once requested, stays requested",
                    cb.name()
                ));
            }
        }
        Ok(())
    }
}

/// HF's resets before an event, applied once here as HF's `CallbackHandler`
/// does (`on_train_begin` clears the training stop, `on_epoch_begin` the
/// epoch stop, `on_step_begin` log, evaluate and save; `on_log`,
/// `on_evaluate` and `on_save` clear their own flag).
fn reset_for(event: Event, control: &mut TrainerControl) {
    match event {
        Event::TrainBegin => control.should_training_stop = false,
        Event::EpochBegin => control.should_epoch_stop = false,
        Event::StepBegin => {
            control.should_log = false;
            control.should_evaluate = false;
            control.should_save = false;
        }
        Event::Log => control.should_log = false,
        Event::Evaluate => control.should_evaluate = false,
        Event::Save => control.should_save = false,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_resets_only_hf_flags() {
        let all = TrainerControl {
            should_training_stop: true,
            should_epoch_stop: true,
            should_save: true,
            should_evaluate: true,
            should_log: true,
        };
        let after = |e| {
            let mut c = all;
            reset_for(e, &mut c);
            c
        };
        assert!(!after(Event::TrainBegin).should_training_stop);
        assert!(!after(Event::EpochBegin).should_epoch_stop);
        let step = after(Event::StepBegin);
        assert!(!step.should_log && !step.should_evaluate && !step.should_save);
        assert!(step.should_training_stop && step.should_epoch_stop);
        assert!(!after(Event::Log).should_log);
        assert!(!after(Event::Evaluate).should_evaluate);
        assert!(!after(Event::Save).should_save);
        assert_eq!(after(Event::StepEnd), all);
    }
}
