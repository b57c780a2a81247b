//! The `early-stopping` plugin against a simulation of HF's
//! `EarlyStoppingCallback`: the step it stops at, what it needs, and its
//! patience counter across a resume.

use crate::resume::{restoring, resuming, with_output};
use crate::util::Run;

/// HF's early stopping, simulated: the step at which training stops for
/// evaluations every `every` steps reporting `scores` (greater is better).
fn hf_early_stop_step(
    scores: &[f64],
    every: u64,
    patience: u32,
    threshold: f64,
    max_steps: u64,
) -> u64 {
    let (mut best, mut counter) = (None::<f64>, 0);
    for (k, v) in scores.iter().enumerate() {
        let step = every * (k as u64 + 1);
        if step > max_steps {
            break;
        }
        // EarlyStoppingCallback.on_evaluate runs before the trainer updates best_metric.
        let improved = best.is_none_or(|b| *v > b && (v - b).abs() > threshold);
        counter = if improved { 0 } else { counter + 1 };
        if counter >= patience {
            return step;
        }
        if best.is_none_or(|b| *v > b) {
            best = Some(*v);
        }
    }
    max_steps
}

const SCORES: &[f64] = &[
    0.5, 0.6, 0.61, 0.65, 0.64, 0.66, 0.66, 0.7, 0.69, 0.68, 0.67, 0.66,
];

fn early_stopping(test: &str, patience: u32, threshold: f64) -> Run {
    let scores: Vec<String> = SCORES.iter().map(|s| s.to_string()).collect();
    Run::command(test, &["train", "--task", "scripted", "--disable_tqdm"])
        .args(&[
            "--task_option",
            &format!("scores={}", scores.join(",")),
            "--task_option",
            "eval_every=2",
        ])
        .args(&[
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "2",
            "--metric_for_best_model",
            "score",
            "--save_steps",
            "4",
        ])
        .args(&[
            "--plugin_config",
            &format!("early-stopping.early_stopping_patience={patience}"),
        ])
        .args(&[
            "--plugin_config",
            &format!("early-stopping.early_stopping_threshold={threshold}"),
        ])
        .plugin("early-stopping")
        .plugin("recorder")
}

#[test]
fn early_stopping_ends_training_at_the_step_hf_predicts() {
    for (patience, threshold) in [(1, 0.0), (2, 0.0), (2, 0.02), (3, 0.0)] {
        let expected = hf_early_stop_step(SCORES, 2, patience, threshold, 24);
        let done = with_output(early_stopping(
            &format!("early_stop_{patience}_{threshold}"),
            patience,
            threshold,
        ))
        .ok();
        let state = done.state("trainer_state.json");
        assert_eq!(
            state["global_step"], expected,
            "patience {patience}, threshold {threshold}"
        );
        let last_step_end = done
            .events()
            .iter()
            .rev()
            .find(|e| e["event"] == "on_step_end")
            .unwrap()["global_step"]
            .clone();
        assert_eq!(last_step_end, expected);
    }
}

#[test]
fn early_stopping_needs_a_metric_and_an_evaluation() {
    let err = Run::regression("early_stop_no_metric")
        .plugin("early-stopping")
        .args(&["--eval_strategy", "epoch"])
        .fails();
    assert!(err.contains("requires metric_for_best_model"), "{err}");
    let err = Run::regression("early_stop_no_eval")
        .plugin("early-stopping")
        .args(&["--metric_for_best_model", "loss"])
        .fails();
    assert!(err.contains("requires an eval strategy"), "{err}");
}

#[test]
fn the_patience_counter_survives_a_resume() {
    // Patience 3, no threshold: the whole run stops at step 22; at the
    // checkpoint of step 20 the counter is 2.
    let expected = hf_early_stop_step(SCORES, 2, 3, 0.0, 24);
    let whole = with_output(early_stopping("resume_patience_whole", 3, 0.0)).ok();
    assert_eq!(whole.state("trainer_state.json")["global_step"], expected);
    let at = 20;
    let ckpt = whole.state(&format!("checkpoint-{at}/trainer_state.json"));
    let counter = &ckpt["stateful_callbacks"]["early-stopping"]["attributes"]
        ["early_stopping_patience_counter"];
    assert!(
        counter.as_u64().unwrap() > 0,
        "the checkpoint holds a running counter: {counter}"
    );

    let run = with_output(early_stopping("resume_patience", 3, 0.0));
    let restored = restoring(run, &whole, at).ok();
    assert_eq!(
        restored.state("trainer_state.json")["global_step"],
        expected,
        "stops where the whole run stopped"
    );

    let run = with_output(early_stopping("resume_patience_fresh", 3, 0.0));
    let fresh = resuming(run, &whole, at).ok();
    let fresh_step = fresh.state("trainer_state.json")["global_step"]
        .as_u64()
        .unwrap();
    assert!(
        fresh_step > expected,
        "without restoring, the counter restarts from zero ({fresh_step})"
    );
}

#[test]
fn resuming_an_early_stopped_run_does_not_train_again() {
    // Saving at every evaluation: the last checkpoint is written after the stop.
    let run =
        with_output(early_stopping("resume_early_stopped", 1, 0.0)).args(&["--save_steps", "2"]);
    let done = run.ok();
    let stopped = done.state("trainer_state.json")["global_step"]
        .as_u64()
        .unwrap();
    assert!(stopped < 24);
    let again = run.clone().args(&["--resume_from_checkpoint", "true"]).ok();
    assert!(again.stderr.contains("stopped early"), "{}", again.stderr);
    assert_eq!(again.state("trainer_state.json")["global_step"], stopped);
}
