//! A TorchScript module saved from Python (`torch.jit.script` or
//! `torch.jit.trace`, then `.save()`), trained with all of its parameters
//! under the module's own names, with HF's model contract: `forward`
//! receives the batch's columns as arguments (by the names of its schema)
//! and returns the loss, a tuple `(loss, logits, …)`, or a dict with
//! `"loss"` (and `"logits"`).
//!
//! A leaf: it knows tch, not the trainer.

mod causal_lm;
mod modules;
mod output;
mod schema;

pub use causal_lm::{counts_shifted_labels, is_causal_lm_class, loss_type, LOSS_TYPES};
pub use output::{Output, Prediction};
pub use schema::Arg;

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, CModule, Device, IValue, Tensor};

/// How to make a file that loads: the fix every load error names.
const EXPORT_FIX: &str = "export the model from Python with \
    `torch.jit.trace(model, example_inputs).save(\"model.pt\")` or \
    `torch.jit.script(model).save(\"model.pt\")` (a `torch.save` file or a state_dict is not enough)";

/// A loaded TorchScript module: its parameters are trainable and shared
/// with the module, so that an optimizer stepping them trains it.
#[derive(Debug)]
pub struct ScriptModel {
    path: PathBuf,
    module: CModule,
    /// The schema's arguments, or why they could not be read.
    schema: std::result::Result<Vec<Arg>, String>,
    /// The names `forward`'s arguments are bound by, in order.
    names: Vec<String>,
    /// The top module's qualified class, if the archive could be read.
    class: Option<String>,
    params: Vec<(String, Tensor)>,
    /// The parameters by the modules they sit in (none known when the
    /// archive's code could not be read).
    kinds: modules::ParamKinds,
    vs: nn::VarStore,
}

/// Loads the TorchScript module at `path` onto the CPU.
pub fn load(path: impl AsRef<Path>) -> Result<ScriptModel> {
    load_on(path, Device::Cpu)
}

/// Loads the TorchScript module at `path` onto `device`.
pub fn load_on(path: impl AsRef<Path>, device: Device) -> Result<ScriptModel> {
    let path = path.as_ref().to_path_buf();
    let file = path.display();
    if !path.is_file() {
        bail!("model {file}: no such file; {EXPORT_FIX}");
    }
    let module = CModule::load_on_device(&path, device).map_err(|e| {
        anyhow::anyhow!(
            "model {file} is not a TorchScript module ({}); {EXPORT_FIX}",
            first_sentence(&e.to_string())
        )
    })?;
    let vs = nn::VarStore::new(device);
    let mut params = Vec::new();
    let named = module
        .named_parameters()
        .with_context(|| format!("model {file}: reading its parameters"))?;
    // A tied parameter (GPT-2's `lm_head.weight` is `wte.weight`) is listed
    // under each of its names; as Python's `named_parameters()`, keep the
    // first, so that it is one parameter to the optimizer, the gradient
    // norm and `model.safetensors`.
    let mut seen = std::collections::BTreeSet::new();
    for (name, tensor) in named {
        if !seen.insert((tensor.data_ptr() as usize, tensor.size(), tensor.stride())) {
            continue;
        }
        // Shares the module's tensor: the module sees every update.
        let tensor = tensor.set_requires_grad(true);
        let mut parts: Vec<&str> = name.split('.').collect();
        let leaf = parts.pop().unwrap_or_default();
        let path = parts.iter().fold(vs.root(), |p, part| p.sub(*part));
        let _shared = path.add(leaf, tensor.shallow_clone(), true);
        params.push((name, tensor));
    }
    let schema = schema::forward_args(&path).map_err(|e| e.to_string());
    let names = match &schema {
        Ok(args) => args.iter().map(|a| a.name.clone()).collect(),
        Err(_) => Vec::new(),
    };
    let param_names: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
    let kinds = modules::classify(&path, &param_names).unwrap_or_default();
    let class = schema::top_class_of_file(&path).ok();
    Ok(ScriptModel {
        path,
        module,
        schema,
        names,
        class,
        params,
        kinds,
        vs,
    })
}

impl ScriptModel {
    /// The file the module was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The arguments of `forward` as its schema gives them, if the archive
    /// could be read (else why not).
    pub fn schema(&self) -> std::result::Result<&[Arg], &str> {
        self.schema.as_deref().map_err(String::as_str)
    }

    /// The column names bound to `forward`'s arguments, in order: the
    /// schema's, or those given to [`ScriptModel::set_input_names`].
    pub fn input_names(&self) -> &[String] {
        &self.names
    }

    /// The top module's qualified class, as the archive names it
    /// (`__torch__.transformers.models.gpt2.modeling_gpt2.GPT2LMHeadModel`).
    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// Whether `forward` has an argument bound to the batch column `name`
    /// (HF's `model_accepts_loss_kwargs` is this for `num_items_in_batch`).
    pub fn takes(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Whether the module is a causal LM, whose labels HF's label smoother
    /// shifts (its class is one of transformers' causal LM classes, see
    /// [`is_causal_lm_class`]).
    pub fn shifts_labels(&self) -> bool {
        self.class.as_deref().is_some_and(is_causal_lm_class)
    }

    /// Whether HF counts the module's `num_items_in_batch` over
    /// `labels[..., 1:]` (its class's loss type is a causal LM's, see
    /// [`counts_shifted_labels`]).
    pub fn counts_shifted_labels(&self) -> bool {
        self.class.as_deref().is_some_and(counts_shifted_labels)
    }

    /// Binds `forward`'s arguments, in order, to these column names (HF's
    /// `model_input_names`), instead of the schema's names.
    pub fn set_input_names(&mut self, names: Vec<String>) -> Result<()> {
        if let Ok(args) = &self.schema {
            if names.len() > args.len() {
                bail!(
                    "model {}: {} input names given ({}) but forward takes {} arguments ({})",
                    self.path.display(),
                    names.len(),
                    names.join(", "),
                    args.len(),
                    arg_names(args)
                );
            }
        }
        self.names = names;
        Ok(())
    }

    /// Replaces the module by the one saved at `path` (a checkpoint's
    /// `model.pt`: the same module with other weights and buffers), keeping
    /// the input names. Its parameters must have the same names and shapes.
    pub fn reload(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let mut other = load_on(path, self.vs.device())?;
        let shapes = |m: &ScriptModel| -> Vec<(String, Vec<i64>)> {
            m.params
                .iter()
                .map(|(n, t)| (n.clone(), t.size()))
                .collect()
        };
        if shapes(&other) != shapes(self) {
            bail!(
                "model {}: its parameters are not those of {} (another model?); resume with the \
                 model the checkpoint was trained from",
                other.path.display(),
                self.path.display()
            );
        }
        other.names = std::mem::take(&mut self.names);
        *self = other;
        Ok(())
    }

    /// Moves the module (parameters and buffers) to `device`: it is loaded
    /// again from its file onto the device, keeping the input names. Call
    /// it before training, while the weights are still the file's.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        if self.vs.device() == device {
            return Ok(());
        }
        let mut other = load_on(&self.path, device)?;
        other.names = std::mem::take(&mut self.names);
        *self = other;
        Ok(())
    }

    /// The parameters under the module's own names (`layer.0.weight`),
    /// trainable, shared with the module.
    pub fn named_parameters(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// Whether parameter `name` sits in an `nn.LayerNorm` module (which HF
    /// exempts from weight decay by its type).
    pub fn in_layer_norm(&self, name: &str) -> bool {
        self.kinds.in_layer_norm.contains(name)
    }

    /// Whether parameter `name` sits in an `nn.Embedding` module.
    pub fn in_embedding(&self, name: &str) -> bool {
        self.kinds.in_embedding.contains(name)
    }

    /// A var store holding the same tensors under the same names (for an
    /// optimizer and for checkpoints as safetensors).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Train mode (dropout on, batch-norm statistics updated).
    pub fn train(&mut self) -> Result<()> {
        let file = self.path.display();
        self.module
            .f_set_train()
            .with_context(|| format!("model {file}: setting train mode"))
    }

    /// Eval mode.
    pub fn eval(&mut self) -> Result<()> {
        let file = self.path.display();
        self.module
            .f_set_eval()
            .with_context(|| format!("model {file}: setting eval mode"))
    }

    /// Runs `forward` with the named `columns` as its positional arguments
    /// and reads its output as HF's contract. Columns that no argument
    /// names are not passed; a missing column is passed as `None` where
    /// the argument defaults to `None`, left out where it is last.
    pub fn forward(&self, columns: &BTreeMap<String, Tensor>) -> Result<Output> {
        let value = self.call(columns)?;
        output::read(value).map_err(|e| anyhow::anyhow!("model {}: {e}", self.path.display()))
    }

    /// Runs `forward` as an evaluation does: with `labels_given`, as
    /// [`ScriptModel::forward`]; without, reading the output as HF's
    /// `prediction_step` does (logits first, no loss).
    pub fn predict(
        &self,
        columns: &BTreeMap<String, Tensor>,
        labels_given: bool,
    ) -> Result<Prediction> {
        let value = self.call(columns)?;
        output::read_prediction(value, labels_given)
            .map_err(|e| anyhow::anyhow!("model {}: {e}", self.path.display()))
    }

    /// `forward` on the columns bound to its arguments, run op by op as
    /// PyTorch's eager mode runs it: without the graph executor's
    /// optimisations (fused and differentiated subgraphs after a few
    /// profiled calls), which round differently from the first calls, so
    /// that a run resumed on a freshly loaded module is bit-exact, and the
    /// numbers are those of the same model trained in Python.
    fn call(&self, columns: &BTreeMap<String, Tensor>) -> Result<IValue> {
        let file = self.path.display();
        tch::jit::f_set_graph_executor_optimize(false)?;
        if self.names.is_empty() {
            match &self.schema {
                Err(why) => bail!(
                    "model {file}: the names of forward's arguments could not be read ({why}); \
                     give them in order with --model_input_names (e.g. input_ids,labels)"
                ),
                Ok(_) => bail!("model {file}: forward takes no arguments"),
            }
        }
        let args = self.schema.as_deref().unwrap_or(&[]);
        let mut inputs: Vec<IValue> = Vec::new();
        let mut passed = Vec::new();
        let mut skipped: Vec<(&str, &str)> = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            let arg = args.get(i).map_or(name.as_str(), |a| a.name.as_str());
            let Some(tensor) = columns.get(name) else {
                match args.get(i).and_then(|a| a.default.as_deref()) {
                    Some(default) => {
                        skipped.push((arg, default));
                        continue;
                    }
                    None => bail!(
                        "model {file}: the batch has no column `{name}` for forward's argument \
                         `{arg}` (columns: {}); add the column to the dataset, or name the \
                         arguments with --model_input_names",
                        keys(columns)
                    ),
                }
            };
            for (skipped_arg, default) in skipped.drain(..) {
                if default != "None" {
                    bail!(
                        "model {file}: forward's argument `{skipped_arg}` has no column and its \
                         default ({default}) cannot be passed before `{arg}`; add the column"
                    );
                }
                inputs.push(IValue::None);
            }
            passed.push(format!(
                "{name}→{arg} {:?}{:?}",
                tensor.kind(),
                tensor.size()
            ));
            inputs.push(IValue::Tensor(tensor.shallow_clone()));
        }
        self.module.forward_is(&inputs).map_err(|e| {
            anyhow::anyhow!(
                "model {file}: forward failed on the columns {}: {}",
                passed.join(", "),
                reason(&e.to_string())
            )
        })
    }

    /// Writes the module with its current (trained) weights to `path`, so
    /// that `torch.jit.load` in Python gets the trained model back.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.module.save(path).map_err(|e| {
            anyhow::anyhow!(
                "model {}: writing {}: {}",
                self.path.display(),
                path.display(),
                first_line(&e.to_string())
            )
        })
    }
}

fn arg_names(args: &[Arg]) -> String {
    args.iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn keys(columns: &BTreeMap<String, Tensor>) -> String {
    if columns.is_empty() {
        return "none".into();
    }
    columns.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text)
}

/// What libtorch's load error says, without its prefix and its advice
/// about corrupted checkpoints.
fn first_sentence(text: &str) -> &str {
    let line = first_line(text);
    let line = line.strip_prefix("Internal torch error: ").unwrap_or(line);
    line.split(". ")
        .next()
        .unwrap_or(line)
        .trim_end_matches('.')
}

/// The line of a TorchScript interpreter error that says what failed
/// (`RuntimeError: mat1 and mat2 shapes cannot be multiplied …`), without
/// the C++ backtrace.
fn reason(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let found = lines
        .iter()
        .rev()
        .find(|l| l.contains("Error: ") && !l.starts_with("Exception raised from"))
        .or_else(|| lines.iter().find(|l| !l.is_empty()));
    found.map_or_else(|| text.to_owned(), |l| l.to_string())
}
