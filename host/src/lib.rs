//! trainbox: a libtorch training loop whose callbacks are sandboxed
//! WebAssembly components, with Hugging Face `Trainer` semantics.
//!
//! Map of the crate, in dependency order (`cli` → `trainer` → `callbacks` →
//! `sandbox`; `args` and `state` are leaf data):
//!
//! - [`args`]: `TrainingArguments`, HF names, defaults and validation.
//! - [`state`]: `TrainerState`, `TrainerControl`, `trainer_state.json`.
//! - [`callbacks`]: the `Callback` trait, the ordered `CallbackHandler`, events, run views.
//! - [`flow`]: `DefaultFlowCallback`, the log/evaluate/save/stop policy.
//! - [`trainer`]: the loop, evaluation, AdamW, schedules, checkpoints.
//! - [`sandbox`]: wasm plugins: engine, stores, limits, grants, compile cache.
//! - [`tasks`]: built-in models and data.
//! - [`cli`]: the `trainbox` command.
//!
//! To train your own model, implement [`Model`] (and use a [`Dataset`] such
//! as [`TensorDataset`]), then build a [`Trainer`]; see `examples/`.

pub mod args;
pub mod callbacks;
pub mod cli;
pub mod event;
pub mod flow;
pub mod pyjson;
pub mod sandbox;
pub mod state;
pub mod tasks;
pub mod trainer;
pub mod ui;
pub mod view;

mod suggest;

pub use args::TrainingArguments;
pub use callbacks::{Callback, CallbackHandler, EventContext};
pub use event::{Event, EventSet};
pub use state::{Logs, TrainerControl, TrainerState, Value};
pub use trainer::data::{Batch, Dataset, TensorDataset};
pub use trainer::model::{EvalBatch, MetricSum, Model};
pub use trainer::{TrainOutput, Trainer, TrainerBuilder};
pub use view::RunView;
