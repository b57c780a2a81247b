//! `DefaultFlowCallback`: the policy that decides when to log, evaluate, save
//! and stop. The loop only obeys the flags; the decisions are here, as pure
//! functions of (args, state, control), so they are unit-tested in isolation.

use crate::args::{IntervalStrategy, SaveStrategy, TrainingArguments};
use crate::callbacks::{Callback, EventContext};
use crate::event::{Event, EventSet};
use crate::state::{TrainerControl, TrainerState};
use anyhow::Result;

/// HF's `DefaultFlowCallback`, always first in the list.
#[derive(Debug, Default)]
pub struct DefaultFlowCallback;

impl Callback for DefaultFlowCallback {
    fn name(&self) -> &str {
        "DefaultFlowCallback"
    }

    fn events(&self) -> EventSet {
        [Event::StepEnd, Event::EpochEnd].into_iter().collect()
    }

    fn on_event(
        &mut self,
        cx: &EventContext<'_>,
        mut control: TrainerControl,
    ) -> Result<TrainerControl> {
        match cx.event {
            Event::StepEnd => on_step_end(cx.args, cx.state, &mut control),
            Event::EpochEnd => on_epoch_end(cx.args, cx.state, &mut control),
            _ => {}
        }
        Ok(control)
    }
}

/// Multiple-of test on HF's step intervals (ints, or 1.0).
fn every(step: u64, interval: f64) -> bool {
    interval > 0.0 && (step as f64) % interval == 0.0
}

/// `on_step_end`: log, evaluate, save, and the end of training.
pub fn on_step_end(args: &TrainingArguments, state: &TrainerState, control: &mut TrainerControl) {
    let step = state.global_step;
    // Log (logging_first_step ignores the logging strategy, as HF).
    if step == 1 && args.logging_first_step {
        control.should_log = true;
    }
    if args.logging_strategy == IntervalStrategy::Steps && every(step, state.logging_steps.as_f64())
    {
        control.should_log = true;
    }
    // Evaluate
    let eval_steps = state.eval_steps.as_f64();
    if args.eval_strategy == IntervalStrategy::Steps
        && every(step, eval_steps)
        && args.eval_delay <= step as f64
    {
        control.should_evaluate = true;
    }
    // Save
    if args.save_strategy == SaveStrategy::Steps && every(step, state.save_steps.as_f64()) {
        control.should_save = true;
    }
    // End training
    if step >= state.max_steps {
        control.should_training_stop = true;
        // The final evaluation of HF 5.x (PR #44146), without a duplicate.
        if args.eval_strategy == IntervalStrategy::Steps
            && !every(step, eval_steps)
            && args.eval_delay <= step as f64
        {
            control.should_evaluate = true;
        }
        if args.save_strategy == SaveStrategy::Steps {
            control.should_save = true;
        }
    }
}

/// `on_epoch_end`: the epoch strategies.
pub fn on_epoch_end(args: &TrainingArguments, state: &TrainerState, control: &mut TrainerControl) {
    if args.logging_strategy == IntervalStrategy::Epoch {
        control.should_log = true;
    }
    if args.eval_strategy == IntervalStrategy::Epoch && args.eval_delay <= state.epoch {
        control.should_evaluate = true;
    }
    if args.save_strategy == SaveStrategy::Epoch {
        control.should_save = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Number;

    fn state(step: u64, max: u64) -> TrainerState {
        TrainerState {
            global_step: step,
            max_steps: max,
            logging_steps: Number::Int(5),
            eval_steps: Number::Int(5),
            save_steps: Number::Int(10),
            ..Default::default()
        }
    }

    fn step_end(args: &TrainingArguments, st: &TrainerState) -> TrainerControl {
        let mut c = TrainerControl::default();
        on_step_end(args, st, &mut c);
        c
    }

    #[test]
    fn logs_evaluates_and_saves_on_multiples() {
        let args = TrainingArguments {
            eval_strategy: IntervalStrategy::Steps,
            ..Default::default()
        };
        let c = step_end(&args, &state(10, 24));
        assert!(c.should_log && c.should_evaluate && c.should_save && !c.should_training_stop);
        let c = step_end(&args, &state(7, 24));
        assert_eq!(c, TrainerControl::default());
    }

    #[test]
    fn last_step_stops_saves_and_evaluates_once() {
        let args = TrainingArguments {
            eval_strategy: IntervalStrategy::Steps,
            ..Default::default()
        };
        let c = step_end(&args, &state(24, 24));
        assert!(c.should_training_stop && c.should_save && c.should_evaluate);
        let delayed = TrainingArguments {
            eval_delay: 30.0,
            ..args.clone()
        };
        assert!(!step_end(&delayed, &state(24, 24)).should_evaluate);
        let epoch_save = TrainingArguments {
            save_strategy: SaveStrategy::Epoch,
            ..args
        };
        assert!(
            !step_end(&epoch_save, &state(24, 24)).should_save,
            "no double save (HF #36203)"
        );
    }

    #[test]
    fn logging_first_step_ignores_the_strategy() {
        let args = TrainingArguments {
            logging_first_step: true,
            logging_strategy: IntervalStrategy::No,
            ..Default::default()
        };
        assert!(step_end(&args, &state(1, 24)).should_log);
    }

    #[test]
    fn epoch_end_follows_epoch_strategies_and_delay() {
        let args = TrainingArguments {
            logging_strategy: IntervalStrategy::Epoch,
            eval_strategy: IntervalStrategy::Epoch,
            save_strategy: SaveStrategy::Epoch,
            eval_delay: 2.0,
            ..Default::default()
        };
        let mut c = TrainerControl::default();
        on_epoch_end(
            &args,
            &TrainerState {
                epoch: 1.0,
                ..Default::default()
            },
            &mut c,
        );
        assert!(c.should_log && c.should_save && !c.should_evaluate);
        on_epoch_end(
            &args,
            &TrainerState {
                epoch: 2.0,
                ..Default::default()
            },
            &mut c,
        );
        assert!(c.should_evaluate);
    }
}
