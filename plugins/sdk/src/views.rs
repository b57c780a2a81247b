//! Read-only views on the run, queried only when needed, so that an event
//! costs the same however long the run has been going.
//!
//! ```no_run
//! let model = trainbox_sdk::views::model();
//! if let Some(norm) = model.grad_norm() { /* … */ }
//! let history = trainbox_sdk::views::history();
//! let last = history.get(history.len().saturating_sub(1));
//! ```

pub use crate::wit::trainbox::callback::views::{
    dataloaders, history, model, DataloaderLengths, LogHistory, ModelStats, TensorStats,
};
