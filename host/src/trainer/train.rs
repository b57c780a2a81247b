//! The training loop: HF's `_inner_training_loop` and
//! `_maybe_log_save_evaluate`, event for event (spec §5.4-5.5).

use super::optim::Optimizer;
use super::run::Run;
use super::schedule::Schedule;
use super::{speed_metrics, TrainOutput, Trainer};
use crate::args::{SaveStrategy, TrainerStateExt};
use crate::event::Event;
use crate::state::{Logs, TrainerControl, TrainerState, Value};
use crate::view::TensorParameters;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

impl Trainer {
    /// Trains, as HF's `Trainer.train()`, and returns the final summary.
    /// However it ends, every callback's `finish` is called last.
    pub fn train(&mut self) -> Result<TrainOutput> {
        let result = self.train_inner();
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{e:#}")),
        };
        if self.finish_after_train || result.is_err() {
            self.finish(&outcome);
        }
        result
    }

    fn train_inner(&mut self) -> Result<TrainOutput> {
        tch::manual_seed(self.args.seed as i64);
        self.apply_full_determinism()?;
        if self.train_data.is_empty() {
            bail!("the training dataset is empty");
        }
        let train_bs = self.args.per_device_train_batch_size as usize;
        let ga = self.args.gradient_accumulation_steps as usize;
        // This rank's batches per epoch (all of them with one process).
        let n_batches = self.train_shard(0).len();
        if n_batches == 0 {
            bail!(
                "the training data ({} samples) makes no batch of {train_bs} with --dataloader_drop_last",
                self.train_data.len()
            );
        }
        let updates_per_epoch = n_batches.div_ceil(ga).max(1) as u64;
        // As HF, only a negative --max_steps means "by epochs"; 0 is a run of
        // one update (the flow stops at step_end once global_step >= 0), over
        // the epochs of --num_train_epochs.
        let (max_steps, num_train_epochs) = if self.args.max_steps > 0 {
            let max = self.args.max_steps as u64;
            (max, max.div_ceil(updates_per_epoch))
        } else if self.args.max_steps == 0 {
            (0, self.args.num_train_epochs.ceil() as u64)
        } else {
            let max = (self.args.num_train_epochs * updates_per_epoch as f64).ceil() as u64;
            (max, self.args.num_train_epochs.ceil() as u64)
        };

        if self.world.is_world_zero() {
            super::checkpoint::recover_interrupted_saves(Path::new(&self.args.output_dir))?;
        }
        self.world.barrier("finding the last checkpoint")?;
        let resume = self.resume_checkpoint()?;
        self.agree_on_resume(resume.as_deref())?;
        if let Some(ckpt) = &resume {
            self.model.restore(ckpt)?;
        }

        // _init_training_state: a fresh state, then the run's references.
        let mut state = TrainerState {
            train_batch_size: Some(train_bs as u32),
            is_world_process_zero: self.world.is_world_zero(),
            is_local_process_zero: self.world.is_local_zero(),
            ..Default::default()
        };
        state.compute_steps(&self.args, max_steps);
        self.state = state;
        self.refresh_stateful_callbacks()?;

        let params = self.model.parameters();
        // Every rank starts from rank 0's weights, as torch's DDP.
        // In one order on every rank (by name: a HashMap's order differs per process).
        let mut named: Vec<(String, tch::Tensor)> =
            self.model.var_store().variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let variables: Vec<tch::Tensor> = named.into_iter().map(|(_, t)| t).collect();
        self.world.broadcast_from_zero(&variables)?;
        let optimizer = Optimizer::from_args(
            &self.args,
            params
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect(),
            &|name| self.model.in_layer_norm(name),
        )?;
        let schedule = Schedule::new(
            self.args.lr_scheduler_type,
            self.args.learning_rate,
            self.args.warmup_steps_for(max_steps),
            max_steps,
            self.args.lr_scheduler_kwargs.as_ref(),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let mut run = Run {
            optimizer,
            schedule,
            scaler: self
                .precision
                .scales_loss()
                .then(|| super::scaler::GradScaler::new(self.device)),
            max_steps,
            tr_loss: 0.0,
            total_loss: 0.0,
            globalstep_last_logged: self.state.global_step,
            current_flos: 0.0,
            grad_norm: None,
            learning_rate: None,
            start_step: self.state.global_step,
            loss_from_step: self.state.global_step,
            started: Instant::now(),
            tokens_at_start: 0,
        };
        let (mut first_epoch, mut skip_batches) = (0, 0);
        self.last_checkpoint = resume.clone();
        if let Some(ckpt) = resume {
            let Some(at) = self.load_checkpoint(&ckpt, &mut run, updates_per_epoch)? else {
                return Ok(TrainOutput {
                    global_step: self.state.global_step,
                    training_loss: 0.0,
                    metrics: Logs::new(),
                });
            };
            (first_epoch, skip_batches) = at;
        }
        run.tokens_at_start = self.state.num_input_tokens_seen;
        // init_training_references: the current run's numbers win over the checkpoint's.
        self.state.max_steps = max_steps;
        self.state.num_train_epochs = num_train_epochs;
        self.state.train_batch_size = Some(train_bs as u32);
        {
            let mut view = self.view.lock();
            view.log_history = self.state.log_history.share();
            view.parameters = Box::new(TensorParameters(params));
            view.grad_norm = None;
            view.learning_rates = run.optimizer.group_learning_rates(self.current_lr(&run));
            view.train_batches = Some(n_batches as u32);
            view.eval_batches = self.eval_batches();
        }

        // A signal while the plugins loaded stops the run before it starts.
        self.stop_if_requested(&mut run)?;
        self.fire(Event::TrainBegin, &Logs::new())?;
        if self.args.eval_on_start {
            self.evaluate()?;
        }
        for epoch in first_epoch..num_train_epochs {
            let skip = if epoch == first_epoch {
                skip_batches
            } else {
                0
            };
            self.train_epoch(&mut run, epoch, n_batches, skip)?;
            if self.control.should_training_stop {
                break;
            }
        }
        self.finish_training(run)
    }

    /// One epoch: `on_epoch_begin`, its updates, `on_epoch_end`. The first
    /// `skip` batches (already trained before a resume) fire no event.
    fn train_epoch(
        &mut self,
        run: &mut Run,
        epoch: u64,
        n_batches: usize,
        skip: usize,
    ) -> Result<()> {
        let ga = self.args.gradient_accumulation_steps as usize;
        let batches = self.train_shard(epoch);
        self.fire(Event::EpochBegin, &Logs::new())?;
        let todo = &batches[skip.min(batches.len())..];
        // --dataloader_num_workers: the batches built ahead, in this order.
        let mut loader = super::prefetch::Loader::new(
            self.train_data.as_ref(),
            todo.to_vec(),
            self.args.dataloader_num_workers as usize,
            self.args.prefetch_factor(),
        );
        let mut step: isize = skip as isize - 1;
        'updates: for update in todo.chunks(ga) {
            // HF's get_batch_samples: a model that takes num_items_in_batch
            // has the update's batches built and counted before its first forward.
            let mut window = self.update_window(&mut loader, update.len())?;
            for i in 0..update.len() {
                step += 1;
                if (step as usize).is_multiple_of(ga) {
                    self.fire(Event::StepBegin, &Logs::new())?;
                    // Randomness inside the update (dropout, …) depends only on
                    // (seed, step), so a resumed run draws the same numbers.
                    tch::manual_seed(step_seed(self.args.seed, self.state.global_step));
                }
                self.micro_batch(run, &mut loader, &mut window, update.len())?;
                if i + 1 == update.len() {
                    self.optimizer_update(run, epoch, step as usize + 1, n_batches)?;
                } else {
                    self.fire(Event::SubstepEnd, &Logs::new())?;
                }
                if self.control.should_epoch_stop || self.control.should_training_stop {
                    break 'updates;
                }
            }
        }
        if step < 0 {
            crate::ui::warn(
                "there seems not to be a single sample in your epoch_iterator, stopping training",
            );
            self.control.should_training_stop = true;
        }
        self.fire(Event::EpochEnd, &Logs::new())?;
        self.maybe_log_save_evaluate(run)
    }

    /// Forward and backward of one micro-batch; accumulates its loss.
    /// A loss that is not one number is an error, not a panic.
    fn micro_batch(
        &mut self,
        run: &mut Run,
        loader: &mut super::prefetch::Loader,
        window: &mut super::loss_kwargs::Window,
        batches_in_update: usize,
    ) -> Result<()> {
        let (indices, batch) = window
            .next_batch(loader, self)
            .ok_or_else(|| anyhow::anyhow!("the epoch's batches ran out before its updates"))?;
        let indices = &indices[..];
        let at = || {
            format!(
                "training step {} (training samples {})",
                self.state.global_step + 1,
                sample_list(indices)
            )
        };
        let batch = batch.with_context(at)?.to_device(self.device);
        self.model.set_training(true)?;
        // The forward pass under autocast (--bf16, --fp16); backward outside it, as torch advises.
        let autocast = self.autocast()?;
        let num_items = window.num_items.as_ref();
        let loss = match num_items {
            Some(n) => self.training_loss(&super::loss_kwargs::with_num_items(&batch, n)),
            None => self.training_loss(&batch),
        }
        .with_context(at)?;
        let loss = self.scaled_for_update(loss, num_items, batches_in_update);
        drop(autocast);
        let step_loss = loss_value(&loss)?;
        let loss = match &run.scaler {
            Some(scaler) => scaler.scale_loss(&loss),
            None => loss,
        };
        loss.f_backward().map_err(|e| {
            anyhow::anyhow!(
                "the backward pass of the model's loss failed: {}",
                first_line(&e.to_string())
            )
        })?;
        if self.args.logging_nan_inf_filter && !step_loss.is_finite() {
            run.tr_loss +=
                run.tr_loss / (1 + self.state.global_step - run.globalstep_last_logged) as f64;
        } else {
            run.tr_loss += step_loss;
        }
        run.current_flos += self.model.flos(&batch);
        self.track_input_tokens(&batch)?;
        Ok(())
    }

    /// Clipping, the optimizer step and the schedule, then `on_step_end`.
    fn optimizer_update(
        &mut self,
        run: &mut Run,
        epoch: u64,
        batches_done: usize,
        n_batches: usize,
    ) -> Result<()> {
        // With several processes: every rank's gradients become their mean.
        if self.world.is_distributed() {
            run.optimizer.define_missing_gradients();
        }
        self.world.average_gradients(&run.optimizer.gradients())?;
        // --fp16: the gradients unscaled before clipping; an inf or a NaN
        // skips the step (and so the schedule, which follows the optimizer's steps).
        let overflow = match run.scaler.as_mut() {
            Some(scaler) => {
                scaler.unscale(&run.optimizer.gradients())?;
                scaler.found_inf()
            }
            None => false,
        };
        let grad_norm = run.optimizer.clip_grad_norm(self.args.max_grad_norm);
        run.grad_norm = Some(grad_norm);
        let lr = self.current_lr(run);
        {
            let mut view = self.view.lock();
            view.grad_norm = Some(grad_norm);
            view.learning_rates = run.optimizer.group_learning_rates(lr);
        }
        self.fire(Event::PreOptimizerStep, &Logs::new())?;
        if !overflow {
            run.optimizer.step(lr);
        }
        if let Some(scaler) = run.scaler.as_mut() {
            scaler.update()?;
        }
        self.fire(Event::OptimizerStep, &Logs::new())?;
        run.learning_rate = Some(lr);
        run.optimizer.zero_grad();
        self.state.global_step += 1;
        self.state.epoch = epoch as f64 + batches_done as f64 / n_batches as f64;
        self.fire(Event::StepEnd, &Logs::new())?;
        self.maybe_log_save_evaluate(run)?;
        self.die_if_injected();
        self.stop_if_requested(run)
    }

    /// The scheduled learning rate of the next update.
    fn current_lr(&self, run: &Run) -> f64 {
        run.schedule.lr(run.optimizer.step)
    }

    /// HF's `_maybe_log_save_evaluate`: log, evaluate, save, in that order.
    fn maybe_log_save_evaluate(&mut self, run: &mut Run) -> Result<()> {
        if self.control.should_log && self.state.global_step > run.globalstep_last_logged {
            let mut logs = Logs::new();
            let steps = (self.state.global_step - run.globalstep_last_logged) as f64;
            // The mean over the ranks, as HF's `_nested_gather(tr_loss).mean()`.
            run.tr_loss = self.mean_over_ranks("logging the loss", run.tr_loss)?;
            logs.insert("loss", Value::Float(run.tr_loss / steps));
            if let Some(norm) = run.grad_norm {
                logs.insert("grad_norm", Value::Float(norm));
            }
            let lr = run.learning_rate.unwrap_or_else(|| self.current_lr(run));
            logs.insert("learning_rate", Value::Float(lr));
            run.total_loss += run.tr_loss;
            run.tr_loss = 0.0;
            run.globalstep_last_logged = self.state.global_step;
            self.store_flos(run)?;
            self.add_token_speed(&mut logs, run);
            self.log(logs)?;
        }
        if self.control.should_evaluate {
            let metrics = self.evaluate()?;
            self.step_schedule_on_metric(&mut run.schedule, &metrics)?;
            let is_new_best = self.state.determine_best_metric(&self.args, &metrics)?;
            if self.args.save_strategy == SaveStrategy::Best {
                self.control.should_save = is_new_best;
            }
        }
        if self.control.should_save {
            self.store_flos(run)?;
            self.save_checkpoint(Some(run))?;
            self.last_checkpoint = Some(Path::new(&self.args.output_dir).join(format!(
                "{}-{}",
                super::CHECKPOINT_PREFIX,
                self.state.global_step
            )));
            self.fire(Event::Save, &Logs::new())?;
        }
        Ok(())
    }

    /// HF's `store_flos`: adds the operations since the last call, summed
    /// over the ranks, to `state.total_flos`.
    pub(super) fn store_flos(&mut self, run: &mut Run) -> Result<()> {
        let mut flos = [run.current_flos];
        self.world
            .sum("adding up the floating-point operations", &mut flos)?;
        self.state.total_flos += flos[0];
        run.current_flos = 0.0;
        Ok(())
    }

    /// The final summary log, the best model, `on_train_end`.
    fn finish_training(&mut self, mut run: Run) -> Result<TrainOutput> {
        let runtime = run.started.elapsed().as_secs_f64();
        // HF adds this rank's loss since the last log; the ranks' mean makes
        // every rank report the train_loss one process would.
        run.total_loss += self.mean_over_ranks("the final loss", run.tr_loss)?;
        let steps_with_loss = self.state.global_step.saturating_sub(run.loss_from_step);
        let train_loss = run.total_loss / steps_with_loss.max(1) as f64;
        let planned = run.max_steps.saturating_sub(run.start_step) as f64;
        // HF's total_train_batch_size: per device × accumulation × processes.
        let total_batch = f64::from(
            self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps,
        ) * self.world.size() as f64;
        let mut metrics = Logs::new();
        speed_metrics(
            &mut metrics,
            "train",
            runtime,
            planned * total_batch,
            planned,
        );
        self.store_flos(&mut run)?;
        metrics.insert("total_flos", Value::Float(self.state.total_flos));
        metrics.insert("train_loss", Value::Float(train_loss));
        let metrics = self.log(metrics)?;
        if self.args.load_best_model_at_end {
            self.load_best_model()?;
        }
        self.delete_all_but_best_checkpoint()?;
        // The learning curves at the end of training, saved or not (world
        // zero writes; the final save_model rewrites them beside the model).
        if self.world.is_world_zero() {
            crate::report::write_run_curves(
                std::path::Path::new(&self.args.output_dir),
                &self.state,
            );
        }
        self.fire(Event::TrainEnd, &Logs::new())?;
        Ok(TrainOutput {
            global_step: self.state.global_step,
            training_loss: train_loss,
            metrics,
        })
    }

    /// The control flags as they stand (for tests and embedding programs).
    pub fn control(&self) -> TrainerControl {
        self.control
    }
}

/// The number a model's loss holds. It must be a scalar (a 0-dim tensor;
/// a one-element tensor passes too, as torch's `backward` takes it); any other
/// shape is an error that names it, where `double_value` would panic.
pub(super) fn loss_value(loss: &tch::Tensor) -> Result<f64> {
    if loss.numel() != 1 {
        bail!(
            "the model returned a loss of shape {:?}; it must be a scalar (a 0-dim tensor): reduce it in `Model::loss`, e.g. with `.mean()`",
            loss.size()
        );
    }
    loss.f_double_value(&[]).map_err(|e| {
        anyhow::anyhow!(
            "the model returned a loss that is not a number: {}",
            first_line(&e.to_string())
        )
    })
}

/// A batch's sample indices for an error: the first few.
pub(super) fn sample_list(indices: &[i64]) -> String {
    let shown: Vec<String> = indices.iter().take(8).map(i64::to_string).collect();
    let more = if indices.len() > 8 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// The first line of a libtorch error (the rest is a C++ backtrace).
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim()
}

/// The torch seed of update `step`: SplitMix64 of (seed, step).
fn step_seed(seed: u64, step: u64) -> i64 {
    let mut rng = super::data::SplitMix64(seed ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03));
    (rng.next_u64() >> 1) as i64
}
