//! A model and data the user brings: a TorchScript module (`--model`) and
//! dataset files (`--train_file`, `--validation_file`, `--test_file`),
//! bound as HF binds a model and its datasets: columns to forward's
//! arguments by name, unused columns removed (`remove_unused_columns`),
//! label columns padded with -100 (`label_names`), an `attention_mask`
//! made when forward takes one. One batch of each file runs through the
//! model before training (a dry run), so that a missing column, a wrong
//! dtype, a rejected shape or a loss that is not a scalar is one error
//! naming the file, the column and the argument, before any step.

mod data;
pub mod metrics;
mod model;

pub use data::FileDataset;
pub use metrics::Metric;
pub use model::{FileModel, MODULE_FILE};

use crate::args::TrainingArguments;
use crate::datasets::{self, Collate};
use crate::torchscript::{self, Arg};
use crate::trainer::data::Dataset;
use crate::trainer::model::Model;
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

/// What `--model` and the dataset flags ask for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileOptions {
    /// The TorchScript file, or a folder holding `model.pt`.
    pub model: Option<PathBuf>,
    /// `--train_file`: the training data.
    pub train_file: Option<PathBuf>,
    /// `--validation_file`: the evaluation data.
    pub validation_file: Option<PathBuf>,
    /// `--test_file`: the data `--do_predict` predicts.
    pub test_file: Option<PathBuf>,
    /// `--model_input_names`: forward's arguments in order.
    pub model_input_names: Option<Vec<String>>,
    /// `--pad_token_id`: the padding of token lists.
    pub pad_token_id: i64,
    /// `--max_train_samples`: the first N training samples only.
    pub max_train_samples: Option<usize>,
    /// `--max_eval_samples`: the first N evaluation samples only.
    pub max_eval_samples: Option<usize>,
    /// `--max_predict_samples`: the first N test samples only.
    pub max_predict_samples: Option<usize>,
    /// `--metric NAME`, in order.
    pub metrics: Vec<String>,
}

/// The flags (and config-file keys) of a model and data the user brings:
/// name, value, help.
pub const FLAGS: &[(&str, &str, &str)] = &[
    ("model", "PATH", "train a TorchScript module (a .pt file, or a folder holding model.pt) instead of a --task"),
    ("train_file", "FILE", "training data: .parquet, .safetensors, .jsonl or .csv"),
    ("validation_file", "FILE", "evaluation data (eval_loss, --metric), same formats"),
    ("test_file", "FILE", "prediction data (--do_predict: predictions.safetensors), same formats"),
    ("model_input_names", "A,B,...", "the columns passed to forward's arguments, in order (default: forward's own argument names)"),
    ("pad_token_id", "N", "padding of variable-length token lists (default 0; labels are padded with -100)"),
    ("max_train_samples", "N", "train on the first N samples only"),
    ("max_eval_samples", "N", "evaluate on the first N samples only"),
    ("max_predict_samples", "N", "predict on the first N samples only"),
    ("metric", "NAME", "an evaluation metric: accuracy, mse, mae or perplexity (repeatable)"),
];

impl FileOptions {
    /// Sets option `name` from its text (paths relative to `base`);
    /// `Ok(false)` when `name` is not one of [`FLAGS`].
    pub fn set(&mut self, name: &str, value: &str, base: &Path) -> Result<bool> {
        let count = |v: &str| -> Result<usize> {
            v.parse()
                .map_err(|_| anyhow!("--{name} {v}: expected a number of samples"))
        };
        match name {
            "model" => self.model = Some(base.join(value)),
            "train_file" => self.train_file = Some(base.join(value)),
            "validation_file" => self.validation_file = Some(base.join(value)),
            "test_file" => self.test_file = Some(base.join(value)),
            "model_input_names" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect();
                if names.is_empty() {
                    bail!("--model_input_names {value:?}: expected column names, e.g. input_ids,labels");
                }
                self.model_input_names = Some(names);
            }
            "pad_token_id" => {
                self.pad_token_id = value
                    .parse()
                    .map_err(|_| anyhow!("--pad_token_id {value}: expected an integer"))?
            }
            "max_train_samples" => self.max_train_samples = Some(count(value)?),
            "max_eval_samples" => self.max_eval_samples = Some(count(value)?),
            "max_predict_samples" => self.max_predict_samples = Some(count(value)?),
            "metric" => {
                for m in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                    Metric::parse(m)?;
                    if !self.metrics.iter().any(|k| k == m) {
                        self.metrics.push(m.to_string());
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether any option was given.
    pub fn any(&self) -> bool {
        *self != FileOptions::default()
    }
}

/// Which splits a run uses (HF's `do_train`, `do_eval`, `do_predict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splits {
    /// Train on the training data.
    pub train: bool,
    /// Evaluate on the evaluation data after training.
    pub eval: bool,
    /// Predict on the test data.
    pub predict: bool,
}

/// The model and the data of each split asked for.
pub struct FileTask {
    /// The TorchScript module, as the trainer's model.
    pub model: Box<dyn Model>,
    /// The training data, when the run trains.
    pub train: Option<FileDataset>,
    /// The evaluation data, when the run evaluates.
    pub eval: Option<FileDataset>,
    /// The test data, when the run predicts.
    pub test: Option<FileDataset>,
}

/// Loads the model and the datasets of `splits`, binds them, and runs the
/// dry run.
pub fn task(opts: &FileOptions, args: &TrainingArguments, splits: Splits) -> Result<FileTask> {
    let metrics = opts
        .metrics
        .iter()
        .map(|m| Metric::parse(m))
        .collect::<Result<Vec<_>>>()?;
    let Some(path) = &opts.model else {
        bail!("the dataset flags need --model PATH (a TorchScript module)");
    };
    let mut script = torchscript::load(model_file(path)?)?;
    if let Some(names) = &opts.model_input_names {
        script.set_input_names(names.clone())?;
    }
    // HF's default `label_names`: forward's arguments named like a label
    // (`find_labels`), else `labels`.
    let label_names = args.label_names.clone().unwrap_or_else(|| {
        let named: Vec<String> = script
            .input_names()
            .iter()
            .filter(|n| n.contains("label"))
            .cloned()
            .collect();
        if named.is_empty() {
            vec!["labels".to_string()]
        } else {
            named
        }
    });
    let binder = Binder {
        model: script.path().to_path_buf(),
        args: script.schema().map(<[Arg]>::to_vec).unwrap_or_default(),
        inputs: script.input_names().to_vec(),
        label_names: label_names.clone(),
        pad_token_id: opts.pad_token_id,
        remove_unused_columns: args.remove_unused_columns,
    };
    if binder.inputs.is_empty() {
        // The forward error says why, and the fix.
        let empty = Default::default();
        script.forward(&empty)?;
    }
    let train = need(splits.train, &opts.train_file, "--train_file", "training")?
        .map(|f| binder.bind(f, "training", opts.max_train_samples))
        .transpose()?;
    let eval = need(
        splits.eval,
        &opts.validation_file,
        "--validation_file",
        "evaluation",
    )?
    .map(|f| binder.bind(f, "evaluation", opts.max_eval_samples))
    .transpose()?;
    let test = need(splits.predict, &opts.test_file, "--test_file", "prediction")?
        .map(|f| binder.bind(f, "test", opts.max_predict_samples))
        .transpose()?;
    let mut model = FileModel::new(script, metrics, label_names);
    let (train_bs, eval_bs) = (
        args.per_device_train_batch_size as usize,
        args.per_device_eval_batch_size as usize,
    );
    if let Some(data) = &train {
        dry_run(&mut model, data, train_bs, true)?;
    }
    for data in eval.iter().chain(test.iter()) {
        dry_run(&mut model, data, eval_bs, false)?;
    }
    // Metrics are computed against the labels: evaluation data without
    // them would report none (a test file may lack them: it only predicts).
    if let (Some(data), false) = (&eval, opts.metrics.is_empty()) {
        if model.labels(&data.batch(&[0])?).is_none() {
            bail!(
                "dataset {} has no label column ({}), so --metric {} cannot be computed; add \
                 the labels, or name their column with --label_names",
                data.path().display(),
                model.label_names().join(", "),
                opts.metrics.join(", ")
            );
        }
    }
    Ok(FileTask {
        model: Box::new(model),
        train,
        eval,
        test,
    })
}

/// The file of a split the run uses; an error when it is not given.
fn need<'a>(
    on: bool,
    file: &'a Option<PathBuf>,
    flag: &str,
    split: &str,
) -> Result<Option<&'a Path>> {
    match (on, file) {
        (false, _) => Ok(None),
        (true, Some(f)) => Ok(Some(f.as_path())),
        (true, None) => bail!(
            "{split} needs {flag} FILE (a {} file)",
            datasets::EXTENSIONS
        ),
    }
}

/// `--model`: the file, or `model.pt` in a folder (an output_dir or a checkpoint).
fn model_file(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(MODULE_FILE);
        if !file.is_file() {
            bail!(
                "--model {}: the folder holds no {MODULE_FILE}; pass a TorchScript file, or a \
                 trainbox output_dir or checkpoint folder",
                path.display()
            );
        }
        return Ok(file);
    }
    Ok(path.to_path_buf())
}

/// The columns HF's collators pass as `labels`.
const LABEL_ALIASES: [&str; 2] = ["label", "label_ids"];

/// How a dataset file's columns meet forward's arguments.
struct Binder {
    model: PathBuf,
    /// forward's schema, when it could be read.
    args: Vec<Arg>,
    /// The column passed to each argument, in order.
    inputs: Vec<String>,
    label_names: Vec<String>,
    pad_token_id: i64,
    remove_unused_columns: bool,
}

impl Binder {
    /// Opens `file` and binds its columns to forward's arguments.
    fn bind(&self, file: &Path, split: &str, max: Option<usize>) -> Result<FileDataset> {
        let takes = |name: &str| self.inputs.iter().any(|i| i == name);
        // With remove_unused_columns, the columns forward does not take are
        // never decoded (whatever they hold: text, images, nested values).
        let asked: Option<Vec<String>> = self.remove_unused_columns.then(|| {
            let mut names = self.inputs.clone();
            if takes("labels") {
                names.extend(LABEL_ALIASES.iter().map(|a| a.to_string()));
            }
            names
        });
        let mut columns = datasets::open_only(file, asked.as_deref())?;
        if let Some(n) = max {
            if n == 0 {
                bail!(
                    "--max_{}_samples 0 leaves no sample of dataset {}; give at least 1",
                    match split {
                        "training" => "train",
                        "evaluation" => "eval",
                        _ => "predict",
                    },
                    file.display()
                );
            }
            columns.truncate(n);
        }
        let present: Vec<String> = columns
            .column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let all: Vec<String> = present
            .iter()
            .cloned()
            .chain(columns.unread_columns().iter().map(|s| s.to_string()))
            .collect();
        let has = |name: &str| all.iter().any(|c| c == name);
        // HF's collators pass a `label` (or `label_ids`) column as `labels`.
        let mut renames = Vec::new();
        if takes("labels") && !has("labels") {
            if let Some(alias) = LABEL_ALIASES.iter().find(|a| has(a)) {
                renames.push((alias.to_string(), "labels".to_string()));
            }
        }
        let passed = |c: &str| -> String {
            renames
                .iter()
                .find(|(f, _)| f == c)
                .map_or(c, |(_, t)| t.as_str())
                .to_string()
        };
        let (wanted, unused): (Vec<&str>, Vec<&str>) = all
            .iter()
            .map(String::as_str)
            .partition(|c| takes(&passed(c)));
        if !unused.is_empty() {
            if !self.remove_unused_columns {
                bail!(
                    "dataset {}: column(s) {} have no argument in forward of model {} ({}), and \
                     --remove_unused_columns is false; drop the columns, or let trainbox ignore \
                     them (--remove_unused_columns true, the default)",
                    file.display(),
                    unused.join(", "),
                    self.model.display(),
                    self.inputs.join(", ")
                );
            }
            crate::ui::info(&format!(
                "The following columns in the {split} set don't have a corresponding argument in \
                 `forward` of {} and have been ignored: {}.",
                self.model.display(),
                unused.join(", ")
            ));
        }
        let attention_mask = takes("attention_mask") && !has("attention_mask");
        // Every argument without a default needs its column.
        for (i, input) in self.inputs.iter().enumerate() {
            let found = wanted.iter().any(|c| passed(c) == *input)
                || (input == "attention_mask" && attention_mask)
                || input == crate::trainer::loss_kwargs::NUM_ITEMS_IN_BATCH;
            let optional = self.args.get(i).is_some_and(|a| a.default.is_some());
            if !found && !optional {
                let arg = self.args.get(i).map_or(input.as_str(), |a| a.name.as_str());
                bail!(
                    "dataset {} has no column `{input}` for argument `{arg}` of forward in model \
                     {} (its columns: {}); add the column, or bind the arguments to other \
                     columns with --model_input_names",
                    file.display(),
                    self.model.display(),
                    if present.is_empty() {
                        "none".to_string()
                    } else {
                        present.join(", ")
                    }
                );
            }
        }
        for label in wanted
            .iter()
            .filter(|c| self.label_names.iter().any(|l| *l == passed(c)))
        {
            if columns.unread_columns().contains(label) {
                bail!(
                    "dataset {}: the label column '{label}' is not numbers (text?); labels must \
                     be integer class ids or numbers: encode them in Python first (e.g. \
                     `dataset.class_encode_column(\"{label}\")`)",
                    file.display()
                );
            }
        }
        columns.select(&wanted)?;
        let mut label_names = self.label_names.clone();
        label_names.extend(renames.iter().map(|(from, _)| from.clone()));
        let collate = Collate {
            pad_token_id: self.pad_token_id,
            label_names,
            attention_mask,
        };
        Ok(FileDataset::new(columns, collate, renames))
    }
}

/// The first batch of `data` and its last, shorter one (a traced module
/// may have baked the batch size in) through the model, before anything
/// trains: in eval mode (no dropout, no batch-norm update), with gradients
/// for training data (so that a loss cut off from the parameters shows
/// here), and with the metrics for evaluation data.
fn dry_run(
    model: &mut FileModel,
    data: &FileDataset,
    batch_size: usize,
    train: bool,
) -> Result<()> {
    let len = data.len();
    let first: Vec<i64> = (0..batch_size.min(len).max(1) as i64).collect();
    let mut batches = vec![("first", first)];
    if len > batch_size && !len.is_multiple_of(batch_size) {
        let start = len - len % batch_size;
        batches.push(("last", (start as i64..len as i64).collect()));
    }
    let file = data.path().display().to_string();
    for (which, indices) in batches {
        let checked = (|| -> Result<()> {
            model.set_training(false)?;
            let batch = crate::trainer::loss_kwargs::with_own_count(model, data.batch(&indices)?)?;
            if train {
                let loss = model.loss(&batch, false)?;
                if !loss.requires_grad() {
                    bail!(
                        "the loss does not depend on any parameter of the model (no gradient \
                         flows to it); export the module in training form, with its parameters"
                    );
                }
            } else {
                tch::no_grad(|| model.eval_batch(&batch))?;
            }
            Ok(())
        })();
        checked.map_err(|e| {
            anyhow!(
                "the {which} batch of dataset {file} (samples {}-{}) does not go through the \
                 model (a dry run before any training step): {e:#}",
                indices[0],
                indices[indices.len() - 1]
            )
        })?;
    }
    Ok(())
}
