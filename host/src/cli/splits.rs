//! What a run does after loading, as HF's example scripts (`run_clm.py`,
//! `run_glue.py`) do: train (`--do_train`), then evaluate (`--do_eval`),
//! then predict (`--do_predict`), each split's metrics printed by
//! `log_metrics` and saved by `save_metrics`.

use super::config::RunConfig;
use super::results;
use crate::state::Value;
use crate::tasks::files::Splits;
use crate::trainer::data::Dataset;
use crate::trainer::Trainer;
use anyhow::{bail, Result};
use std::path::Path;

/// Checks `--model` against `--task` and the dataset flags, and fills the
/// `do_*` arguments HF's scripts would be given: with `--model` and none of
/// them, train, and evaluate and predict where their files are given. Call
/// before `finish`, which then sets `do_eval` for any `eval_strategy` but
/// `no`, as HF's `__post_init__`.
pub fn choose(cfg: &mut RunConfig) -> Result<()> {
    if cfg.files.model.is_none() {
        if cfg.files.any() {
            bail!(
                "--train_file, --validation_file, --test_file and the other dataset flags need \
                 --model PATH (a TorchScript module); the built-in --task has its own data"
            );
        }
        return Ok(());
    }
    if cfg.task_given {
        bail!("--task and --model: give one (--task trains a built-in model, --model your own)");
    }
    let a = &mut cfg.args;
    if !(a.do_train || a.do_eval || a.do_predict) {
        a.do_train = true;
        a.do_eval = cfg.files.validation_file.is_some();
        a.do_predict = cfg.files.test_file.is_some();
    }
    Ok(())
}

/// The splits of a run, from its finished arguments: a built-in task only
/// trains (its evaluation follows `eval_strategy`); `--model` does what
/// `do_train`, `do_eval` and `do_predict` say.
pub fn of(cfg: &RunConfig) -> Splits {
    if cfg.files.model.is_none() {
        return Splits {
            train: true,
            eval: false,
            predict: false,
        };
    }
    let a = &cfg.args;
    Splits {
        train: a.do_train,
        eval: a.do_eval,
        predict: a.do_predict,
    }
}

/// Runs the splits after training has been set up: `train` (saving the
/// model and `trainer_state.json`), `evaluate`, `predict`. With
/// `write_results`, each split's metrics gain `{split}_samples` and are
/// printed and saved as HF's scripts do.
pub fn run(
    trainer: &mut Trainer,
    splits: Splits,
    samples: [usize; 3],
    test: Option<&dyn Dataset>,
    write_results: bool,
) -> Result<()> {
    let dir = trainer.args().output_dir.clone();
    let dir = Path::new(&dir);
    let save = |split: &str, mut metrics: crate::state::Logs, n: usize| -> Result<()> {
        if write_results {
            metrics.insert(format!("{split}_samples"), Value::Int(n as i64));
            results::log_metrics(split, &metrics);
            results::save_metrics(dir, split, &metrics)?;
        }
        Ok(())
    };
    if splits.train {
        let out = trainer.train()?;
        trainer.save_model_and_state()?;
        save("train", out.metrics, samples[0])?;
    }
    if splits.eval {
        let metrics = trainer.evaluate()?;
        save("eval", metrics, samples[1])?;
    }
    if let (true, Some(test)) = (splits.predict, test) {
        let out = trainer.predict(test, "predict")?;
        // --prediction_loss_only predicts no logits, as HF's (None).
        if write_results && !trainer.args().prediction_loss_only {
            results::save_predictions(dir, out.predictions.as_ref(), out.label_ids.as_ref())?;
        }
        save("predict", out.metrics, samples[2])?;
    }
    Ok(())
}
