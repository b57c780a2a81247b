//! The training arguments as Hugging Face's `TrainingArguments.to_dict()`
//! would give them: HF's names, strategies as strings, unset values as null.
//! What loggers record as the run's parameters or config.

use crate::{IntervalStrategy, SaveStrategy, TrainingArgs};
use serde_json::{json, Map, Value};

fn interval(s: IntervalStrategy) -> &'static str {
    match s {
        IntervalStrategy::No => "no",
        IntervalStrategy::Steps => "steps",
        IntervalStrategy::Epoch => "epoch",
    }
}

fn save(s: SaveStrategy) -> &'static str {
    match s {
        SaveStrategy::No => "no",
        SaveStrategy::Steps => "steps",
        SaveStrategy::Epoch => "epoch",
        SaveStrategy::Best => "best",
    }
}

/// An interval as HF keeps it after `__post_init__`: an int above 1.
fn steps(v: f64) -> Value {
    if v > 1.0 && v.fract() == 0.0 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// The arguments as a JSON object, keys in HF's names (sorted).
pub fn to_json(a: &TrainingArgs) -> Map<String, Value> {
    let v = json!({
        "output_dir": a.output_dir,
        "num_train_epochs": a.num_train_epochs,
        "max_steps": a.max_steps,
        "per_device_train_batch_size": a.per_device_train_batch_size,
        "per_device_eval_batch_size": a.per_device_eval_batch_size,
        "gradient_accumulation_steps": a.gradient_accumulation_steps,
        "learning_rate": a.learning_rate,
        "weight_decay": a.weight_decay,
        "adam_beta1": a.adam_beta1,
        "adam_beta2": a.adam_beta2,
        "adam_epsilon": a.adam_epsilon,
        "max_grad_norm": a.max_grad_norm,
        "lr_scheduler_type": a.lr_scheduler_type,
        "warmup_steps": a.warmup_steps,
        "warmup_ratio": a.warmup_ratio,
        "logging_strategy": interval(a.logging_strategy),
        "logging_steps": steps(a.logging_steps),
        "logging_first_step": a.logging_first_step,
        "logging_nan_inf_filter": a.logging_nan_inf_filter,
        "eval_strategy": interval(a.eval_strategy),
        "eval_steps": a.eval_steps.map(steps),
        "eval_delay": a.eval_delay,
        "eval_on_start": a.eval_on_start,
        "save_strategy": save(a.save_strategy),
        "save_steps": steps(a.save_steps),
        "save_total_limit": a.save_total_limit,
        "load_best_model_at_end": a.load_best_model_at_end,
        "metric_for_best_model": a.metric_for_best_model,
        "greater_is_better": a.greater_is_better,
        "seed": a.seed,
        "disable_tqdm": a.disable_tqdm,
        "report_to": a.report_to,
        "run_name": a.run_name,
        "dataloader_drop_last": a.dataloader_drop_last,
        "restore_callback_states_from_checkpoint": a.restore_callback_states_from_checkpoint,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// HF's `rewrite_logs`: `eval_x` → `eval/x`, `test_x` → `test/x`, anything
/// else → `train/<key>` (used by TensorBoard, W&B and others).
pub fn rewrite_key(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("eval_") {
        format!("eval/{rest}")
    } else if let Some(rest) = key.strip_prefix("test_") {
        format!("test/{rest}")
    } else {
        format!("train/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_logs_follows_hf() {
        assert_eq!(rewrite_key("loss"), "train/loss");
        assert_eq!(rewrite_key("eval_loss"), "eval/loss");
        assert_eq!(rewrite_key("test_accuracy"), "test/accuracy");
        assert_eq!(rewrite_key("train_runtime"), "train/train_runtime");
        assert_eq!(rewrite_key("epoch"), "train/epoch");
    }
}
