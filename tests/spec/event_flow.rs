//! The event sequence of real training runs against the HF oracle: every
//! event, step, epoch, control flag and key, for the six `test_event_flow`
//! configurations of HF's test suite and the cases around them.

use crate::oracle::{trace_lines, Hf};
use crate::util::{assert_same_lines, Run};

/// Trains the regression task with `cfg` (plus `extra` flags and the stopper
/// when the config uses it) and compares the recorder's trace with the oracle.
fn check(test: &str, cfg: Hf, extra: &[&str]) -> crate::util::Done {
    let flags = cfg.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut run = Run::regression(test).args(&flags).args(extra);
    if let Some(at) = cfg.stop_at {
        run = run
            .plugin("stopper")
            .arg("--plugin_config")
            .arg(&format!("stopper.at_step={at}"));
    }
    if let Some(at) = cfg.epoch_stop_at {
        run = run.plugin("stopper").args(&[
            "--plugin_config",
            &format!("stopper.at_step={at}"),
            "--plugin_config",
            "stopper.mode=epoch",
        ]);
    }
    let done = run.ok();
    assert_same_lines(&cfg.expected(), &trace_lines(&done.events()));
    done
}

// The six configurations of HF's `test_event_flow` (spec §6.2).

#[test]
fn event_flow_defaults_saves_once_at_the_end() {
    let done = check("flow_defaults", Hf::default(), &[]);
    assert_eq!(done.events().len(), 107, "HF's default flow has 107 events");
    assert_eq!(done.checkpoints(), [24]);
}

#[test]
fn event_flow_logging_steps_5() {
    check(
        "flow_logging_5",
        Hf {
            logging_steps: 5.0,
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn event_flow_save_steps_5() {
    let done = check(
        "flow_save_5",
        Hf {
            save_steps: 5.0,
            ..Hf::default()
        },
        &[],
    );
    assert_eq!(done.checkpoints(), [5, 10, 15, 20, 24]);
}

#[test]
fn event_flow_eval_steps_5_includes_the_final_evaluation() {
    check(
        "flow_eval_5",
        Hf {
            eval_strategy: "steps",
            eval_steps: Some(5.0),
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn event_flow_eval_epoch() {
    check(
        "flow_eval_epoch",
        Hf {
            eval_strategy: "epoch",
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn event_flow_mixed_log_save_eval_steps() {
    let cfg = Hf {
        logging_steps: 3.0,
        save_steps: 10.0,
        eval_steps: Some(5.0),
        eval_strategy: "steps",
        ..Hf::default()
    };
    let done = check("flow_mixed", cfg, &[]);
    assert_eq!(done.checkpoints(), [10, 20, 24]);
}

// Around them (spec §6.4).

#[test]
fn gradient_accumulation_fires_substep_end_and_uneven_last_update() {
    let done = check(
        "flow_ga3",
        Hf {
            ga: 3,
            logging_steps: 2.0,
            ..Hf::default()
        },
        &[],
    );
    let substeps = done
        .events()
        .iter()
        .filter(|e| e["event"] == "on_substep_end")
        .count();
    assert_eq!(
        substeps,
        3 * (2 + 2 + 1),
        "updates of 3, 3 and 2 batches per epoch"
    );
}

#[test]
fn gradient_accumulation_with_epoch_evaluation() {
    check(
        "flow_ga3_eval",
        Hf {
            ga: 3,
            eval_strategy: "epoch",
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn logging_first_step_logs_after_step_one() {
    check(
        "flow_first_step",
        Hf {
            logging_first_step: true,
            logging_steps: 10.0,
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn logging_first_step_ignores_the_logging_strategy() {
    check(
        "flow_first_step_no",
        Hf {
            logging_first_step: true,
            logging_strategy: "no",
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn epoch_strategies_log_evaluate_and_save_at_epoch_end() {
    let cfg = Hf {
        logging_strategy: "epoch",
        eval_strategy: "epoch",
        save_strategy: "epoch",
        ..Hf::default()
    };
    let done = check("flow_epoch_all", cfg, &[]);
    assert_eq!(
        done.checkpoints(),
        [8, 16, 24],
        "one save per epoch, no double save at the end (HF #36203)"
    );
}

#[test]
fn eval_delay_skips_early_evaluations() {
    check(
        "flow_eval_delay",
        Hf {
            eval_strategy: "steps",
            eval_steps: Some(5.0),
            eval_delay: 12.0,
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn eval_delay_applies_to_epoch_evaluation() {
    check(
        "flow_eval_delay_epoch",
        Hf {
            eval_strategy: "epoch",
            eval_delay: 2.0,
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn max_steps_ends_mid_epoch_with_epoch_end() {
    let done = check(
        "flow_max_steps",
        Hf {
            max_steps: 10,
            logging_steps: 4.0,
            eval_strategy: "epoch",
            ..Hf::default()
        },
        &[],
    );
    assert_eq!(done.checkpoints(), [10]);
}

#[test]
fn max_steps_0_trains_one_update_as_hf() {
    // transformers 5.24 with `--max_steps 0` (only a negative value means
    // "by epochs"): one update at learning rate 0, the flow stops at its
    // step_end (global_step 1 >= max_steps 0) and saves checkpoint-1;
    // trainer_state.json has max_steps 0 and num_train_epochs 3.
    let done = check(
        "flow_max_steps_0",
        Hf {
            max_steps: 0,
            logging_steps: 1.0,
            ..Hf::default()
        },
        &[],
    );
    assert_eq!(done.checkpoints(), [1]);
    let state = done.state("checkpoint-1/trainer_state.json");
    assert_eq!(state["global_step"], 1);
    assert_eq!(state["max_steps"], 0);
    assert_eq!(state["num_train_epochs"], 3);
    assert_eq!(state["epoch"], 0.125);
    assert_eq!(state["log_history"][0]["learning_rate"], 0.0);
}

#[test]
fn save_steps_0_saves_only_at_the_end_as_hf() {
    let done = check(
        "flow_save_steps_0",
        Hf {
            save_steps: 0.0,
            ..Hf::default()
        },
        &[],
    );
    assert_eq!(done.checkpoints(), [24]);
    let state = done.state("checkpoint-24/trainer_state.json");
    assert_eq!(
        state["save_steps"], 0,
        "an int, as HF's compute_steps of a ratio"
    );
}

#[test]
fn ratio_steps_are_fractions_of_max_steps() {
    let cfg = Hf {
        logging_steps: 0.25,
        eval_steps: Some(0.5),
        eval_strategy: "steps",
        save_steps: 0.2,
        ..Hf::default()
    };
    let done = check("flow_ratios", cfg, &[]);
    assert_eq!(
        done.checkpoints(),
        [5, 10, 15, 20, 24],
        "save_steps 0.2 of 24 steps is every 5"
    );
}

#[test]
fn eval_on_start_evaluates_before_the_first_epoch() {
    check(
        "flow_eval_on_start",
        Hf {
            eval_on_start: true,
            eval_strategy: "epoch",
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn stop_requested_in_step_end_ends_training_after_that_step() {
    let done = check(
        "flow_stopper",
        Hf {
            stop_at: Some(5),
            logging_steps: 2.0,
            save_steps: 5.0,
            ..Hf::default()
        },
        &[],
    );
    let state = done.state("checkpoint-5/trainer_state.json");
    assert_eq!(state["global_step"], 5);
    assert_eq!(
        done.checkpoints(),
        [5],
        "the current step's save still happens"
    );
}

#[test]
fn epoch_stop_ends_only_the_current_epoch() {
    check(
        "flow_epoch_stop",
        Hf {
            epoch_stop_at: Some(3),
            ..Hf::default()
        },
        &[],
    );
}

#[test]
fn a_stop_once_requested_cannot_be_cleared_by_a_later_plugin() {
    let cfg = Hf {
        max_steps: 10,
        ..Hf::default()
    };
    let done = check(
        "flow_clear_stop",
        cfg,
        &[
            "--plugin",
            crate::util::plugin("stopper").to_str().unwrap(),
            "--plugin_config",
            "stopper.mode=clear",
        ],
    );
    assert!(
        done.stderr.contains("stopper tried to clear a stop flag"),
        "{}",
        done.stderr
    );
}
