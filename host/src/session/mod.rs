//! A training run as `trainbox train` makes it, for the binary and for
//! library users alike: the [`Trainer`](crate::Trainer) with its plugins,
//! loaded in HF's order (DefaultFlow, the `report_to` integrations, the
//! user's plugin folders and files, progress/printer last), their grants
//! and config, and the end-of-run report.
//!
//! - [`integrations`]: the loggers `--report_to` selects, and what each is
//!   granted.

pub mod integrations;
