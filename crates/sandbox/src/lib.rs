//! trainbox's plugin sandbox, and the leaf data it speaks in, without
//! libtorch: one crate for both hosts of the plugins, the `trainbox` binary
//! (crate `trainbox`, which links libtorch) and a Python host inside Hugging
//! Face's `Trainer` (issue 16), which must not link libtorch.
//!
//! Map, in dependency order: `integrations` over `sandbox` over the leaf
//! data `run_args`, `state`, `event`, `view`, `pyjson`, `ui`,
//! `atomic_file` and `builtin_dir`. Nothing here
//! names a tensor: the model's statistics reach the views through
//! [`view::Parameters`], which each host implements over its own tensors.
//! `tests/spec/layering.rs` checks the map and that this crate has no
//! libtorch.
//!
//! - [`sandbox`]: wasm plugins: engine, describe, grants, stores, the one
//!   call path, faults, limits, output, compile cache.
//! - [`run_args`]: [`RunArgs`], what a plugin receives of the run's
//!   arguments (the contract's `training-args`), and the strategy enums.
//! - [`state`]: `TrainerState`, `TrainerControl`, `trainer_state.json`.
//! - [`event`], [`view`]: the events (the WIT enum's) and the read-only run
//!   that plugins query ([`Event`], [`EventSet`], [`RunView`]).
//! - [`pyjson`]: Python's JSON and reprs, from the shared `trainbox-pyformat`.
//! - [`ui`]: the terminal: messages and progress bars that do not tear.
//! - [`atomic_file`]: files replaced whole or not at all.
//! - [`builtin_dir`]: where the built-in plugins are, for both hosts.
//! - [`integrations`]: the `report_to` loggers and what each is granted.

pub mod atomic_file;
pub mod builtin_dir;
pub mod event;
pub mod integrations;
pub mod pyjson;
pub mod run_args;
pub mod sandbox;
pub mod state;
pub mod ui;
pub mod view;

pub use event::{Event, EventSet};
pub use run_args::{IntervalStrategy, RunArgs, SaveStrategy};
pub use state::{Logs, TrainerControl, TrainerState, Value};
pub use view::RunView;
