//! trainbox-sdk: write a trainbox training callback in Rust.
//!
//! Implement [`Callback`] (every event method has an empty default, so you
//! write only the ones you use) and export your type with
//! [`export_plugin!`]. Build with `cargo build --target wasm32-wasip2
//! --release`; the `.wasm` it produces is the plugin.
//!
//! ```no_run
//! use trainbox_sdk::{export_plugin, Callback, Context, Event, Logs};
//!
//! #[derive(Default)]
//! struct LossAlarm;
//!
//! impl Callback for LossAlarm {
//!     const NAME: &'static str = "loss-alarm";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const EVENTS: &'static [Event] = &[Event::Log];
//!
//!     fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
//!         if logs.float("loss").is_some_and(|l| !l.is_finite()) {
//!             cx.control.should_training_stop = true;
//!         }
//!     }
//! }
//!
//! export_plugin!(LossAlarm);
//! ```
//!
//! A plugin may change only the control flags it returns; the state and
//! arguments are copies. It may write files in its own directory (the
//! current directory, `.`) and print to stdout/stderr; anything else must be
//! asked for in [`Callback::capabilities`] and granted by the user.
//!
//! # Examples by event family
//!
//! **The training loop** (`on_step_begin`, `on_step_end`, `on_epoch_*`):
//! steer it through the control flags.
//!
//! ```no_run
//! # use trainbox_sdk::*;
//! #[derive(Default)]
//! struct SaveEvery100;
//! impl Callback for SaveEvery100 {
//!     const NAME: &'static str = "save-every-100";
//!     const VERSION: &'static str = "0.1.0";
//!     const EVENTS: &'static [Event] = &[Event::StepEnd];
//!     fn on_step_end(&mut self, cx: &mut Context) {
//!         if cx.state.global_step % 100 == 0 {
//!             cx.control.should_save = true;
//!         }
//!     }
//! }
//! ```
//!
//! **The optimizer** (`on_pre_optimizer_step`, `on_optimizer_step`):
//! gradients are read through [`views::model`], never copied into the call.
//!
//! ```no_run
//! # use trainbox_sdk::*;
//! #[derive(Default)]
//! struct GradWatch;
//! impl Callback for GradWatch {
//!     const NAME: &'static str = "grad-watch";
//!     const VERSION: &'static str = "0.1.0";
//!     const EVENTS: &'static [Event] = &[Event::PreOptimizerStep];
//!     fn on_pre_optimizer_step(&mut self, cx: &mut Context) {
//!         let model = views::model();
//!         for name in model.parameter_names() {
//!             if let Some(g) = model.gradient(&name) {
//!                 if g.nonfinite > 0 {
//!                     println!("step {}: {name} has {} NaN/inf gradients", cx.state.global_step, g.nonfinite);
//!                     cx.control.should_training_stop = true;
//!                 }
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! **Logging** (`on_log`): the entry is the payload; the history is a view.
//!
//! ```no_run
//! # use trainbox_sdk::*;
//! #[derive(Default)]
//! struct Printer;
//! impl Callback for Printer {
//!     const NAME: &'static str = "printer";
//!     const VERSION: &'static str = "0.1.0";
//!     const EVENTS: &'static [Event] = &[Event::Log];
//!     fn on_log(&mut self, _cx: &mut Context, logs: &Logs) {
//!         println!("{} (entry {} of the history)", format::py_dict(logs, 100), views::history().len());
//!     }
//! }
//! ```
//!
//! **Evaluation** (`on_evaluate`, `on_prediction_step`, `on_predict`): the
//! metrics are the payload; `state.best_metric` is the best before this one.
//!
//! ```no_run
//! # use trainbox_sdk::*;
//! #[derive(Default)]
//! struct StopAtAccuracy;
//! impl Callback for StopAtAccuracy {
//!     const NAME: &'static str = "stop-at-accuracy";
//!     const VERSION: &'static str = "0.1.0";
//!     const EVENTS: &'static [Event] = &[Event::Evaluate];
//!     fn on_evaluate(&mut self, cx: &mut Context, metrics: &Logs) {
//!         if metrics.float("eval_accuracy").is_some_and(|a| a >= 0.99) {
//!             cx.control.should_training_stop = true;
//!         }
//!     }
//! }
//! ```
//!
//! **Checkpoints and state** (`on_save`, [`Callback::save_state`],
//! [`Callback::load_state`]): a stateful plugin's state is kept in every
//! checkpoint and comes back after a restart or a resume.
//!
//! ```no_run
//! # use trainbox_sdk::*;
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Saves { count: u32 }
//! impl Callback for Saves {
//!     const NAME: &'static str = "count-saves";
//!     const VERSION: &'static str = "0.1.0";
//!     const EVENTS: &'static [Event] = &[Event::Save];
//!     const STATEFUL: bool = true;
//!     fn on_save(&mut self, _cx: &mut Context) {
//!         self.count += 1;
//!     }
//!     fn save_state(&self) -> String {
//!         state::exportable(&(), self)
//!     }
//!     fn load_state(&mut self, text: &str) -> Result<(), String> {
//!         *self = state::attributes(text)?;
//!         Ok(())
//!     }
//! }
//! ```
//!
//! **The run's life** (`configure`, `on_train_begin`, `on_train_end`,
//! [`Callback::finish`]): set up from the configuration, close at the end,
//! however the run ended.
//!
//! ```no_run
//! # use trainbox_sdk::*;
//! #[derive(Default)]
//! struct Notes { file: Option<std::fs::File> }
//! impl Callback for Notes {
//!     const NAME: &'static str = "notes";
//!     const VERSION: &'static str = "0.1.0";
//!     const EVENTS: &'static [Event] = &[Event::TrainBegin];
//!     fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
//!         config.only(&["file"])?;
//!         let name = config.get("file").unwrap_or("notes.txt");
//!         self.file = Some(std::fs::File::create(name).map_err(|e| e.to_string())?);
//!         Ok(())
//!     }
//!     fn finish(&mut self, outcome: &RunOutcome) {
//!         use std::io::Write;
//!         if let (Some(f), RunOutcome::Aborted(why)) = (self.file.as_mut(), outcome) {
//!             let _ = writeln!(f, "aborted: {why}");
//!         }
//!     }
//! }
//! ```

pub mod args;
pub mod format;
#[cfg(feature = "http")]
pub mod http;
pub mod progress;
pub mod python;
pub mod views;

/// The bindings of the latest contract (`wit/callback.wit`), or, with the
/// `wit-0-1-0` feature, of the frozen `wit/0.1.0/callback.wit`.
#[doc(hidden)]
pub mod wit {
    #[cfg(not(feature = "wit-0-1-0"))]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "callback",
        pub_export_macro: true,
        export_macro_name: "__export_callback_world",
        default_bindings_module: "trainbox_sdk::wit",
        generate_all,
    });
    #[cfg(feature = "wit-0-1-0")]
    wit_bindgen::generate!({
        path: "../../wit/0.1.0",
        world: "callback",
        pub_export_macro: true,
        export_macro_name: "__export_callback_world",
        default_bindings_module: "trainbox_sdk::wit",
        generate_all,
    });
}

pub use wit::trainbox::callback::types::{
    Capability, Entry, Event, IntervalStrategy, RunOutcome, SaveStrategy, TrainerControl,
    TrainerState, TrainingArgs, Value,
};

/// The version of the `trainbox:callback` package this SDK targets.
#[cfg(not(feature = "wit-0-1-0"))]
pub const API_VERSION: &str = "0.2.0";
/// The version of the `trainbox:callback` package this SDK targets.
#[cfg(feature = "wit-0-1-0")]
pub const API_VERSION: &str = "0.1.0";

/// Lists the events once, in the WIT order, as `Variant => hf_name`: the
/// list makes [`ALL_EVENTS`] and [`hf_name`]. `hf_name` matches the generated
/// enum exhaustively, so a WIT event missing here does not compile; the
/// const check below keeps the list in the enum's order without repeats.
macro_rules! events {
    ($($variant:ident => $name:ident),* $(,)?) => {
        /// Every event, in the WIT order.
        pub const ALL_EVENTS: &[Event] = &[$(Event::$variant),*];

        /// HF's name of an event, e.g. `"on_step_end"`.
        pub fn hf_name(event: Event) -> &'static str {
            match event {
                $(Event::$variant => concat!("on_", stringify!($name)),)*
            }
        }
    };
}

events!(
    InitEnd => init_end,
    TrainBegin => train_begin,
    TrainEnd => train_end,
    EpochBegin => epoch_begin,
    EpochEnd => epoch_end,
    StepBegin => step_begin,
    SubstepEnd => substep_end,
    PreOptimizerStep => pre_optimizer_step,
    OptimizerStep => optimizer_step,
    StepEnd => step_end,
    Evaluate => evaluate,
    Predict => predict,
    PredictionStep => prediction_step,
    Save => save,
    Log => log,
);

const _: () = {
    let mut i = 0;
    while i < ALL_EVENTS.len() {
        assert!(
            ALL_EVENTS[i] as usize == i,
            "ALL_EVENTS is not in the WIT enum's order"
        );
        i += 1;
    }
};

/// A log entry or a metrics set: named values in the order the host made them.
#[derive(Clone, Copy)]
pub struct Logs<'a>(pub &'a [Entry]);

impl<'a> Logs<'a> {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// The value of `key` as a number (ints and floats).
    pub fn float(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.0.iter().map(|e| (e.key.as_str(), &e.value))
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.0.iter().map(|e| e.key.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What an event handler receives.
pub struct Context<'a> {
    /// The event being handled.
    pub event: Event,
    /// The run's arguments (as given to `configure`).
    pub args: &'a TrainingArgs,
    /// A copy of the trainer's state.
    pub state: &'a TrainerState,
    /// The control flags: change them to steer training. A stop, once
    /// requested, stays requested whatever a later handler returns.
    pub control: &'a mut TrainerControl,
}

/// `configure`'s key/value pairs (`--plugin_config NAME.KEY=VALUE`).
pub struct Config<'a>(pub &'a [(String, String)]);

impl Config<'_> {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`; an error names the key and the value.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{key}={v}: not a valid {}", std::any::type_name::<T>())),
        }
    }

    /// Fails on a key that is not in `known`, naming the known ones.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(format!(
                "unknown key {k:?}; known keys: {}",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}

/// A training callback. Implement the event methods you need; each has an
/// empty default. The host calls only the events listed in [`Self::EVENTS`].
#[allow(unused_variables)]
pub trait Callback: Default + 'static {
    /// Short name, `[a-z0-9_-]+`: its directory is `<output_dir>/plugins/<NAME>/`.
    const NAME: &'static str;
    /// The plugin's version (usually `env!("CARGO_PKG_VERSION")`).
    const VERSION: &'static str;
    /// The events to receive.
    const EVENTS: &'static [Event];
    /// Whether [`Callback::save_state`] holds state to keep in checkpoints.
    const STATEFUL: bool = false;

    /// What the plugin needs beyond its own directory (default: nothing).
    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    /// Called once, before any event, with the run's configuration for this plugin.
    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        Ok(())
    }

    /// Handles any event; the default dispatches to the `on_*` methods.
    /// Override it to handle every event in one place.
    fn on_event(&mut self, cx: &mut Context, payload: &Logs) {
        match cx.event {
            Event::InitEnd => self.on_init_end(cx),
            Event::TrainBegin => self.on_train_begin(cx),
            Event::TrainEnd => self.on_train_end(cx),
            Event::EpochBegin => self.on_epoch_begin(cx),
            Event::EpochEnd => self.on_epoch_end(cx),
            Event::StepBegin => self.on_step_begin(cx),
            Event::SubstepEnd => self.on_substep_end(cx),
            Event::PreOptimizerStep => self.on_pre_optimizer_step(cx),
            Event::OptimizerStep => self.on_optimizer_step(cx),
            Event::StepEnd => self.on_step_end(cx),
            Event::Evaluate => self.on_evaluate(cx, payload),
            Event::Predict => self.on_predict(cx, payload),
            Event::PredictionStep => self.on_prediction_step(cx),
            Event::Save => self.on_save(cx),
            Event::Log => self.on_log(cx, payload),
        }
    }

    /// End of the trainer's construction.
    fn on_init_end(&mut self, cx: &mut Context) {}
    /// Start of training.
    fn on_train_begin(&mut self, cx: &mut Context) {}
    /// End of training, after the final summary log.
    fn on_train_end(&mut self, cx: &mut Context) {}
    /// Start of an epoch.
    fn on_epoch_begin(&mut self, cx: &mut Context) {}
    /// End of an epoch (also when cut short).
    fn on_epoch_end(&mut self, cx: &mut Context) {}
    /// Before the first micro-batch of an update.
    fn on_step_begin(&mut self, cx: &mut Context) {}
    /// After each micro-batch but the last of an update.
    fn on_substep_end(&mut self, cx: &mut Context) {}
    /// After clipping, before the optimizer step (gradients: [`views::model`]).
    fn on_pre_optimizer_step(&mut self, cx: &mut Context) {}
    /// After the optimizer step, before gradients are zeroed.
    fn on_optimizer_step(&mut self, cx: &mut Context) {}
    /// After an update (`global_step` counts it).
    fn on_step_end(&mut self, cx: &mut Context) {}
    /// After an evaluation, with its metrics.
    fn on_evaluate(&mut self, cx: &mut Context, metrics: &Logs) {}
    /// After a prediction run, with its metrics.
    fn on_predict(&mut self, cx: &mut Context, metrics: &Logs) {}
    /// After each evaluation or prediction batch.
    fn on_prediction_step(&mut self, cx: &mut Context) {}
    /// After a checkpoint was written.
    fn on_save(&mut self, cx: &mut Context) {}
    /// After a log entry was appended to the history.
    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {}

    /// Called once when the run is over, however it ended (after
    /// `on_train_end` when it completed): flush and close what you hold.
    fn finish(&mut self, outcome: &RunOutcome) {}

    /// The state to keep in checkpoints (stateful plugins), in HF's
    /// `ExportableState` shape: build it with [`state::exportable`].
    fn save_state(&self) -> String {
        state::exportable(&(), &())
    }

    /// Restores a state produced by `save_state`.
    fn load_state(&mut self, state: &str) -> Result<(), String> {
        Ok(())
    }
}

pub mod state;
pub mod time;

#[doc(hidden)]
#[path = "export.rs"]
pub mod __private;

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK's events are the WIT enum `event`, case by case, in order.
    #[test]
    fn all_events_are_the_wit_enum_in_order() {
        let wit =
            trainbox_pyformat::wit::enum_cases(include_str!("../../../wit/callback.wit"), "event");
        let ours: Vec<String> = ALL_EVENTS
            .iter()
            .map(|e| hf_name(*e).strip_prefix("on_").unwrap().replace('_', "-"))
            .collect();
        assert_eq!(
            ours, wit,
            "trainbox_sdk::ALL_EVENTS / hf_name and the WIT enum `event` (wit/callback.wit) differ"
        );
    }
}
