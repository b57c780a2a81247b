//! `trainbox:callback@0.1.0` (the frozen `wit/0.1.0/callback.wit`), served
//! by adapting it to the latest version: its types convert to and from the
//! latest's, and its imports are served by calling the latest's
//! (`host_v0_1_0.rs`; `views` has no `histogram` here). 0.1.0's types are the latest's less
//! what later versions added, so every conversion is total.

#![allow(missing_docs)]

use super::latest::{self, wit_views as new_views};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
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
    progress as old_progress, types as old, views as old_views,
};
pub use generated::{Callback, CallbackPre};
use latest::wit as new;

/// `From` between two fieldless enums with the same cases.
macro_rules! cases {
    ($fm:ident :: $ft:ident => $tm:ident :: $tt:ident { $($c:ident),* $(,)? }) => {
        impl From<$fm::$ft> for $tm::$tt {
            fn from(v: $fm::$ft) -> Self {
                match v {
                    $($fm::$ft::$c => $tm::$tt::$c,)*
                }
            }
        }
    };
}

/// `From` between two records with the same fields, each converted.
macro_rules! fields {
    ($fm:ident :: $ft:ident => $tm:ident :: $tt:ident { $($f:ident),* $(,)? }) => {
        impl From<$fm::$ft> for $tm::$tt {
            fn from(v: $fm::$ft) -> Self {
                $tm::$tt { $($f: v.$f.into(),)* }
            }
        }
    };
}

macro_rules! events {
    ($($from:ident => $to:ident),*) => {
        $(cases!($from::Event => $to::Event {
            InitEnd, TrainBegin, TrainEnd, EpochBegin, EpochEnd, StepBegin, SubstepEnd,
            PreOptimizerStep, OptimizerStep, StepEnd, Evaluate, Predict, PredictionStep, Save, Log,
        });)*
    };
}
events!(old => new, new => old);

macro_rules! controls {
    ($($from:ident => $to:ident),*) => {
        $(fields!($from::TrainerControl => $to::TrainerControl {
            should_training_stop, should_epoch_stop, should_save, should_evaluate, should_log,
        });)*
    };
}
controls!(old => new, new => old);

cases!(new::IntervalStrategy => old::IntervalStrategy { No, Steps, Epoch });
cases!(new::SaveStrategy => old::SaveStrategy { No, Steps, Epoch, Best });

fields!(new::TrainerState => old::TrainerState {
    epoch, global_step, max_steps, logging_steps, eval_steps, save_steps, train_batch_size,
    num_train_epochs, num_input_tokens_seen, total_flos, best_metric, best_global_step,
    best_model_checkpoint, is_local_process_zero, is_world_process_zero, is_hyper_param_search,
    trial_name,
});

fields!(new::TrainingArgs => old::TrainingArgs {
    output_dir, num_train_epochs, max_steps, per_device_train_batch_size,
    per_device_eval_batch_size, gradient_accumulation_steps, learning_rate, weight_decay,
    adam_beta1, adam_beta2, adam_epsilon, max_grad_norm, lr_scheduler_type, warmup_steps,
    warmup_ratio, logging_strategy, logging_steps, logging_first_step, logging_nan_inf_filter,
    eval_strategy, eval_steps, eval_delay, eval_on_start, save_strategy, save_steps,
    save_total_limit, load_best_model_at_end, metric_for_best_model, greater_is_better, seed,
    disable_tqdm, report_to, run_name, dataloader_drop_last,
    restore_callback_states_from_checkpoint,
});

fields!(new_views::TensorStats => old_views::TensorStats {
    numel, norm, mean, std, min, max, nonfinite,
});
fields!(new_views::DataloaderLengths => old_views::DataloaderLengths { train, eval });

impl From<new::Value> for old::Value {
    fn from(v: new::Value) -> Self {
        match v {
            new::Value::Float(f) => old::Value::Float(f),
            new::Value::Int(i) => old::Value::Int(i),
            new::Value::Text(s) => old::Value::Text(s),
            new::Value::Flag(b) => old::Value::Flag(b),
        }
    }
}

fields!(new::Entry => old::Entry { key, value });

fn old_entries(entries: &[new::Entry]) -> Vec<old::Entry> {
    entries.iter().cloned().map(Into::into).collect()
}

impl From<old::Capability> for new::Capability {
    fn from(c: old::Capability) -> Self {
        match c {
            old::Capability::ReadDir(p) => new::Capability::ReadDir(p),
            old::Capability::WriteDir(p) => new::Capability::WriteDir(p),
            old::Capability::Http(o) => new::Capability::Http(o),
            old::Capability::Env(v) => new::Capability::Env(v),
        }
    }
}

impl From<old::PluginInfo> for new::PluginInfo {
    fn from(i: old::PluginInfo) -> Self {
        new::PluginInfo {
            name: i.name,
            version: i.version,
            api_version: i.api_version,
            events: i.events.into_iter().map(Into::into).collect(),
            stateful: i.stateful,
            capabilities: i.capabilities.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&new::RunOutcome> for old::RunOutcome {
    fn from(o: &new::RunOutcome) -> Self {
        match o {
            new::RunOutcome::Completed => old::RunOutcome::Completed,
            new::RunOutcome::Aborted(why) => old::RunOutcome::Aborted(why.clone()),
        }
    }
}

/// The exports of a 0.1.0 plugin, in the latest's types.
pub(super) fn describe<T: Send>(
    b: &Callback,
    s: &mut wasmtime::Store<T>,
) -> wasmtime::Result<new::PluginInfo> {
    Ok(b.trainbox_callback_plugin().call_describe(s)?.into())
}

pub(super) fn configure<T: Send>(
    b: &Callback,
    s: &mut wasmtime::Store<T>,
    args: &new::TrainingArgs,
    config: &[(String, String)],
) -> wasmtime::Result<Result<(), String>> {
    let args = old::TrainingArgs::from(args.clone());
    b.trainbox_callback_plugin()
        .call_configure(s, &args, config)
}

pub(super) fn on_event<T: Send>(
    b: &Callback,
    s: &mut wasmtime::Store<T>,
    event: new::Event,
    state: &new::TrainerState,
    control: new::TrainerControl,
    payload: &[new::Entry],
) -> wasmtime::Result<new::TrainerControl> {
    let state = old::TrainerState::from(state.clone());
    let returned = b.trainbox_callback_plugin().call_on_event(
        s,
        event.into(),
        &state,
        control.into(),
        &old_entries(payload),
    )?;
    Ok(returned.into())
}

pub(super) fn finish<T: Send>(
    b: &Callback,
    s: &mut wasmtime::Store<T>,
    outcome: &new::RunOutcome,
) -> wasmtime::Result<()> {
    b.trainbox_callback_plugin().call_finish(s, &outcome.into())
}

/// What a store's data must serve for this version's imports.
pub trait Imports: old::Host + old_views::Host + old_progress::Host + Send + 'static {}
impl<T: old::Host + old_views::Host + old_progress::Host + Send + 'static> Imports for T {}
