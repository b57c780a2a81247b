//! The `Trainer`: HF's training loop over a tch model, with callbacks.
//!
//! `mod.rs` holds the public type and what is shared by the loop and the
//! evaluation (firing events, `log`); the loop itself is in `train.rs`,
//! evaluation in `eval.rs`, checkpoints in `checkpoint.rs`, the optimizers
//! of `--optim` in `optim/`, the schedules of `--lr_scheduler_type` in
//! `schedule/`, data order in `data.rs`,
//! `--fp16`'s loss scaling in `scaler.rs` (the device and the precision
//! are chosen by `crate::device`).
//! The trainer knows callbacks only through `CallbackHandler`: nothing here
//! knows that a callback may be a wasm plugin.
//!
//! ```no_run
//! # use trainbox::{Trainer, TrainingArguments, tasks};
//! # fn main() -> anyhow::Result<()> {
//! let task = tasks::regression::task(&Default::default())?;
//! let mut trainer = Trainer::builder(TrainingArguments::default(), task.model, task.train)
//!     .eval_dataset(task.eval)
//!     .build()?;
//! let out = trainer.train()?;
//! println!("trained {} steps, loss {}", out.global_step, out.training_loss);
//! # Ok(()) }
//! ```

mod checkpoint;
pub mod data;
mod eval;
pub mod loss_kwargs;
pub mod model;
pub mod optim;
mod prefetch;
mod ranks;
mod resume;
mod run;
mod runtime;
pub mod scaler;
pub mod schedule;
mod smoothing;
mod stop;
mod tokens;
mod train;

use crate::args::TrainingArguments;
use crate::callbacks::{Callback, CallbackHandler};
use crate::device::{Machine, Precision};
use crate::dist::World;
use crate::event::Event;
use crate::flow::DefaultFlowCallback;
use crate::state::{Logs, TrainerControl, TrainerState, Value};
use crate::view::RunView;
use anyhow::{anyhow, bail, Result};
use data::Dataset;
use model::Model;

pub use checkpoint::{get_last_checkpoint, CHECKPOINT_PREFIX};
pub(crate) use checkpoint::{TRAINER_STATE_FILE, TRAINING_ARGS_FILE};
pub use eval::PredictionOutput;
pub use runtime::{determinism_env, keep_freed_memory};
pub use stop::{Interrupted, StopRequest, StopSignal};

/// What `train()` returns, as HF's `TrainOutput`.
#[derive(Debug, Clone)]
pub struct TrainOutput {
    pub global_step: u64,
    pub training_loss: f64,
    /// The final summary entry (`train_runtime`, …, `train_loss`, `epoch`).
    pub metrics: Logs,
}

/// Collects what a [`Trainer`] needs; `build` fires `on_init_end`.
pub struct TrainerBuilder {
    args: TrainingArguments,
    model: Box<dyn Model>,
    train_data: Box<dyn Dataset>,
    eval_data: Option<Box<dyn Dataset>>,
    callbacks: Vec<Box<dyn Callback>>,
    view: RunView,
    stop: StopRequest,
    finish_after_train: bool,
    world: World,
    device: tch::Device,
    precision: Option<Precision>,
}

impl TrainerBuilder {
    /// The device to train on (by default the CPU; the command line picks
    /// it by HF's rule, [`crate::device::choose`]). The model is moved
    /// there when the trainer is built.
    pub fn device(mut self, device: tch::Device) -> Self {
        self.device = device;
        self
    }

    /// Forces the forward passes' precision, whatever `--bf16`/`--fp16`
    /// and the device say (HF's rule, [`Precision::of`], by default): e.g.
    /// float16 autocast with loss scaling on the CPU, which HF never runs.
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = Some(precision);
        self
    }

    /// The processes of a data-parallel run this trainer is one of (by
    /// default, a world of one).
    pub fn world(mut self, world: World) -> Self {
        self.world = world;
        self
    }

    /// Leaves the callbacks running after `train()`, for a program that
    /// evaluates or predicts afterwards (HF's example scripts); it then
    /// calls [`Trainer::finish`] itself.
    pub fn keep_callbacks_after_train(mut self) -> Self {
        self.finish_after_train = false;
        self
    }

    /// The data to evaluate on (required by any `eval_strategy` but `no`).
    pub fn eval_dataset(mut self, data: Box<dyn Dataset>) -> Self {
        self.eval_data = Some(data);
        self
    }

    /// Appends a callback; callbacks run in the order added, after
    /// `DefaultFlowCallback`.
    pub fn callback(mut self, callback: Box<dyn Callback>) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// Appends several callbacks.
    pub fn callbacks(mut self, callbacks: impl IntoIterator<Item = Box<dyn Callback>>) -> Self {
        self.callbacks.extend(callbacks);
        self
    }

    /// The view the callbacks read; pass the one given to the plugin sandbox.
    pub fn view(mut self, view: RunView) -> Self {
        self.view = view;
        self
    }

    /// The request that stops the run after the current optimizer step
    /// (the command line sets it on SIGINT and SIGTERM).
    pub fn stop_request(mut self, stop: StopRequest) -> Self {
        self.stop = stop;
        self
    }

    /// Validates the arguments, assembles the callback list and fires
    /// `on_init_end`. On error, the callbacks are told the run aborted.
    pub fn build(self) -> Result<Trainer> {
        let mut handler = CallbackHandler::default();
        handler.add(Box::new(DefaultFlowCallback));
        for cb in self.callbacks {
            handler.add(cb);
        }
        let mut args = self.args;
        let device = self.device;
        let mut model = self.model;
        let forced = self.precision;
        let mut precision = Precision::Float32;
        let checked = args
            .finish()
            .map_err(|e| anyhow!("invalid training arguments: {e}"))
            .and_then(|()| {
                let machine = Machine::current();
                precision = Precision::of(&args, device, machine)?;
                if forced.is_none() && args.fp16 && precision == Precision::Float32 {
                    crate::ui::warn(crate::device::FP16_ON_CPU);
                }
                crate::device::apply_tf32(args.tf32, machine)?;
                precision = forced.unwrap_or(precision);
                let on = crate::device::name(device);
                model
                    .to_device(device)
                    .map_err(|e| e.context(format!("moving the model to {on}")))?;
                if args.eval_strategy != crate::args::IntervalStrategy::No
                    && self.eval_data.is_none()
                {
                    bail!(
                        "--eval_strategy {} requires an evaluation dataset; the task has none",
                        args.eval_strategy
                    );
                }
                Ok(())
            });
        if let Err(e) = checked {
            handler.finish(&Err(format!("{e:#}")));
            return Err(e);
        }
        let state = TrainerState {
            is_world_process_zero: self.world.is_world_zero(),
            is_local_process_zero: self.world.is_local_zero(),
            ..TrainerState::default()
        };
        // The plugins read the state's own log history, never a copy.
        self.view.lock().log_history = state.log_history.share();
        let mut trainer = Trainer {
            world: self.world,
            args,
            model,
            device,
            precision,
            train_data: self.train_data,
            eval_data: self.eval_data,
            handler,
            state,
            control: TrainerControl::default(),
            view: self.view,
            stop: self.stop,
            last_checkpoint: None,
            finish_after_train: self.finish_after_train,
            finished: false,
        };
        if let Err(e) = trainer.fire(Event::InitEnd, &Logs::new()) {
            trainer.handler.finish(&Err(format!("{e:#}")));
            return Err(e);
        }
        Ok(trainer)
    }
}

/// HF's `Trainer`: trains `model` on `train_data`, firing every event to its
/// callbacks in list order.
pub struct Trainer {
    args: TrainingArguments,
    model: Box<dyn Model>,
    train_data: Box<dyn Dataset>,
    eval_data: Option<Box<dyn Dataset>>,
    handler: CallbackHandler,
    state: TrainerState,
    control: TrainerControl,
    view: RunView,
    stop: StopRequest,
    /// The newest checkpoint of the current run: saved, or resumed from.
    last_checkpoint: Option<std::path::PathBuf>,
    /// Whether `train()` ends with [`Trainer::finish`].
    finish_after_train: bool,
    finished: bool,
    /// This process and the others of a data-parallel run.
    world: World,
    /// Where the model, the batches and the optimizer state live.
    device: tch::Device,
    /// The forward passes' precision (`--bf16`, `--fp16`).
    precision: Precision,
}

impl Trainer {
    /// Starts building a trainer.
    pub fn builder(
        args: TrainingArguments,
        model: Box<dyn Model>,
        train_data: Box<dyn Dataset>,
    ) -> TrainerBuilder {
        TrainerBuilder {
            args,
            model,
            train_data,
            eval_data: None,
            callbacks: Vec::new(),
            view: RunView::default(),
            stop: StopRequest::default(),
            finish_after_train: true,
            world: World::single(),
            device: tch::Device::Cpu,
            precision: None,
        }
    }

    /// Tells every callback that the run is over, and how (once; later
    /// calls do nothing). `train()` calls it unless the builder was told
    /// [`TrainerBuilder::keep_callbacks_after_train`].
    pub fn finish(&mut self, outcome: &std::result::Result<(), String>) {
        if !self.finished {
            self.finished = true;
            self.handler.finish(outcome);
        }
    }

    /// The validated arguments.
    pub fn args(&self) -> &TrainingArguments {
        &self.args
    }

    /// The state of the last (or current) run.
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// The callbacks, in list order.
    pub fn callbacks(&self) -> impl Iterator<Item = &Box<dyn Callback>> {
        self.handler.callbacks()
    }

    /// The device the run trains on.
    pub fn device(&self) -> tch::Device {
        self.device
    }

    /// The precision of the forward passes.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// An autocast region for a forward pass, under `--bf16` / `--fp16`.
    fn autocast(&self) -> Result<Option<trainbox_torch_ext::amp::Autocast>> {
        self.precision
            .autocast_kind()
            .map(|kind| trainbox_torch_ext::amp::Autocast::enter(self.device, kind))
            .transpose()
            .map_err(|e| anyhow!("entering autocast: {e}"))
    }

    /// The model being trained.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// Fires one event through the handler; then, with several processes,
    /// the ranks agree on the control flags (see `ranks.rs`).
    fn fire(&mut self, event: Event, payload: &Logs) -> Result<()> {
        self.handler
            .call(event, &self.args, &self.state, &mut self.control, payload)?;
        self.agree_on_control(event)
    }

    /// This process's place among those of the run.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// HF's `log`: adds `epoch`, appends a copy with `step` to the history,
    /// then fires `on_log` with the entry.
    fn log(&mut self, mut logs: Logs) -> Result<Logs> {
        logs.insert("epoch", epoch_value(&self.state));
        self.add_tokens_seen(&mut logs);
        let mut entry = logs.clone();
        entry.insert("step", Value::Int(self.state.global_step as i64));
        // One push: the view shares this history.
        self.state.log_history.push(&entry);
        self.fire(Event::Log, &logs)?;
        Ok(logs)
    }
}

/// `state.epoch` as logged: the int 0 before any update, else a float.
fn epoch_value(state: &TrainerState) -> Value {
    if state.global_step == 0 && state.epoch == 0.0 {
        Value::Int(0)
    } else {
        Value::Float(state.epoch)
    }
}

/// Python's `round(x, digits)` for the speed metrics.
fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// HF's `speed_metrics(split, start, num_samples, num_steps)`.
fn speed_metrics(logs: &mut Logs, split: &str, runtime: f64, samples: f64, steps: f64) {
    logs.insert(
        format!("{split}_runtime"),
        Value::Float(round_to(runtime, 4)),
    );
    if runtime == 0.0 {
        return;
    }
    logs.insert(
        format!("{split}_samples_per_second"),
        Value::Float(round_to(samples / runtime, 3)),
    );
    logs.insert(
        format!("{split}_steps_per_second"),
        Value::Float(round_to(steps / runtime, 3)),
    );
}
