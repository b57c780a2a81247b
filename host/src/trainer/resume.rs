//! Resuming from a checkpoint (spec §5.10), exactly: weights, optimizer state,
//! schedule position, the loss accumulated since the last log, and (with
//! `restore_callback_states_from_checkpoint`) the state of stateful plugins.
//!
//! Unlike HF, a checkpoint of a run that had finished, or had been stopped
//! early, is not trained again (HF #10290), and a stateful plugin unknown to
//! the checkpoint starts fresh with a warning instead of a crash. The loss
//! of the steps since the last log is carried over (HF drops it), so logs
//! after a resume equal those of a run in one go; and `train_loss` is the
//! mean over the steps whose loss the resumed call holds (HF divides the
//! loss since the resume by every step of the run, under-reporting it).
//! Everything is read and checked before anything is trained or written, so
//! a failed resume deletes or overwrites no checkpoint.

use super::checkpoint::{get_last_checkpoint, MODEL_FILE, OPTIMIZER_FILE, TRAINER_STATE_FILE};
use super::run::{read_loop_state, Run, LOOP_STATE_FILE};
use super::Trainer;
use crate::args::{ArgValue, OptimizerName, TrainingArguments};
use crate::pyjson::Json;
use crate::state::{TrainerControl, TrainerState};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl Trainer {
    /// The checkpoint named by `--resume_from_checkpoint`, if any: a folder,
    /// `true` for the latest `checkpoint-N` in `output_dir` (an error when
    /// there is none, as HF), or `last` for the latest if there is one.
    pub(super) fn resume_checkpoint(&self) -> Result<Option<PathBuf>> {
        let Some(value) = self.args.resume_from_checkpoint.as_deref() else {
            return Ok(None);
        };
        let dir = match value.to_ascii_lowercase().as_str() {
            "false" | "" => return Ok(None),
            // The latest checkpoint if there is one, else a fresh start: what
            // a run restarted by its launcher (torchrun's --max_restarts)
            // passes on every attempt.
            "last" => match get_last_checkpoint(Path::new(&self.args.output_dir))? {
                Some(dir) => dir,
                None => return Ok(None),
            },
            "true" => get_last_checkpoint(Path::new(&self.args.output_dir))?.ok_or_else(|| {
                anyhow!(
                    "--resume_from_checkpoint true: no valid checkpoint found in output directory ({}); \
                     train without it, or pass a checkpoint folder",
                    self.args.output_dir
                )
            })?,
            _ => PathBuf::from(value),
        };
        if !dir.is_dir() {
            bail!(
                "--resume_from_checkpoint {}: no such checkpoint folder",
                dir.display()
            );
        }
        if !dir.join(TRAINER_STATE_FILE).is_file() {
            bail!(
                "{}: not a checkpoint: it has no {TRAINER_STATE_FILE}",
                dir.display()
            );
        }
        Ok(Some(dir))
    }

    /// Loads a checkpoint into the model, the optimizer, the state and the
    /// loop. Returns the epoch to start and the batches of it to skip, or
    /// `None` when the checkpoint ends its run and there is nothing to train.
    pub(super) fn load_checkpoint(
        &mut self,
        dir: &Path,
        run: &mut Run,
        updates_per_epoch: u64,
    ) -> Result<Option<(u64, usize)>> {
        let state_file = dir.join(TRAINER_STATE_FILE);
        let loaded = TrainerState::load_from_json(&state_file)?;
        let model_file = dir.join(MODEL_FILE);
        if !model_file.is_file() {
            bail!(
                "{}: missing; the checkpoint is incomplete",
                model_file.display()
            );
        }
        refuse_model_only(dir)?;
        let loop_state = read_loop_state(dir, loaded.global_step)?;
        check_checkpoint_optimizer(dir, &self.args)?;
        let schedule_state = read_schedule_state(dir)?;
        let optimizer_file = dir.join(OPTIMIZER_FILE);
        let moments = if optimizer_file.is_file() {
            Some(
                tch::Tensor::read_safetensors(&optimizer_file).with_context(|| {
                    format!(
                        "reading {}: not a readable safetensors file",
                        optimizer_file.display()
                    )
                })?,
            )
        } else {
            None
        };
        let step = loop_state
            .as_ref()
            .map_or(loaded.global_step, |l| l.optimizer_step);

        let scaler_file = dir.join(super::scaler::SCALER_FILE);
        if let Some(scaler) = run.scaler.as_mut() {
            if scaler_file.is_file() {
                scaler.load(&scaler_file)?;
            } else if loaded.global_step > 0 {
                crate::ui::warn(&format!(
                    "{}: no loss-scaler state ({}); the --fp16 loss scale starts at {}",
                    dir.display(),
                    super::scaler::SCALER_FILE,
                    super::scaler::INIT_SCALE
                ));
            }
        }

        // Everything is read: now apply it.
        let schedule_file = dir.join(super::schedule::SCHEDULER_FILE);
        match &schedule_state {
            Some(state) if run.schedule.steps_on_metric() => run
                .schedule
                .load_state(state)
                .map_err(|e| anyhow!("{}: {e}", schedule_file.display()))?,
            None if run.schedule.steps_on_metric() && loaded.global_step > 0 => {
                crate::ui::warn(&format!(
                    "{}: no {} schedule state ({}); it starts again from --learning_rate",
                    dir.display(),
                    run.schedule.kind(),
                    super::schedule::SCHEDULER_FILE
                ))
            }
            _ => {}
        }
        self.load_weights(&model_file)?;
        match moments {
            Some(tensors) => run
                .optimizer
                .load_state_tensors(step, tensors)
                .map_err(|e| anyhow!("{}: {e}", optimizer_file.display()))?,
            None if loaded.global_step > 0 => {
                if run.optimizer.keeps_state() {
                    crate::ui::warn(&format!(
                        "{}: no optimizer state ({OPTIMIZER_FILE}); {} start from zero",
                        dir.display(),
                        run.optimizer.state_name()
                    ));
                }
                run.optimizer.load_state_tensors(0, Vec::new())?;
                run.optimizer.step = step;
            }
            None => {}
        }
        match &loop_state {
            Some(l) => {
                run.tr_loss = l.tr_loss;
                run.globalstep_last_logged = l.globalstep_last_logged;
                run.grad_norm = l.grad_norm;
                run.learning_rate = l.learning_rate;
            }
            None => {
                crate::ui::warn(&format!(
                    "{}: no {LOOP_STATE_FILE} (not written by trainbox); the loss since the last log starts from zero",
                    dir.display()
                ));
                run.globalstep_last_logged = loaded.global_step;
            }
        }
        run.start_step = loaded.global_step;
        // `train_loss` averages the steps whose loss this call has: those
        // since the last log before the checkpoint, carried in `tr_loss`.
        run.loss_from_step = run.globalstep_last_logged;
        self.warn_on_changed_intervals(&loaded);

        let finished = self.finished_reason(dir, &loaded, run.max_steps);
        self.state = loaded;
        // The checkpoint is world zero's: each rank is what it is.
        self.state.is_world_process_zero = self.world.is_world_zero();
        self.state.is_local_process_zero = self.world.is_local_zero();
        if let Some(best) = self.state.best_model_checkpoint.clone() {
            if !Path::new(&best).is_dir() {
                crate::ui::warn(&format!(
                    "best_model_checkpoint {best} no longer exists; the pointer is cleared"
                ));
                self.state.best_model_checkpoint = None;
            }
        }
        if self.args.restore_callback_states_from_checkpoint {
            let stored = self.state.stateful_callbacks.clone();
            self.restore_callback_states(&stored)
                .with_context(|| state_file.display().to_string())?;
        }
        if let Some(reason) = finished {
            crate::ui::info(&format!("{reason}; nothing to train"));
            return Ok(None);
        }
        let epochs_trained = self.state.global_step / updates_per_epoch;
        let skip = (self.state.global_step % updates_per_epoch) as usize
            * self.args.gradient_accumulation_steps as usize;
        crate::ui::info(&format!(
            "resuming from {} at step {} (epoch {epochs_trained}, skipping {skip} batches)",
            dir.display(),
            self.state.global_step
        ));
        Ok(Some((epochs_trained, skip)))
    }

    /// Why a checkpoint needs no more training, if it does not.
    fn finished_reason(&self, dir: &Path, loaded: &TrainerState, max_steps: u64) -> Option<String> {
        if loaded.global_step >= max_steps {
            return Some(format!(
                "{} is at step {} of a {max_steps}-step run; pass a larger --max_steps or --num_train_epochs to train on",
                dir.display(),
                loaded.global_step
            ));
        }
        let stopped = loaded
            .stateful_callbacks
            .get("TrainerControl")
            .and_then(TrainerControl::from_exportable)
            .is_some_and(|c| c.should_training_stop);
        (stopped && loaded.global_step < loaded.max_steps).then(|| {
            format!(
                "{} was written after training was stopped early (step {} of {})",
                dir.display(),
                loaded.global_step,
                loaded.max_steps
            )
        })
    }

    /// HF's `compare_trainer_and_checkpoint_args`: warn, the checkpoint wins.
    fn warn_on_changed_intervals(&self, loaded: &TrainerState) {
        let pairs = [
            (
                "logging_steps",
                Some(self.args.logging_steps),
                loaded.logging_steps.as_f64(),
            ),
            (
                "eval_steps",
                self.args.eval_steps,
                loaded.eval_steps.as_f64(),
            ),
            (
                "save_steps",
                Some(self.args.save_steps),
                loaded.save_steps.as_f64(),
            ),
        ];
        for (name, given, stored) in pairs {
            if let Some(given) = given.filter(|g| *g >= 1.0 && *g != stored) {
                crate::ui::warn(&format!(
                    "--{name} {given} differs from the checkpoint's {stored}; the checkpoint's value is used"
                ));
            }
        }
        if let Some(bs) = loaded
            .train_batch_size
            .filter(|b| *b != self.args.per_device_train_batch_size)
        {
            crate::ui::warn(&format!(
                "--per_device_train_batch_size {} differs from the checkpoint's {bs}",
                self.args.per_device_train_batch_size
            ));
        }
    }

    /// Gives each stateful callback its stored state: instances sharing a
    /// name take the stored list in order. A callback with no stored state
    /// starts fresh (warning); a stored name with no callback is ignored
    /// (warning). The order of the callbacks does not change.
    fn restore_callback_states(&mut self, stored: &BTreeMap<String, Json>) -> Result<()> {
        let mut used: BTreeMap<String, usize> = BTreeMap::new();
        for cb in self.handler.callbacks_mut() {
            if !cb.stateful() {
                continue;
            }
            let name = cb.name().to_string();
            let n = used.entry(name.clone()).or_default();
            let entry = crate::state::callback_states::instance(stored, &name, *n);
            *n += 1;
            match entry {
                Some(state) => cb.load_state(state)?,
                None => crate::ui::warn(&format!(
                    "plugin {name} (instance {n}) has no state in the checkpoint; it starts fresh"
                )),
            }
        }
        if let Some(control) = stored.get("TrainerControl") {
            self.control = TrainerControl::from_exportable(control).unwrap_or(self.control);
        }
        let unknown: Vec<&str> = stored
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "TrainerControl" && !used.contains_key(*k))
            .collect();
        if !unknown.is_empty() {
            crate::ui::warn(&format!(
                "checkpoint included callbacks not included in current configuration; ignoring: {}",
                unknown.join(", ")
            ));
        }
        Ok(())
    }
}
/// A checkpoint saved with `--save_only_model` holds the weights only
/// (HF: "prevents resuming training from the checkpoint"): resuming from
/// it is an error, where HF would silently restart the optimizer.
fn refuse_model_only(dir: &Path) -> Result<()> {
    let file = dir.join(super::checkpoint::TRAINING_ARGS_FILE);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(());
    };
    let model_only = Json::parse(&text)
        .ok()
        .and_then(|args| args.as_object()?.get("save_only_model")?.as_bool())
        .unwrap_or(false);
    if model_only && !dir.join(LOOP_STATE_FILE).is_file() {
        bail!(
            "{}: saved with --save_only_model (the weights only: no optimizer, scheduler or RNG \
             state), so training cannot resume from it; start a new run instead, or save \
             checkpoints without --save_only_model to resume",
            dir.display()
        );
    }
    Ok(())
}

/// The state of a metric-stepped schedule a checkpoint holds, if any.
fn read_schedule_state(dir: &Path) -> Result<Option<Json>> {
    let file = dir.join(super::schedule::SCHEDULER_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    Json::parse(&text).map(Some).map_err(|e| {
        anyhow!(
            "{}: corrupt: {e}; restore it from a copy, or delete it to restart the schedule",
            file.display()
        )
    })
}

/// Checks that a checkpoint was trained with the optimizer this run uses:
/// its `training_args.json` names its `--optim` (a trainbox checkpoint
/// written before `--optim` existed was AdamW's; one without the file, as
/// HF's, is not checked).
fn check_checkpoint_optimizer(dir: &Path, args: &TrainingArguments) -> Result<()> {
    let ours = args.optim.algorithm().map_err(|e| anyhow!(e))?;
    let file = dir.join(super::checkpoint::TRAINING_ARGS_FILE);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(());
    };
    let Ok(json) = Json::parse(&text) else {
        return Ok(());
    };
    let theirs = match json.as_object().and_then(|o| o.get("optim")) {
        None => OptimizerName::AdamwTorch,
        Some(v) => {
            OptimizerName::from_json(v).map_err(|e| anyhow!("{}: optim: {e}", file.display()))?
        }
    };
    let their_algorithm = theirs
        .algorithm()
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    if their_algorithm != ours {
        bail!(
            "{}: trained with --optim {theirs}, and this run has --optim {}: one optimizer's state cannot continue another's; resume with --optim {theirs}, or train from scratch in another --output_dir",
            dir.display(),
            args.optim
        );
    }
    Ok(())
}
