//! Built-in tasks: a model with its training and evaluation data, by name.
//! Each task is one file, read top to bottom like tch's examples.

pub mod files;
pub mod regression;
pub mod scripted;
pub mod sort;

use crate::trainer::data::Dataset;
use crate::trainer::model::Model;
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// A model with its data.
pub struct Task {
    pub model: Box<dyn Model>,
    pub train: Box<dyn Dataset>,
    pub eval: Box<dyn Dataset>,
}

/// `--task_option KEY=VALUE` pairs.
pub type TaskOptions = BTreeMap<String, String>;

/// The built-in tasks: name and one line of description.
pub const TASKS: &[(&str, &str)] = &[
    (
        "sort",
        "a small transformer learns to sort digit sequences (the demo; reports eval_accuracy)",
    ),
    (
        "regression",
        "HF's test set-up: y = a*x + b + noise, a 2-parameter model",
    ),
];

/// Builds a task by name. Call after `tch::manual_seed` so that the model's
/// initialisation follows the run's seed.
pub fn build(name: &str, options: &TaskOptions) -> Result<Task> {
    match name {
        "sort" => sort::task(options),
        "regression" => regression::task(options),
        "scripted" => scripted::task(options),
        _ => {
            let names: Vec<&str> = TASKS.iter().map(|(n, _)| *n).collect();
            match crate::suggest::closest(name, names.iter().copied()) {
                Some(near) => bail!(
                    "unknown task {name:?} (did you mean {near:?}?); tasks: {}",
                    names.join(", ")
                ),
                None => bail!("unknown task {name:?}; tasks: {}", names.join(", ")),
            }
        }
    }
}

/// Reads typed task options, rejecting unknown keys with the list of known ones.
pub(crate) struct OptionReader<'a> {
    task: &'static str,
    options: &'a TaskOptions,
    known: Vec<&'static str>,
}

impl<'a> OptionReader<'a> {
    pub fn new(task: &'static str, options: &'a TaskOptions) -> Self {
        OptionReader {
            task,
            options,
            known: Vec::new(),
        }
    }

    /// The option `key` parsed as `T`, or `default`.
    pub fn get<T: std::str::FromStr>(&mut self, key: &'static str, default: T) -> Result<T> {
        self.known.push(key);
        match self.options.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--task_option {key}={v}: not a valid {} for task {}",
                    std::any::type_name::<T>(),
                    self.task
                )
            }),
        }
    }

    /// Fails on any option that no `get` asked for.
    pub fn finish(self) -> Result<()> {
        for key in self.options.keys() {
            if !self.known.contains(&key.as_str()) {
                bail!(
                    "--task_option {key}: task {} has no such option; options: {}",
                    self.task,
                    self.known.join(", ")
                );
            }
        }
        Ok(())
    }
}
