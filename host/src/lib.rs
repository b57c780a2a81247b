//! trainbox: a libtorch training loop whose callbacks are sandboxed
//! WebAssembly components, with Hugging Face `Trainer` semantics.
//!
//! Map of the crate, in dependency order: `cli` → `session` → `trainer`
//! (with `flow`) → `callbacks` → `sandbox`, all of them over the leaf data `args`,
//! `state`, `event`, `view`, `pyjson`, `report` and `ui`; `tasks` builds on the
//! trainer's `Model` and `Dataset`, and binds the leaves `datasets` and
//! `torchscript` to them. `sandbox`, `state`, `event`, `pyjson`, `ui`,
//! `atomic_file` and most of `view` are the crate `trainbox-sandbox`
//! (`crates/sandbox`, no libtorch, shared with the Python host), re-exported
//! here under their own names. `tests/spec/layering.rs` checks it.
//!
//! - [`args`]: `TrainingArguments`, HF names, defaults and validation.
//! - `atomic_file`: files replaced whole or not at all (sandbox crate).
//! - [`state`]: `TrainerState`, `TrainerControl`, `trainer_state.json`
//!   (sandbox crate; what the arguments decide of it: `args::TrainerStateExt`).
//! - `event`, `view`: the events (the WIT enum's) and the read-only run
//!   that callbacks query ([`Event`], [`EventSet`], [`RunView`]; sandbox
//!   crate), with the model's tensor statistics over libtorch (`view.rs`).
//! - [`pyjson`]: Python's JSON and reprs, from the shared `trainbox-pyformat`.
//! - `callbacks`: the [`Callback`] trait, the ordered [`CallbackHandler`]
//!   with HF's resets, and the adapter that makes a plugin a callback.
//! - `flow`: `DefaultFlowCallback`, the log/evaluate/save/stop policy.
//! - [`trainer`]: the loop, evaluation, optimizers, schedules, checkpoints.
//! - [`sandbox`]: wasm plugins: engine, describe, grants, stores, the one
//!   call path, faults, limits, output, compile cache (sandbox crate).
//! - [`tasks`]: built-in models and data; `tasks::files`, a TorchScript
//!   model on dataset files (`trainbox train --model`), with the dry run
//!   and the built-in metrics.
//! - [`datasets`]: dataset files (Parquet, safetensors, JSON lines, CSV)
//!   as named columns, and batches padded as HF's collators do.
//! - [`torchscript`]: a TorchScript module from Python, its parameters,
//!   its forward over named columns (HF's output contract), `model.pt`.
//! - [`device`]: the run's device (HF's rule) and precision (bf16, fp16, TF32).
//! - [`session`]: a run as `trainbox train` makes it: the trainer with its
//!   plugin folders, `report_to` integrations, grants, plugin config and
//!   the end-of-run report, in one call.
//! - [`report`]: the end of a run, for people: the summary (final and best
//!   metric, model, best checkpoint, speed) and the learning curves as
//!   SVG and PNG, over `state` alone.
//! - [`cli`]: the `trainbox` command.
//!
//! Modules a library user needs are public; the rest are private, and what
//! they export is re-exported here.
//!
//! To train your own model from the command line, export it to TorchScript
//! (`docs/train-your-own-model.md`); from Rust, implement [`Model`] (and
//! use a [`Dataset`] such as [`TensorDataset`]), then build a [`Trainer`];
//! see `host/examples/`.

pub mod args;
use trainbox_sandbox::atomic_file;
mod callbacks;
pub mod cli;
pub mod datasets;
pub mod device;
pub mod dist;
use trainbox_sandbox::event;
mod flow;
pub use trainbox_sandbox::pyjson;
pub mod report;
pub use trainbox_sandbox::sandbox;
pub mod session;
pub use trainbox_sandbox::state;
pub mod tasks;
pub mod torchscript;
pub mod trainer;
pub use trainbox_sandbox::ui;
mod view;

mod suggest;

pub use args::TrainingArguments;
pub use callbacks::{Callback, CallbackHandler, EventContext};
pub use event::{Event, EventSet};
pub use session::{Outcome, Run, Session};
pub use state::{Logs, TrainerControl, TrainerState, Value};
pub use trainer::data::{Batch, Dataset, TensorDataset};
pub use trainer::model::{EvalBatch, MetricSum, Model, Reduce};
pub use trainer::{PredictionOutput, TrainOutput, Trainer, TrainerBuilder};
pub use view::RunView;
