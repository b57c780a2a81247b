//! HF's `WANDB_LOG_MODEL` artifacts: their names, aliases, metadata and
//! files, as `WandbCallback.setup`, `on_save` and `on_train_end` make them.
//! Checkpoints are read through the read-only grant of `output_dir` as
//! [`OUTPUT`]; the files are staged by `artifact`.

use crate::artifact::{Artifact, Stager};
use crate::run::{json_f64, Pair, Run};
use trainbox_sdk::python::float_repr;
use trainbox_sdk::{TrainerState, TrainingArgs};

/// Where `--report_to wandb` mounts `output_dir` (read-only) when
/// `WANDB_LOG_MODEL` asks for artifacts.
pub const OUTPUT: &str = "/output";

/// The files of the final model that trainbox's `save_model` writes in
/// `output_dir` (HF's `save_model` writes the model's weights there too).
const FINAL_FILES: &[&str] = &["model.safetensors", "model.pt"];

/// HF's `save_model_architecture_to_file`: `print(model)` for a
/// `PreTrainedModel`, else an empty file (trainbox's models are not).
const ARCHITECTURE: &str = "model_architecture.txt";

/// HF's artifact name: `model-<run id>`, or `model-<run_name>` when a run
/// name other than `output_dir` was given.
pub fn name(args: &TrainingArgs, run_id: &str) -> String {
    match &args.run_name {
        Some(n) if *n != args.output_dir => format!("model-{n}"),
        _ => format!("model-{run_id}"),
    }
}

/// A metadata dict as compact JSON text (`pairs` hold JSON values).
pub fn metadata_json(pairs: &[Pair]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Python's `round(x, 2)`: the nearest two-decimal value, ties to even on
/// the exact binary value (Rust's fixed-precision formatting rounds so).
pub fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// `wandb.config.get("model/num_parameters")` as JSON (`null` if unset).
fn num_parameters(count: Option<u64>) -> String {
    count.map_or("null".into(), |c| c.to_string())
}

/// `setup`'s initial artifact (alias `base_model`): the architecture file,
/// with `model_config` (none: not a `PreTrainedModel`), `num_parameters`
/// and `initial_model`.
pub fn log_base(
    run: &mut Run,
    stager: &Stager,
    args: &TrainingArgs,
    count: Option<u64>,
) -> Result<(), String> {
    let metadata = metadata_json(&[
        ("model_config".into(), "null".into()),
        ("num_parameters".into(), num_parameters(count)),
        ("initial_model".into(), "true".into()),
    ]);
    let mut artifact = Artifact::new(name(args, &run.id), "model", metadata);
    artifact.new_file(stager, ARCHITECTURE, b"")?;
    run.log_artifact(artifact, &["base_model".into()])
}

/// `on_save` with `WANDB_LOG_MODEL=checkpoint`: the folder
/// `checkpoint-<global_step>`, with the numeric summary and
/// `model/num_parameters`, aliases `epoch_<round(epoch, 2)>` and
/// `checkpoint_global_step_<step>`.
pub fn log_checkpoint(
    run: &mut Run,
    stager: &Stager,
    args: &TrainingArgs,
    state: &TrainerState,
    count: Option<u64>,
) -> Result<(), String> {
    let mut metadata = run.numeric_summary();
    metadata.push(("model/num_parameters".into(), num_parameters(count)));
    let mut artifact = Artifact::new(name(args, &run.id), "model", metadata_json(&metadata));
    artifact.add_dir(
        stager,
        &format!("{OUTPUT}/checkpoint-{}", state.global_step),
    )?;
    let aliases = [
        format!("epoch_{}", float_repr(round2(state.epoch))),
        format!("checkpoint_global_step_{}", state.global_step),
    ];
    run.log_artifact(artifact, &aliases)
}

/// `on_train_end`'s metadata, taken at train end: the numeric summary, or
/// with `load_best_model_at_end` the best metric, `train/total_floss` and
/// `model/num_parameters`; then `final_model`.
pub fn final_metadata(
    run: &Run,
    args: &TrainingArgs,
    state: &TrainerState,
    count: Option<u64>,
) -> String {
    let mut metadata = if args.load_best_model_at_end {
        let metric = args
            .metric_for_best_model
            .clone()
            .unwrap_or_else(|| "None".into());
        vec![
            (
                format!("eval/{metric}"),
                state.best_metric.map_or("null".into(), json_f64),
            ),
            ("train/total_floss".into(), json_f64(state.total_flos)),
            ("model/num_parameters".into(), num_parameters(count)),
        ]
    } else {
        run.numeric_summary()
    };
    metadata.push(("final_model".into(), "true".into()));
    metadata_json(&metadata)
}

/// The final model (alias `final_model`): the model files in `output_dir`,
/// which the host writes after `on_train_end`, and the architecture file.
pub fn log_final(
    run: &mut Run,
    stager: &Stager,
    args: &TrainingArgs,
    metadata: String,
) -> Result<(), String> {
    let mut artifact = Artifact::new(name(args, &run.id), "model", metadata);
    for file in FINAL_FILES {
        let path = format!("{OUTPUT}/{file}");
        if std::path::Path::new(&path).is_file() {
            artifact.add_file(stager, &path, file, true)?;
        }
    }
    artifact.new_file(stager, ARCHITECTURE, b"")?;
    run.log_artifact(artifact, &["final_model".into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round2_is_pythons_round() {
        // Python: round(0.125, 2) == 0.12, round(0.375, 2) == 0.38,
        // round(2.675, 2) == 2.67 (2.675 is below the tie in binary).
        assert_eq!(float_repr(round2(0.125)), "0.12");
        assert_eq!(float_repr(round2(0.375)), "0.38");
        assert_eq!(float_repr(round2(2.675)), "2.67");
        assert_eq!(float_repr(round2(1.0)), "1.0");
        assert_eq!(float_repr(round2(1.0 / 3.0)), "0.33");
    }

    #[test]
    fn metadata_is_compact_json() {
        let m = metadata_json(&[("a".into(), "1.5".into()), ("b\"".into(), "true".into())]);
        assert_eq!(m, r#"{"a":1.5,"b\"":true}"#);
    }
}
