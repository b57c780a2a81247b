//! HF's `TrainingArguments.to_dict()` (as JSON) as the contract's
//! `training-args`: what a plugin receives of the run's arguments.

use crate::{invalid, parse};
use pyo3::PyResult;
use trainbox_sandbox::integrations::IntegrationArgs;
use trainbox_sandbox::pyjson::Json;
use trainbox_sandbox::{IntervalStrategy, RunArgs, SaveStrategy};

/// The run arguments of `text`, HF's `to_dict()` as JSON, and what the
/// `report_to` integrations' grants read of them.
pub fn from_json(text: &str) -> PyResult<(RunArgs, IntegrationArgs)> {
    let j = parse(text, "training args")?;
    Ok((run_args(&j)?, integration_args(&j)))
}

/// What the integrations read of HF's arguments; a missing key takes HF's
/// default.
fn integration_args(j: &Json) -> IntegrationArgs {
    let s = |k: &str| {
        j.as_object()
            .and_then(|o| o.get(k))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let default = IntegrationArgs::default();
    IntegrationArgs {
        output_dir: s("output_dir").unwrap_or(default.output_dir),
        logging_dir: s("logging_dir"),
        project: s("project").unwrap_or(default.project),
    }
}

/// HF's `TrainingArguments.to_dict()` as the contract's `training-args`;
/// a missing key takes HF's default.
fn run_args(j: &Json) -> PyResult<RunArgs> {
    let o = j
        .as_object()
        .ok_or_else(|| invalid("training args: expected a JSON object"))?;
    let get = |k: &str| o.get(k).filter(|v| !matches!(v, Json::Null));
    let f = |k: &str, d: f64| get(k).and_then(Json::as_f64).unwrap_or(d);
    let i = |k: &str, d: i64| get(k).and_then(Json::as_i64).unwrap_or(d);
    let b = |k: &str, d: bool| get(k).and_then(Json::as_bool).unwrap_or(d);
    let s = |k: &str| get(k).and_then(Json::as_str).map(str::to_string);
    let interval = |k: &str, d: IntervalStrategy| -> PyResult<IntervalStrategy> {
        match s(k) {
            None => Ok(d),
            Some(v) => IntervalStrategy::from_name(&v)
                .ok_or_else(|| invalid(format!("{k}: unknown strategy {v:?}"))),
        }
    };
    let save_strategy = match s("save_strategy") {
        None => SaveStrategy::Steps,
        Some(v) => SaveStrategy::from_name(&v)
            .ok_or_else(|| invalid(format!("save_strategy: unknown {v:?}")))?,
    };
    let report_to = match get("report_to") {
        Some(Json::Str(v)) if v == "none" => Vec::new(),
        Some(Json::Str(v)) => vec![v.clone()],
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .filter(|v| v != "none")
            .collect(),
        _ => Vec::new(),
    };
    Ok(RunArgs {
        output_dir: s("output_dir").unwrap_or_else(|| "trainer_output".into()),
        num_train_epochs: f("num_train_epochs", 3.0),
        max_steps: i("max_steps", -1),
        per_device_train_batch_size: i("per_device_train_batch_size", 8) as u32,
        per_device_eval_batch_size: i("per_device_eval_batch_size", 8) as u32,
        gradient_accumulation_steps: i("gradient_accumulation_steps", 1) as u32,
        learning_rate: f("learning_rate", 5e-5),
        weight_decay: f("weight_decay", 0.0),
        adam_beta1: f("adam_beta1", 0.9),
        adam_beta2: f("adam_beta2", 0.999),
        adam_epsilon: f("adam_epsilon", 1e-8),
        max_grad_norm: f("max_grad_norm", 1.0),
        lr_scheduler_type: s("lr_scheduler_type").unwrap_or_else(|| "linear".into()),
        warmup_steps: f("warmup_steps", 0.0),
        warmup_ratio: f("warmup_ratio", 0.0),
        logging_strategy: interval("logging_strategy", IntervalStrategy::Steps)?,
        logging_steps: f("logging_steps", 500.0),
        logging_first_step: b("logging_first_step", false),
        logging_nan_inf_filter: b("logging_nan_inf_filter", true),
        eval_strategy: interval("eval_strategy", IntervalStrategy::No)?,
        eval_steps: get("eval_steps").and_then(Json::as_f64),
        eval_delay: f("eval_delay", 0.0),
        eval_on_start: b("eval_on_start", false),
        save_strategy,
        save_steps: f("save_steps", 500.0),
        save_total_limit: get("save_total_limit")
            .and_then(Json::as_i64)
            .map(|v| v as u32),
        load_best_model_at_end: b("load_best_model_at_end", false),
        metric_for_best_model: s("metric_for_best_model"),
        greater_is_better: get("greater_is_better").and_then(Json::as_bool),
        seed: i("seed", 42) as u64,
        disable_tqdm: b("disable_tqdm", false),
        report_to,
        run_name: s("run_name"),
        dataloader_drop_last: b("dataloader_drop_last", false),
        restore_callback_states_from_checkpoint: b(
            "restore_callback_states_from_checkpoint",
            false,
        ),
    })
}
