//! Checkpoints: `checkpoint-N/` folders written atomically, the best-model
//! pointer, rotation by `save_total_limit`, and `stateful_callbacks`.
//!
//! A checkpoint is first written to a hidden temporary folder and renamed
//! into place when complete, so a run killed while saving leaves the
//! previous checkpoints intact and never a half-written `checkpoint-N`.

use super::run::{Run, LOOP_STATE_FILE};
use super::Trainer;
use crate::args::SaveStrategy;
use crate::atomic_file::{write_beside, TEMP_PREFIX};
use crate::view::TensorParameters;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// HF's `PREFIX_CHECKPOINT_DIR`.
pub const CHECKPOINT_PREFIX: &str = "checkpoint";

/// File names inside a checkpoint.
pub(crate) const MODEL_FILE: &str = "model.safetensors";
pub(crate) const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub(crate) const TRAINER_STATE_FILE: &str = "trainer_state.json";
pub(crate) const TRAINING_ARGS_FILE: &str = "training_args.json";

/// Whether `TRAINBOX_FAULT_INJECT=<kind>:N` (fault injection for tests)
/// asks for fault `kind` at `step` (the save of `checkpoint-<step>`, or
/// the end of update `step`). The variable is read once per process: the
/// loop asks after every step.
pub(super) fn injected(kind: &str, step: u64) -> bool {
    static SPEC: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| std::env::var("TRAINBOX_FAULT_INJECT").ok())
        .as_deref()
        .is_some_and(|spec| {
            spec.strip_prefix(kind)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|n| n.parse::<u64>().ok())
                == Some(step)
        })
}

/// `abort-in-save:N` kills the process half-way through writing
/// `checkpoint-N`, as a crash would.
fn abort_in_save(step: u64) {
    if injected("abort-in-save", step) {
        eprintln!("trainbox: TRAINBOX_FAULT_INJECT: aborting while writing checkpoint-{step}");
        std::process::abort();
    }
}

/// `fail-in-save:N` makes the save of `checkpoint-N` fail as a full disk
/// would, after its temporary folder was made.
fn fail_in_save(step: u64) -> Result<()> {
    if injected("fail-in-save", step) {
        return Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
            .context("TRAINBOX_FAULT_INJECT: failing the save");
    }
    Ok(())
}

/// Swaps a complete `tmp` folder into place as `target`; an older `target`
/// (from an earlier run) is moved to `old` and removed only once the new
/// one is in place, and put back if the new one cannot be.
fn swap_into_place(tmp: &Path, target: &Path, old: &Path) -> Result<()> {
    let replacing = target.exists();
    if replacing {
        std::fs::rename(target, old).with_context(|| format!("replacing {}", target.display()))?;
    }
    if let Err(e) = std::fs::rename(tmp, target) {
        if replacing {
            let _ = std::fs::rename(old, target);
        }
        return Err(e).with_context(|| format!("renaming into {}", target.display()));
    }
    // The new folder is in place: a leftover `old` is only clutter, which the
    // next run's `recover_interrupted_saves` removes.
    if replacing {
        if let Err(e) = std::fs::remove_dir_all(old) {
            crate::ui::warn(&format!("could not remove {}: {e}", old.display()));
        }
    }
    Ok(())
}

/// The checkpoint folders of `dir` as (step, path), sorted by step.
pub fn sorted_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        if entry.path().is_dir() {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Finishes or undoes the saves a killed run left in `dir`: a
/// `.checkpoint-N.old` whose `checkpoint-N` is missing is the only whole
/// copy and is put back; one beside its replacement is removed; every
/// `.checkpoint-N.tmp` (possibly incomplete) is removed.
pub fn recover_interrupted_saves(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let entries: Vec<std::fs::DirEntry> = entries.flatten().collect();
    // The final files' temporaries (`write_beside`), left by a kill.
    for e in &entries {
        let name = e.file_name();
        let is_temp = name.to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if is_temp && e.path().is_file() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let names: Vec<String> = entries
        .iter()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .collect();
    for name in names {
        let Some(hidden) = name
            .strip_prefix('.')
            .filter(|h| h.starts_with(CHECKPOINT_PREFIX))
        else {
            continue;
        };
        let path = dir.join(&name);
        if let Some(ckpt) = hidden.strip_suffix(".old") {
            let target = dir.join(ckpt);
            if target.exists() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            } else {
                std::fs::rename(&path, &target)
                    .with_context(|| format!("restoring {}", target.display()))?;
                crate::ui::warn(&format!(
                    "{}: restored from {name}, left by a run killed while saving",
                    target.display()
                ));
            }
        } else if hidden.ends_with(".tmp") {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
            crate::ui::warn(&format!(
                "{}: removed, an unfinished save of a killed run",
                path.display()
            ));
        }
    }
    Ok(())
}

/// HF's `get_last_checkpoint`: the checkpoint with the largest step.
pub fn get_last_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(sorted_checkpoints(dir)?.pop().map(|(_, p)| p))
}

impl Trainer {
    /// The checkpoint folder name of a step, as HF writes it in
    /// `best_model_checkpoint` (joined to `output_dir` as given).
    fn checkpoint_path(&self, step: u64) -> String {
        Path::new(&self.args.output_dir)
            .join(format!("{CHECKPOINT_PREFIX}-{step}"))
            .to_string_lossy()
            .into_owned()
    }

    /// Refreshes `state.stateful_callbacks` from the callbacks and the control:
    /// one entry per name, a list when several callbacks share a name.
    pub(super) fn refresh_stateful_callbacks(&mut self) -> Result<()> {
        let mut states = Vec::new();
        for cb in self.handler.callbacks_mut() {
            if let Some(state) = cb.save_state()? {
                states.push((cb.name().to_string(), state));
            }
        }
        states.push(("TrainerControl".into(), self.control.exportable_state()));
        self.state.stateful_callbacks = crate::state::callback_states::collect(states);
        Ok(())
    }

    /// HF's `_save_checkpoint`: weights, optimizer, best pointer, state, rotation.
    ///
    /// A save that fails for any reason (a full disk, too many open files,
    /// a plugin's `save-state` aborting the run) removes its
    /// `.checkpoint-N.tmp` and leaves the previous checkpoints as they were;
    /// the error names the checkpoint's folder and the cause.
    ///
    /// With several processes, world zero alone writes, after every rank
    /// has finished the step, and no rank goes on before it is written.
    pub(super) fn save_checkpoint(&mut self, run: Option<&Run>) -> Result<()> {
        self.world
            .barrier("waiting for every rank before a checkpoint")?;
        if self.world.is_world_zero() {
            self.write_and_rotate(run)?;
        }
        self.world
            .barrier("waiting for the checkpoint to be written")?;
        if !self.world.is_world_zero() {
            self.update_best_pointer();
        }
        Ok(())
    }

    /// Writes checkpoint-N whole (or nothing of it), then rotates.
    fn write_and_rotate(&mut self, run: Option<&Run>) -> Result<()> {
        let out_dir = PathBuf::from(&self.args.output_dir);
        let step = self.state.global_step;
        let name = format!("{CHECKPOINT_PREFIX}-{step}");
        let final_dir = out_dir.join(&name);
        let tmp_dir = out_dir.join(format!(".{name}.tmp"));
        let old_dir = out_dir.join(format!(".{name}.old"));
        let saved = self
            .write_checkpoint(&tmp_dir, &final_dir, run)
            .and_then(|()| swap_into_place(&tmp_dir, &final_dir, &old_dir));
        if let Err(err) = saved {
            let _ = std::fs::remove_dir_all(&tmp_dir);
            return Err(err.context(format!(
                "could not save {}; nothing of it was kept and the previous checkpoints in {} are intact",
                final_dir.display(),
                out_dir.display()
            )));
        }
        sync_dir(&out_dir);
        self.rotate_checkpoints()?;
        // The learning curves so far, beside the checkpoints (a warning at worst).
        crate::report::write_run_curves(&out_dir, &self.state);
        Ok(())
    }

    /// HF's pointer to the best checkpoint, as of a save at this step (every
    /// rank keeps it, though world zero alone writes the checkpoints).
    fn update_best_pointer(&mut self) {
        if !matches!(
            self.args.save_strategy,
            SaveStrategy::Steps | SaveStrategy::Epoch | SaveStrategy::Best
        ) {
            return;
        }
        let out_dir = PathBuf::from(&self.args.output_dir);
        let step = self.state.global_step;
        if let Some(best) = self.state.best_global_step.filter(|s| *s > 0) {
            if best == step || out_dir.join(format!("{CHECKPOINT_PREFIX}-{best}")).is_dir() {
                self.state.best_model_checkpoint = Some(self.checkpoint_path(best));
            }
        }
    }

    /// Writes a whole checkpoint into `tmp_dir` (named as `final_dir` in errors).
    fn write_checkpoint(
        &mut self,
        tmp_dir: &Path,
        final_dir: &Path,
        run: Option<&Run>,
    ) -> Result<()> {
        let step = self.state.global_step;
        if tmp_dir.exists() {
            std::fs::remove_dir_all(tmp_dir)
                .with_context(|| format!("removing {}", tmp_dir.display()))?;
        }
        std::fs::create_dir_all(tmp_dir)
            .with_context(|| format!("creating {}", tmp_dir.display()))?;
        fail_in_save(step)?;

        self.model
            .var_store()
            .save(tmp_dir.join(MODEL_FILE))
            .with_context(|| format!("writing {}", final_dir.join(MODEL_FILE).display()))?;
        if let Some(export) = self.model.export_file() {
            self.model
                .export(&tmp_dir.join(export))
                .with_context(|| format!("writing {}", final_dir.join(export).display()))?;
        }
        // The best-model pointer is updated after the weights, as HF does.
        self.update_best_pointer();
        abort_in_save(step);
        // --save_only_model: no optimizer, scaler or loop state (HF's
        // optimizer, scheduler and RNG files).
        if let Some(run) = run.filter(|_| !self.args.save_only_model) {
            let tensors = run.optimizer.state_tensors();
            if !tensors.is_empty() {
                tch::Tensor::write_safetensors(&tensors, tmp_dir.join(OPTIMIZER_FILE))
                    .with_context(|| {
                        format!("writing {}", final_dir.join(OPTIMIZER_FILE).display())
                    })?;
            }
            if let Some(state) = run.schedule.state() {
                let file = super::schedule::SCHEDULER_FILE;
                std::fs::write(tmp_dir.join(file), state.to_pretty() + "\n")
                    .with_context(|| format!("writing {}", final_dir.join(file).display()))?;
            }
            if let Some(scaler) = &run.scaler {
                let file = super::scaler::SCALER_FILE;
                scaler
                    .save(&tmp_dir.join(file))
                    .with_context(|| format!("writing {}", final_dir.join(file).display()))?;
            }
            let text = run.loop_state().to_pretty() + "\n";
            std::fs::write(tmp_dir.join(LOOP_STATE_FILE), text).with_context(|| {
                format!("writing {}", final_dir.join(LOOP_STATE_FILE).display())
            })?;
        }
        let args_text = self.args.to_json().to_pretty() + "\n";
        std::fs::write(tmp_dir.join(TRAINING_ARGS_FILE), args_text)
            .with_context(|| format!("writing {}", final_dir.join(TRAINING_ARGS_FILE).display()))?;
        self.refresh_stateful_callbacks()?;
        self.state.save_to_json(&tmp_dir.join(TRAINER_STATE_FILE))?;
        sync_dir(tmp_dir);
        Ok(())
    }

    /// HF's `_rotate_checkpoints`: keep the newest `save_total_limit`, never
    /// deleting the best one.
    fn rotate_checkpoints(&self) -> Result<()> {
        let Some(limit) = self.args.save_total_limit.filter(|l| *l > 0) else {
            return Ok(());
        };
        let mut sorted = sorted_checkpoints(Path::new(&self.args.output_dir))?;
        let best = self.best_checkpoint_step();
        // Move the best checkpoint to the second-newest place (HF's `_sorted_checkpoints`).
        if let Some(i) = best.and_then(|b| sorted.iter().position(|(s, _)| *s == b)) {
            let len = sorted.len();
            for j in i..len.saturating_sub(2) {
                sorted.swap(j, j + 1);
            }
        }
        let mut limit = limit as usize;
        if limit == 1 && best.is_some() && sorted.last().map(|(s, _)| *s) != best {
            limit = 2;
        }
        let excess = sorted.len().saturating_sub(limit);
        for (_, path) in sorted.into_iter().take(excess) {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("deleting old checkpoint {}", path.display()))?;
        }
        Ok(())
    }

    fn best_checkpoint_step(&self) -> Option<u64> {
        let best = self.state.best_model_checkpoint.as_ref()?;
        Path::new(best)
            .file_name()?
            .to_str()?
            .strip_prefix("checkpoint-")?
            .parse()
            .ok()
    }

    /// `load_best_model_at_end`: loads the best checkpoint's weights.
    pub(super) fn load_best_model(&mut self) -> Result<()> {
        let Some(best) = self.state.best_model_checkpoint.clone() else {
            return Ok(());
        };
        let file = Path::new(&best).join(MODEL_FILE);
        if !file.is_file() {
            crate::ui::warn(&format!(
                "could not load the best model: {} does not exist",
                file.display()
            ));
            return Ok(());
        }
        crate::ui::info(&format!(
            "Loading best model from {best} (score: {}).",
            self.state
                .best_metric
                .map_or("?".to_string(), |m| m.to_string())
        ));
        self.model.restore(Path::new(&best))?;
        self.load_weights(&file)?;
        // A restored module has new tensors: the plugins' views follow it.
        self.view.lock().parameters = Box::new(TensorParameters(self.model.parameters()));
        Ok(())
    }

    /// Loads weights from a safetensors file into the model, checking names and shapes.
    pub(crate) fn load_weights(&mut self, file: &Path) -> Result<()> {
        let tensors = tch::Tensor::read_safetensors(file).with_context(|| {
            format!(
                "reading {}: not a readable safetensors file",
                file.display()
            )
        })?;
        let tensors: BTreeMap<String, tch::Tensor> = tensors.into_iter().collect();
        let vars = self.model.var_store().variables();
        for (name, var) in &vars {
            let Some(saved) = tensors.get(name) else {
                bail!(
                    "{}: has no tensor {name:?}; it was written for another model",
                    file.display()
                );
            };
            if saved.size() != var.size() {
                bail!(
                    "{}: tensor {name:?} has shape {:?}, the model needs {:?}",
                    file.display(),
                    saved.size(),
                    var.size()
                );
            }
        }
        tch::no_grad(|| {
            for (name, mut var) in vars {
                var.copy_(&tensors[&name].to_device(var.device()).to_kind(var.kind()));
            }
        });
        Ok(())
    }

    /// HF's `save_model` + `save_state`: the model's weights
    /// (`model.safetensors`) and `trainer_state.json` in `output_dir`.
    /// With several processes, world zero alone writes them.
    pub fn save_model_and_state(&self) -> Result<()> {
        if self.world.is_world_zero() {
            self.write_model_and_state()?;
        }
        self.world
            .barrier("waiting for the final model to be written")
    }

    fn write_model_and_state(&self) -> Result<()> {
        let dir = Path::new(&self.args.output_dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // Each file is written beside its final name and renamed over it, so
        // a failed save leaves the previous file whole and no partial one.
        let model = dir.join(MODEL_FILE);
        write_beside(&model, |tmp| {
            self.model
                .var_store()
                .save(tmp)
                .with_context(|| format!("writing {}", model.display()))
        })?;
        if let Some(export) = self.model.export_file() {
            let file = dir.join(export);
            write_beside(&file, |tmp| {
                self.model
                    .export(tmp)
                    .with_context(|| format!("writing {}", file.display()))
            })?;
        }
        let state = dir.join(TRAINER_STATE_FILE);
        write_beside(&state, |tmp| self.state.save_to_json(tmp))?;
        crate::report::write_run_curves(dir, &self.state);
        Ok(())
    }

    /// With `save_total_limit == 1` and a best checkpoint, deletes every other
    /// checkpoint at the end of training.
    pub(super) fn delete_all_but_best_checkpoint(&self) -> Result<()> {
        if self.args.save_total_limit != Some(1) || !self.world.is_world_zero() {
            return Ok(());
        }
        let Some(best) = self.best_checkpoint_step() else {
            return Ok(());
        };
        for (step, path) in sorted_checkpoints(Path::new(&self.args.output_dir))? {
            if step != best {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("deleting {}", path.display()))?;
            }
        }
        Ok(())
    }
}

/// Flushes a directory's entries to disk (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_saves_are_restored_or_removed() {
        let dir = std::env::temp_dir().join(format!("trainbox-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mk = |name: &str| {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("marker"), name).unwrap();
        };
        // Killed between the two renames: the old copy is the only whole one.
        mk(".checkpoint-8.old");
        mk(".checkpoint-8.tmp");
        // Killed while removing the replaced copy.
        mk("checkpoint-4");
        mk(".checkpoint-4.old");
        // Not ours.
        mk(".cache.old");
        recover_interrupted_saves(&dir).unwrap();
        let marker = |name: &str| std::fs::read_to_string(dir.join(name).join("marker")).ok();
        assert_eq!(marker("checkpoint-8").as_deref(), Some(".checkpoint-8.old"));
        assert_eq!(marker("checkpoint-4").as_deref(), Some("checkpoint-4"));
        for gone in [
            ".checkpoint-8.old",
            ".checkpoint-8.tmp",
            ".checkpoint-4.old",
        ] {
            assert!(!dir.join(gone).exists(), "{gone}");
        }
        assert!(dir.join(".cache.old").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
