//! The fields of HF's `TrainingArguments` that trainbox knows but does not
//! implement, each with the reason. A value equal to HF's default is
//! accepted (there is nothing to do); any other is refused on the command
//! line, and listed once in a warning when it comes from a config file (an
//! HF-dumped `to_json_string()` holds every field).
//!
//! With the fields of [`TrainingArguments`](super::TrainingArguments), this
//! table names every field of transformers 5.24's `TrainingArguments`;
//! `tests/spec/training_args.rs` checks both against transformers itself.

use crate::pyjson::Json;

/// A field of HF's that trainbox does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    /// HF's name.
    pub name: &'static str,
    /// `TrainingArguments().to_dict()[name]` in transformers 5.24, as JSON.
    pub default: &'static str,
    /// Why trainbox does not support it, and what to do instead.
    pub why: &'static str,
}

const fn no(name: &'static str, default: &'static str, why: &'static str) -> Unsupported {
    Unsupported { name, default, why }
}

const HUB: &str = "trainbox has no access to the Hugging Face Hub (it trains offline); upload output_dir yourself, e.g. with `hf upload`";
const TRACKIO_HUB: &str = "Trackio Spaces and Buckets live on the Hugging Face Hub, which trainbox cannot reach; the trackio integration logs locally";
const SHARDED: &str = "trainbox trains data parallel on torch's c10d (torchrun --nproc_per_node N), not sharded; see docs/scale.md";
const PYTHON_MODEL: &str =
    "the model is a TorchScript module, which trainbox cannot re-wrap or patch; do it in PyTorch before exporting";
const COMPUTE_METRICS: &str =
    "trainbox has no Python compute_metrics; its built-in --metric values are summed batch by batch already";

/// HF's fields that trainbox does not support.
pub const UNSUPPORTED: &[Unsupported] = &[
    no(
        "optim_target_modules",
        "null",
        "it names the modules of GaLore/APOLLO optimizers, whose libraries trainbox does not link; use --optim adamw_torch",
    ),
    no("activation_checkpointing", "false", PYTHON_MODEL),
    no("activation_checkpointing_kwargs", "null", PYTHON_MODEL),
    no("gradient_checkpointing", "false", PYTHON_MODEL),
    no("gradient_checkpointing_kwargs", "null", PYTHON_MODEL),
    no("use_liger_kernel", "false", "Liger kernels are Triton (Python) kernels patched into a Python model; libtorch cannot load them"),
    no("liger_kernel_config", "null", "Liger kernels are Triton (Python) kernels patched into a Python model; libtorch cannot load them"),
    no("neftune_noise_alpha", "null", "NEFTune adds noise through a hook on a Python model's embedding layer; add it to the model before exporting"),
    no("use_cache", "false", "a TorchScript module's forward is fixed when it is exported; export it with the cache setting you want"),
    no("torch_compile", "false", "torch.compile is Python's TorchDynamo, which libtorch does not have; trainbox runs the exported graph as is"),
    no("torch_compile_backend", "null", "torch.compile is Python's TorchDynamo, which libtorch does not have"),
    no("torch_compile_mode", "null", "torch.compile is Python's TorchDynamo, which libtorch does not have"),
    no("bf16_full_eval", "false", "evaluation runs in float32 (under --bf16's autocast when it is set); trainbox does not cast the model itself to half precision"),
    no("fp16_full_eval", "false", "evaluation runs in float32 (under --fp16's autocast when it is set); trainbox does not cast the model itself to half precision"),
    no("auto_find_batch_size", "false", "trainbox does not retry with smaller batches after running out of memory; set --per_device_train_batch_size"),
    no("log_level", "\"passive\"", "trainbox's host prints only warnings and errors, not Python logging; there is no level to set"),
    no("log_level_replica", "\"warning\"", "trainbox's host prints only warnings and errors, not Python logging; there is no level to set"),
    no("log_on_each_node", "true", "trainbox logs from world zero only (multi-node logging per node is not implemented)"),
    no("trackio_space_id", "null", TRACKIO_HUB),
    no("trackio_bucket_id", "null", TRACKIO_HUB),
    no("trackio_static_space_id", "null", TRACKIO_HUB),
    no("eval_do_concat_batches", "true", "predictions are always concatenated (predictions.safetensors holds one tensor per output)"),
    no("eval_use_gather_object", "false", "there are no Python objects to gather: predictions are tensors, gathered as tensors"),
    no("include_for_metrics", "[]", COMPUTE_METRICS),
    no("batch_eval_metrics", "false", COMPUTE_METRICS),
    no("save_on_each_node", "false", "checkpoints are written by world zero into one output_dir, which every node must share"),
    no("push_to_hub", "false", HUB),
    no("hub_token", "\"<HUB_TOKEN>\"", HUB),
    no("hub_private_repo", "null", HUB),
    no("hub_model_id", "null", HUB),
    no("hub_strategy", "\"every_save\"", HUB),
    no("hub_always_push", "false", HUB),
    no("hub_revision", "null", HUB),
    no("ignore_data_skip", "false", "a resumed run always replays the data order to the checkpoint's step, so that resume is exact"),
    no("accelerator_config", r#"{"split_batches": false, "dispatch_batches": null, "even_batches": true, "use_seedable_sampler": true, "non_blocking": false, "gradient_accumulation_kwargs": null, "use_configured_state": false}"#, "trainbox does not run on accelerate; data parallel options are --ddp_backend and --ddp_timeout"),
    no("parallelism_config", "null", SHARDED),
    no("dataloader_pin_memory", "true", "batches are built by libtorch on the run's device; there is no pinned-memory staging to turn off"),
    no("dataloader_persistent_workers", "false", "trainbox's data workers are threads that live for the whole run"),
    no("dataloader_multiprocessing_context", "null", "trainbox's data workers are threads, not processes"),
    no("dataloader_in_order", "true", "batches are always yielded in order, so that runs are reproducible"),
    no("train_sampling_strategy", "\"random\"", "trainbox samples the training data at random (seeded by --seed/--data_seed) only"),
    no("length_column_name", "\"length\"", "it is used by group_by_length sampling, which trainbox does not implement"),
    no("ddp_find_unused_parameters", "null", "trainbox gives parameters the model did not use a zero gradient on every rank, so nothing needs finding"),
    no("ddp_bucket_cap_mb", "null", "trainbox's gradient buckets are 25 MB (torch DDP's default) and are not configurable yet"),
    no("ddp_broadcast_buffers", "null", "trainbox broadcasts the parameters at the start; a TorchScript module's buffers are not broadcast"),
    no("ddp_static_graph", "null", "trainbox's data parallel is not torch's Python DDP wrapper; the graph needs no declaring"),
    no("fsdp", "null", SHARDED),
    no("fsdp_config", "null", SHARDED),
    no("deepspeed", "null", "DeepSpeed is a Python engine; trainbox trains data parallel on torch's c10d: torchrun --no-python --nproc_per_node N trainbox train ... (docs/scale.md)"),
    no("debug", "[]", "the debug options are underflow/overflow hooks on a Python model and TPU metrics, neither of which applies"),
    no("skip_memory_metrics", "true", "trainbox does not add memory profiler reports to the metrics (HF skips them by default too)"),
    no("local_rank", "-1", "the launcher sets it: torchrun's LOCAL_RANK is read from the environment"),
];

/// The unsupported fields typed `bool | None` in HF: a bare flag means
/// true, as HF's parser takes them (`nargs="?"`, `const=True`).
const OPTIONAL_BOOLS: [&str; 6] = [
    "activation_checkpointing",
    "gradient_checkpointing",
    "hub_private_repo",
    "ddp_find_unused_parameters",
    "ddp_broadcast_buffers",
    "ddp_static_graph",
];

/// The entry of `name`, when it is an unsupported HF field.
pub fn find(name: &str) -> Option<&'static Unsupported> {
    UNSUPPORTED.iter().find(|u| u.name == name)
}

impl Unsupported {
    /// Whether HF types it `bool` (or `bool | None`): a bare flag is true.
    pub fn takes_bool(&self) -> bool {
        matches!(self.default_json(), Json::Bool(_)) || OPTIONAL_BOOLS.contains(&self.name)
    }

    /// HF's default, as JSON.
    pub fn default_json(&self) -> Json {
        Json::parse(self.default).expect("UNSUPPORTED defaults are JSON")
    }

    /// Whether a config-file value asks for nothing but HF's default: the
    /// default itself (an int equal to a float default counts), or an empty
    /// value (`null`, `""`, `[]`, `{}`), which a hand-written file uses for
    /// "not set".
    pub fn is_default_json(&self, value: &Json) -> bool {
        let default = self.default_json();
        let empty = match value {
            Json::Null => true,
            Json::Str(s) => s.is_empty(),
            Json::Array(a) => a.is_empty(),
            Json::Object(o) => o.is_empty(),
            _ => false,
        };
        empty
            || *value == default
            || matches!(
                (value.as_f64(), default.as_f64()),
                (Some(a), Some(b)) if a == b && !matches!(value, Json::Bool(_))
            )
    }

    /// Whether the text of a flag asks for HF's default (`--push_to_hub
    /// false`); `values` is empty for a bare boolean flag, which means true.
    pub fn is_default_text(&self, values: &[String]) -> bool {
        let default = self.default_json();
        let text = values.join(",");
        match default {
            Json::Bool(b) => {
                let given = if values.is_empty() {
                    Some(true)
                } else {
                    <bool as super::ArgValue>::from_text(&text).ok()
                };
                given == Some(b)
            }
            Json::Int(_) | Json::Float(_) => text.parse::<f64>().ok() == default.as_f64(),
            Json::Str(s) => text == s,
            Json::Array(a) => a.is_empty() && text.is_empty(),
            _ => false,
        }
    }

    /// The one line that refuses a value of this field.
    pub fn refusal(&self) -> String {
        let default = if self.default.len() <= 24 {
            format!("only its default, {}", self.default)
        } else {
            "only HF's default".to_string()
        };
        format!(
            "trainbox does not support {} ({default}): {}",
            self.name, self.why
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_accepted_and_other_values_are_not() {
        let push = find("push_to_hub").unwrap();
        assert!(push.is_default_text(&["false".into()]));
        assert!(!push.is_default_text(&[]));
        assert!(push.is_default_json(&Json::Bool(false)));
        assert!(push.is_default_json(&Json::Null));
        assert!(!push.is_default_json(&Json::Bool(true)));
        let rank = find("local_rank").unwrap();
        assert!(rank.is_default_json(&Json::Int(-1)));
        assert!(rank.is_default_json(&Json::Float(-1.0)));
        assert!(!rank.is_default_text(&["0".into()]));
        let strategy = find("hub_strategy").unwrap();
        assert!(strategy.is_default_text(&["every_save".into()]));
        assert!(!strategy.is_default_text(&["end".into()]));
    }

    #[test]
    fn every_default_is_json_and_every_name_once() {
        let mut names: Vec<&str> = UNSUPPORTED.iter().map(|u| u.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), UNSUPPORTED.len(), "a name appears twice");
        for u in UNSUPPORTED {
            let _ = u.default_json();
            assert!(
                super::super::TrainingArguments::FIELDS
                    .iter()
                    .all(|f| f.name != u.name),
                "{} is both implemented and unsupported",
                u.name
            );
        }
    }
}
