//! The latest contract, `trainbox:callback@0.2.0` (`wit/callback.wit`): its
//! `bindgen!`, and the conversions between its types and the host's own.
//! The host works in these types; older versions convert to and from them
//! (`since_v0_1_0.rs`). Every match is exhaustive, so a new WIT event or
//! case does not compile until the host handles it.

#![allow(missing_docs)]

use crate::args::{IntervalStrategy, SaveStrategy, TrainingArguments};
use crate::event::Event;
use crate::state::{Logs, TrainerControl, TrainerState, Value};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "callback",
        imports: { default: trappable },
        with: {
            "trainbox:callback/views.log-history": crate::sandbox::resources::LogHistoryHandle,
            "trainbox:callback/views.model-stats": crate::sandbox::resources::ModelStatsHandle,
            "trainbox:callback/progress.bar": crate::sandbox::resources::BarHandle,
        },
    });
}

pub use generated::trainbox::callback::{
    progress as wit_progress, types as wit, views as wit_views,
};
pub use generated::{Callback, CallbackPre};

/// What a store's data must serve for this version's imports.
pub trait Imports: wit::Host + wit_views::Host + wit_progress::Host + Send + 'static {}
impl<T: wit::Host + wit_views::Host + wit_progress::Host + Send + 'static> Imports for T {}

impl From<wit::Event> for Event {
    fn from(e: wit::Event) -> Event {
        match e {
            wit::Event::InitEnd => Event::InitEnd,
            wit::Event::TrainBegin => Event::TrainBegin,
            wit::Event::TrainEnd => Event::TrainEnd,
            wit::Event::EpochBegin => Event::EpochBegin,
            wit::Event::EpochEnd => Event::EpochEnd,
            wit::Event::StepBegin => Event::StepBegin,
            wit::Event::SubstepEnd => Event::SubstepEnd,
            wit::Event::PreOptimizerStep => Event::PreOptimizerStep,
            wit::Event::OptimizerStep => Event::OptimizerStep,
            wit::Event::StepEnd => Event::StepEnd,
            wit::Event::Evaluate => Event::Evaluate,
            wit::Event::Predict => Event::Predict,
            wit::Event::PredictionStep => Event::PredictionStep,
            wit::Event::Save => Event::Save,
            wit::Event::Log => Event::Log,
        }
    }
}

impl From<Event> for wit::Event {
    fn from(e: Event) -> wit::Event {
        match e {
            Event::InitEnd => wit::Event::InitEnd,
            Event::TrainBegin => wit::Event::TrainBegin,
            Event::TrainEnd => wit::Event::TrainEnd,
            Event::EpochBegin => wit::Event::EpochBegin,
            Event::EpochEnd => wit::Event::EpochEnd,
            Event::StepBegin => wit::Event::StepBegin,
            Event::SubstepEnd => wit::Event::SubstepEnd,
            Event::PreOptimizerStep => wit::Event::PreOptimizerStep,
            Event::OptimizerStep => wit::Event::OptimizerStep,
            Event::StepEnd => wit::Event::StepEnd,
            Event::Evaluate => wit::Event::Evaluate,
            Event::Predict => wit::Event::Predict,
            Event::PredictionStep => wit::Event::PredictionStep,
            Event::Save => wit::Event::Save,
            Event::Log => wit::Event::Log,
        }
    }
}

impl From<TrainerControl> for wit::TrainerControl {
    fn from(c: TrainerControl) -> Self {
        wit::TrainerControl {
            should_training_stop: c.should_training_stop,
            should_epoch_stop: c.should_epoch_stop,
            should_save: c.should_save,
            should_evaluate: c.should_evaluate,
            should_log: c.should_log,
        }
    }
}

impl From<wit::TrainerControl> for TrainerControl {
    fn from(c: wit::TrainerControl) -> Self {
        TrainerControl {
            should_training_stop: c.should_training_stop,
            should_epoch_stop: c.should_epoch_stop,
            should_save: c.should_save,
            should_evaluate: c.should_evaluate,
            should_log: c.should_log,
        }
    }
}

impl From<&Value> for wit::Value {
    fn from(v: &Value) -> Self {
        match v {
            Value::Float(f) => wit::Value::Float(*f),
            Value::Int(i) => wit::Value::Int(*i),
            Value::Text(s) => wit::Value::Text(s.clone()),
            Value::Flag(b) => wit::Value::Flag(*b),
        }
    }
}

impl From<wit::Value> for Value {
    fn from(v: wit::Value) -> Self {
        match v {
            wit::Value::Float(f) => Value::Float(f),
            wit::Value::Int(i) => Value::Int(i),
            wit::Value::Text(s) => Value::Text(s),
            wit::Value::Flag(b) => Value::Flag(b),
        }
    }
}

/// A log entry or metrics set as WIT entries.
pub fn entries(logs: &Logs) -> Vec<wit::Entry> {
    logs.iter()
        .map(|(k, v)| wit::Entry {
            key: k.to_string(),
            value: v.into(),
        })
        .collect()
}

impl From<&TrainerState> for wit::TrainerState {
    fn from(s: &TrainerState) -> Self {
        wit::TrainerState {
            epoch: s.epoch,
            global_step: s.global_step,
            max_steps: s.max_steps,
            logging_steps: s.logging_steps.as_f64(),
            eval_steps: s.eval_steps.as_f64(),
            save_steps: s.save_steps.as_f64(),
            train_batch_size: s.train_batch_size,
            num_train_epochs: s.num_train_epochs,
            num_input_tokens_seen: s.num_input_tokens_seen,
            total_flos: s.total_flos,
            best_metric: s.best_metric,
            best_global_step: s.best_global_step,
            best_model_checkpoint: s.best_model_checkpoint.clone(),
            is_local_process_zero: s.is_local_process_zero,
            is_world_process_zero: s.is_world_process_zero,
            is_hyper_param_search: s.is_hyper_param_search,
            trial_name: s.trial_name.clone(),
        }
    }
}

impl From<IntervalStrategy> for wit::IntervalStrategy {
    fn from(s: IntervalStrategy) -> Self {
        match s {
            IntervalStrategy::No => wit::IntervalStrategy::No,
            IntervalStrategy::Steps => wit::IntervalStrategy::Steps,
            IntervalStrategy::Epoch => wit::IntervalStrategy::Epoch,
        }
    }
}

impl From<SaveStrategy> for wit::SaveStrategy {
    fn from(s: SaveStrategy) -> Self {
        match s {
            SaveStrategy::No => wit::SaveStrategy::No,
            SaveStrategy::Steps => wit::SaveStrategy::Steps,
            SaveStrategy::Epoch => wit::SaveStrategy::Epoch,
            SaveStrategy::Best => wit::SaveStrategy::Best,
        }
    }
}

impl From<&TrainingArguments> for wit::TrainingArgs {
    fn from(a: &TrainingArguments) -> Self {
        wit::TrainingArgs {
            output_dir: a.output_dir.clone(),
            num_train_epochs: a.num_train_epochs,
            max_steps: a.max_steps,
            per_device_train_batch_size: a.per_device_train_batch_size,
            per_device_eval_batch_size: a.per_device_eval_batch_size,
            gradient_accumulation_steps: a.gradient_accumulation_steps,
            learning_rate: a.learning_rate,
            weight_decay: a.weight_decay,
            adam_beta1: a.adam_beta1,
            adam_beta2: a.adam_beta2,
            adam_epsilon: a.adam_epsilon,
            max_grad_norm: a.max_grad_norm,
            lr_scheduler_type: a.lr_scheduler_type.as_str().to_string(),
            warmup_steps: a.warmup_steps,
            warmup_ratio: a.warmup_ratio,
            logging_strategy: a.logging_strategy.into(),
            logging_steps: a.logging_steps,
            logging_first_step: a.logging_first_step,
            logging_nan_inf_filter: a.logging_nan_inf_filter,
            eval_strategy: a.eval_strategy.into(),
            eval_steps: a.eval_steps,
            eval_delay: a.eval_delay,
            eval_on_start: a.eval_on_start,
            save_strategy: a.save_strategy.into(),
            save_steps: a.save_steps,
            save_total_limit: a.save_total_limit,
            load_best_model_at_end: a.load_best_model_at_end,
            metric_for_best_model: a.metric_for_best_model.clone(),
            greater_is_better: a.greater_is_better,
            seed: a.seed,
            disable_tqdm: a.disable_tqdm,
            report_to: a.report_to.clone(),
            run_name: a.run_name.clone(),
            dataloader_drop_last: a.dataloader_drop_last,
            restore_callback_states_from_checkpoint: a.restore_callback_states_from_checkpoint,
        }
    }
}
