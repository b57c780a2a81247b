//! The training events. The WIT enum `trainbox:callback/types.event` is the
//! source; `sandbox::bindings` converts to and from it with exhaustive
//! matches, and [`Event::hf_name`] is the one place HF's names are spelled.

use std::fmt;

/// A Hugging Face `TrainerCallback` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    InitEnd,
    TrainBegin,
    TrainEnd,
    EpochBegin,
    EpochEnd,
    StepBegin,
    SubstepEnd,
    PreOptimizerStep,
    OptimizerStep,
    StepEnd,
    Evaluate,
    Predict,
    PredictionStep,
    Save,
    Log,
}

impl Event {
    /// Every event, in the WIT enum's order.
    pub const ALL: [Event; 15] = [
        Event::InitEnd,
        Event::TrainBegin,
        Event::TrainEnd,
        Event::EpochBegin,
        Event::EpochEnd,
        Event::StepBegin,
        Event::SubstepEnd,
        Event::PreOptimizerStep,
        Event::OptimizerStep,
        Event::StepEnd,
        Event::Evaluate,
        Event::Predict,
        Event::PredictionStep,
        Event::Save,
        Event::Log,
    ];

    /// HF's method name, e.g. `"on_step_end"`.
    pub fn hf_name(self) -> &'static str {
        match self {
            Event::InitEnd => "on_init_end",
            Event::TrainBegin => "on_train_begin",
            Event::TrainEnd => "on_train_end",
            Event::EpochBegin => "on_epoch_begin",
            Event::EpochEnd => "on_epoch_end",
            Event::StepBegin => "on_step_begin",
            Event::SubstepEnd => "on_substep_end",
            Event::PreOptimizerStep => "on_pre_optimizer_step",
            Event::OptimizerStep => "on_optimizer_step",
            Event::StepEnd => "on_step_end",
            Event::Evaluate => "on_evaluate",
            Event::Predict => "on_predict",
            Event::PredictionStep => "on_prediction_step",
            Event::Save => "on_save",
            Event::Log => "on_log",
        }
    }

    /// The event named `on_step_end` (or `step_end`, or WIT's `step-end`).
    /// No allocation: the Python host parses a name on every event.
    pub fn from_name(name: &str) -> Option<Event> {
        let name = name.strip_prefix("on_").unwrap_or(name).as_bytes();
        let same = |hf: &[u8]| {
            hf.len() == name.len()
                && hf
                    .iter()
                    .zip(name)
                    .all(|(&a, &b)| a == b || (a == b'_' && b == b'-'))
        };
        Event::ALL
            .into_iter()
            .find(|e| same(&e.hf_name().as_bytes()[3..]))
    }

    /// The event's bit in an [`EventSet`].
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hf_name())
    }
}

/// A set of events, as a bitset indexed by [`Event`]: what a callback subscribes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventSet(u32);

impl EventSet {
    pub const ALL: EventSet = EventSet((1 << Event::ALL.len()) - 1);

    pub fn contains(self, event: Event) -> bool {
        self.0 & event.bit() != 0
    }

    pub fn insert(&mut self, event: Event) {
        self.0 |= event.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Event> {
        Event::ALL.into_iter().filter(move |e| self.contains(*e))
    }
}

impl FromIterator<Event> for EventSet {
    fn from_iter<I: IntoIterator<Item = Event>>(iter: I) -> Self {
        let mut set = EventSet::default();
        for e in iter {
            set.insert(e);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Event::ALL {
            assert_eq!(Event::from_name(e.hf_name()), Some(e));
        }
        assert_eq!(
            Event::from_name("pre-optimizer-step"),
            Some(Event::PreOptimizerStep)
        );
        assert_eq!(Event::from_name("on_nothing"), None);
    }

    /// `Event::ALL` and `hf_name` follow the WIT enum `event`, case by case,
    /// in order: a new WIT event fails here until the host lists it.
    #[test]
    fn all_events_are_the_wit_enum_in_order() {
        let wit =
            trainbox_pyformat::wit::enum_cases(include_str!("../../../wit/callback.wit"), "event");
        let ours: Vec<String> = Event::ALL
            .iter()
            .map(|e| e.hf_name().strip_prefix("on_").unwrap().replace('_', "-"))
            .collect();
        assert_eq!(
            ours, wit,
            "Event::ALL / Event::hf_name and the WIT enum `event` (wit/callback.wit) differ"
        );
        for (i, e) in Event::ALL.into_iter().enumerate() {
            assert_eq!(e as usize, i, "{e} is at its own index in Event::ALL");
        }
    }

    #[test]
    fn event_sets_hold_exactly_their_members() {
        let set: EventSet = [Event::Log, Event::StepEnd].into_iter().collect();
        assert!(set.contains(Event::Log) && set.contains(Event::StepEnd));
        assert!(!set.contains(Event::StepBegin));
        assert_eq!(EventSet::ALL.iter().count(), 15);
    }
}
