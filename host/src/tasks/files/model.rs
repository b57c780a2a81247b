//! A TorchScript module as the trainer's [`Model`]: HF's contract (the
//! batch's columns as forward's arguments, the loss and logits from its
//! output), train mode for training and eval mode for evaluation, the
//! built-in metrics from its logits, and `model.pt` saved beside
//! `model.safetensors`.

use super::metrics::Metric;
use crate::torchscript::ScriptModel;
use crate::trainer::data::Batch;
use crate::trainer::model::{EvalBatch, Model};
use anyhow::Result;
use std::path::Path;
use tch::{nn, Tensor};

/// The file a TorchScript model is saved to, in checkpoints and `output_dir`.
pub const MODULE_FILE: &str = "model.pt";

/// A TorchScript module trained by the trainer.
pub struct FileModel {
    script: ScriptModel,
    /// The mode the module is in (`None`: not known, set at the next call).
    training: Option<bool>,
    metrics: Vec<Metric>,
    /// HF's `label_names`: the columns that hold the labels.
    label_names: Vec<String>,
    /// The parameter elements outside embeddings (counted once: a reload
    /// keeps every shape).
    flos_parameters: i64,
}

impl FileModel {
    /// `script` with its metrics and label columns.
    pub fn new(script: ScriptModel, metrics: Vec<Metric>, label_names: Vec<String>) -> FileModel {
        let flos_parameters = script
            .named_parameters()
            .iter()
            .filter(|(n, _)| !script.in_embedding(n))
            .map(|(_, t)| t.numel() as i64)
            .sum();
        FileModel {
            script,
            training: None,
            metrics,
            label_names,
            flos_parameters,
        }
    }

    /// The loaded module.
    pub fn script(&self) -> &ScriptModel {
        &self.script
    }

    /// HF's `label_names`.
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }

    /// The batch's labels: its first column named in `label_names`.
    pub fn labels<'a>(&self, batch: &'a Batch) -> Option<&'a Tensor> {
        self.label_names.iter().find_map(|n| batch.columns.get(n))
    }
}

impl Model for FileModel {
    fn var_store(&self) -> &nn::VarStore {
        self.script.var_store()
    }

    fn to_device(&mut self, device: tch::Device) -> Result<()> {
        // A module loaded again starts in its saved mode.
        self.training = None;
        self.script.to_device(device)
    }

    /// The module's `named_parameters()`, in its order.
    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.script
            .named_parameters()
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    }

    fn in_layer_norm(&self, name: &str) -> bool {
        self.script.in_layer_norm(name)
    }

    fn set_training(&mut self, train: bool) -> Result<()> {
        if self.training != Some(train) {
            if train {
                self.script.train()?;
            } else {
                self.script.eval()?;
            }
            self.training = Some(train);
        }
        Ok(())
    }

    fn loss(&self, batch: &Batch, _train: bool) -> Result<Tensor> {
        Ok(self.script.forward(&batch.columns)?.loss)
    }

    /// The logits of forward's output (a tuple's second element, a dict's
    /// `"logits"`); `None` when it returns a lone loss.
    fn logits(&self, batch: &Batch, _train: bool) -> Result<Option<Tensor>> {
        Ok(self.script.forward(&batch.columns)?.logits)
    }

    /// Loss, metrics and logits; a batch without labels (a test set) has
    /// no loss and no metrics, as in HF's `prediction_step`.
    fn eval_batch(&self, batch: &Batch) -> Result<EvalBatch> {
        let labels = self.labels(batch);
        let out = self.script.predict(&batch.columns, labels.is_some())?;
        let metrics = match (labels, &out.loss) {
            (Some(_), Some(loss)) => {
                let loss = loss.f_double_value(&[])?;
                self.metrics
                    .iter()
                    .map(|m| m.of_batch(loss, batch.len(), out.logits.as_ref(), labels))
                    .collect::<Result<Vec<_>>>()?
            }
            _ => Vec::new(),
        };
        Ok(EvalBatch {
            loss: out.loss,
            metrics,
            predictions: out.logits.map(|t| t.detach()),
            labels: labels.map(Tensor::shallow_clone),
        })
    }

    /// `forward` takes `num_items_in_batch`.
    fn accepts_loss_kwargs(&self) -> bool {
        self.script
            .takes(crate::trainer::loss_kwargs::NUM_ITEMS_IN_BATCH)
    }

    /// The module's class is one of transformers' causal LM classes.
    fn shifts_labels(&self) -> bool {
        self.script.shifts_labels()
    }

    fn counts_shifted_labels(&self) -> bool {
        self.script.counts_shifted_labels()
    }

    /// `input_ids` when forward takes it, else its first argument.
    fn main_input_name(&self) -> &str {
        let names = self.script.input_names();
        if names.iter().any(|n| n == "input_ids") {
            return "input_ids";
        }
        names.first().map_or("input_ids", String::as_str)
    }

    /// As HF's `PreTrainedModel.floating_point_ops`: the parameters
    /// outside embeddings.
    fn flos_parameters(&self) -> i64 {
        self.flos_parameters
    }

    fn export_file(&self) -> Option<&'static str> {
        Some(MODULE_FILE)
    }

    fn export(&self, path: &Path) -> Result<()> {
        self.script.save(path)
    }

    /// The checkpoint's `model.pt` (weights and buffers, such as batch-norm
    /// statistics) replaces the module; a checkpoint without one keeps it.
    fn restore(&mut self, dir: &Path) -> Result<()> {
        let file = dir.join(MODULE_FILE);
        if file.is_file() {
            self.script.reload(&file)?;
            self.training = None;
        }
        Ok(())
    }
}
