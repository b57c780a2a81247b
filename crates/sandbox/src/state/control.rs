//! Hugging Face's `TrainerControl`: the flags callbacks return, the merge
//! rule (a stop, once requested, stays requested) and its `ExportableState`
//! form in `trainer_state.json`. The resets are the `CallbackHandler`'s.

use crate::pyjson::Json;
use std::collections::BTreeMap;

/// Hugging Face's `TrainerControl`: the flags callbacks set to steer the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrainerControl {
    /// Ends training after the current step. Cleared at `train_begin`.
    pub should_training_stop: bool,
    /// Ends the epoch after the current step. Cleared at `epoch_begin`.
    pub should_epoch_stop: bool,
    /// Saves after this step. Cleared at `step_begin` and `save`.
    pub should_save: bool,
    /// Evaluates after this step. Cleared at `step_begin` and `evaluate`.
    pub should_evaluate: bool,
    /// Logs after this step. Cleared at `step_begin` and `log`.
    pub should_log: bool,
}

impl TrainerControl {
    /// Takes a callback's returned flags, except that a stop, once requested,
    /// stays requested. Returns whether the callback tried to clear a stop.
    pub fn merge(&mut self, returned: TrainerControl) -> bool {
        let cleared_stop = (self.should_training_stop && !returned.should_training_stop)
            || (self.should_epoch_stop && !returned.should_epoch_stop);
        *self = TrainerControl {
            should_training_stop: self.should_training_stop || returned.should_training_stop,
            should_epoch_stop: self.should_epoch_stop || returned.should_epoch_stop,
            ..returned
        };
        cleared_stop
    }

    /// The flags in HF's field order (as [`TrainerControl::named`]).
    pub fn flags(&self) -> [bool; 5] {
        self.named().map(|(_, v)| v)
    }

    /// The control of flags in HF's field order (as [`TrainerControl::flags`]).
    pub fn from_flag_array(flags: [bool; 5]) -> TrainerControl {
        let [should_training_stop, should_epoch_stop, should_save, should_evaluate, should_log] =
            flags;
        TrainerControl {
            should_training_stop,
            should_epoch_stop,
            should_save,
            should_evaluate,
            should_log,
        }
    }

    /// The flags by HF name, in HF's field order.
    pub fn named(&self) -> [(&'static str, bool); 5] {
        [
            ("should_training_stop", self.should_training_stop),
            ("should_epoch_stop", self.should_epoch_stop),
            ("should_save", self.should_save),
            ("should_evaluate", self.should_evaluate),
            ("should_log", self.should_log),
        ]
    }

    /// The flags of an object with HF's field names; a missing or non-bool
    /// flag is false.
    pub fn from_flags(flags: &BTreeMap<String, Json>) -> TrainerControl {
        let flag = |k: &str| flags.get(k).and_then(Json::as_bool).unwrap_or(false);
        TrainerControl {
            should_training_stop: flag("should_training_stop"),
            should_epoch_stop: flag("should_epoch_stop"),
            should_save: flag("should_save"),
            should_evaluate: flag("should_evaluate"),
            should_log: flag("should_log"),
        }
    }

    /// The control from its `ExportableState` entry, as
    /// [`exportable_state`](Self::exportable_state) writes it.
    pub fn from_exportable(j: &Json) -> Option<TrainerControl> {
        Some(Self::from_flags(j.as_object()?.get("args")?.as_object()?))
    }

    /// The control as an `ExportableState` entry (`{"args": flags, "attributes": {}}`).
    pub fn exportable_state(&self) -> Json {
        let args = self
            .named()
            .iter()
            .map(|(k, v)| (k.to_string(), Json::Bool(*v)))
            .collect();
        Json::Object(BTreeMap::from([
            ("args".to_string(), Json::Object(args)),
            ("attributes".to_string(), Json::Object(BTreeMap::new())),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_once_requested_stays_requested() {
        let mut c = TrainerControl {
            should_training_stop: true,
            should_save: true,
            ..Default::default()
        };
        let cleared = c.merge(TrainerControl::default());
        assert!(cleared);
        assert!(c.should_training_stop);
        assert!(!c.should_save, "other flags are taken as returned");
    }
}
