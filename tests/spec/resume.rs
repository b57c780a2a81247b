//! Exact resume (spec §5.10): a run stopped and resumed equals a run in one
//! go; stateful plugins keep their state; bad checkpoints give one clear error and lose nothing.

use crate::util::{Done, Run};
use serde_json::Value;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `run`, resuming from a copy of `checkpoint-{step}` of the run `from`.
pub(crate) fn resuming(run: Run, from: &Done, step: u64) -> Run {
    let name = format!("checkpoint-{step}");
    copy_dir(&from.out.join(&name), &run.out().join(&name));
    run.args(&["--resume_from_checkpoint", "true"])
}

/// [`resuming`], restoring the stateful plugins' states too.
pub(crate) fn restoring(run: Run, from: &Done, step: u64) -> Run {
    resuming(run, from, step).arg("--restore_callback_states_from_checkpoint")
}

/// A state without the fields that measure time.
fn without_timing(mut state: Value) -> Value {
    for entry in state["log_history"].as_array_mut().unwrap() {
        let obj = entry.as_object_mut().unwrap();
        obj.retain(|k, _| !k.ends_with("_runtime") && !k.ends_with("_per_second"));
    }
    state
}

/// The recorder's events from the first `on_step_begin` after `step`, as
/// (event, global_step, epoch, keys) tuples.
fn events_after(done: &Done, step: u64) -> Vec<String> {
    let events = done.events();
    let start = events
        .iter()
        .position(|e| e["event"] == "on_step_begin" && e["global_step"].as_u64() == Some(step))
        .expect("a step_begin at the resume point");
    events[start..]
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e["event"],
                e["global_step"],
                e["epoch"],
                e["control"],
                e.get("log_keys")
                    .or(e.get("metric_keys"))
                    .unwrap_or(&Value::Null)
            )
        })
        .collect()
}

/// Trains `flags` in one go, and again from `checkpoint-{at}` of that run in
/// a fresh directory; asserts identical weights, optimizer state, log history
/// (timing aside) and events after the resume point. Returns both runs.
pub(crate) fn assert_resume_is_exact(
    test: &str,
    flags: &[&str],
    at: u64,
    last: u64,
) -> (Done, Done) {
    let whole = Run::regression(&format!("{test}_whole")).args(flags).ok();
    let resumed = resuming(
        Run::regression(&format!("{test}_resumed")).args(flags),
        &whole,
        at,
    )
    .ok();
    assert!(
        resumed.stderr.contains("resuming from"),
        "{}",
        resumed.stderr
    );
    let ckpt = format!("checkpoint-{last}");
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let a = std::fs::read(whole.out.join(&ckpt).join(file)).unwrap();
        let b = std::fs::read(resumed.out.join(&ckpt).join(file)).unwrap();
        assert!(
            a == b,
            "{ckpt}/{file} differs between the whole run and the resumed one"
        );
    }
    let a = without_timing(whole.state(&format!("{ckpt}/trainer_state.json")));
    let b = without_timing(resumed.state(&format!("{ckpt}/trainer_state.json")));
    assert_eq!(a, b, "trainer_state.json differs (timing fields aside)");
    assert_eq!(events_after(&whole, at), events_after(&resumed, at));
    (whole, resumed)
}

#[test]
fn resume_is_exact_with_gradient_accumulation_and_step_evaluation() {
    let flags = [
        "--gradient_accumulation_steps",
        "2",
        "--learning_rate",
        "0.05",
        "--weight_decay",
        "0.01",
        "--logging_steps",
        "4",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "4",
        "--save_steps",
        "6",
        "--lr_scheduler_type",
        "cosine",
        "--warmup_steps",
        "2",
    ];
    // 4 updates per epoch: checkpoint-6 is in the middle of the second epoch.
    let _ = assert_resume_is_exact("resume_ga", &flags, 6, 12);
}

#[test]
fn resume_is_exact_with_epoch_evaluation_and_a_log_interval_spanning_the_checkpoint() {
    let flags = [
        "--learning_rate",
        "0.05",
        "--logging_steps",
        "5",
        "--eval_strategy",
        "epoch",
        "--save_steps",
        "12",
    ];
    let (whole, resumed) = assert_resume_is_exact("resume_epoch_eval", &flags, 12, 24);

    // `train_loss` of the resumed run averages steps 11-24: the loss of 11
    // and 12 came in the checkpoint, with the log interval they belong to.
    let history = |done: &Done| {
        done.state("trainer_state.json")["log_history"]
            .as_array()
            .unwrap()
            .clone()
    };
    let (whole, resumed) = (history(&whole), history(&resumed));
    let loss_at = |step: u64| {
        whole
            .iter()
            .find(|e| e["step"] == step && e.get("loss").is_some())
            .unwrap()["loss"]
            .as_f64()
            .unwrap()
    };
    let train_loss = |log: &[Value]| log.last().unwrap()["train_loss"].as_f64().unwrap();
    let want = (24.0 * train_loss(&whole) - 5.0 * (loss_at(5) + loss_at(10))) / 14.0;
    let got = train_loss(&resumed);
    assert!(
        (got - want).abs() <= 1e-4 + 1e-3 * want.abs(),
        "train_loss after resume: {got}, the mean of steps 11-24 is {want}"
    );
}

#[test]
fn a_run_killed_while_saving_resumes_from_the_last_complete_checkpoint() {
    let flags = [
        "--learning_rate",
        "0.05",
        "--save_steps",
        "4",
        "--logging_steps",
        "3",
    ];
    let killed = Run::regression("resume_killed")
        .args(&flags)
        .env("TRAINBOX_FAULT_INJECT", "abort-in-save:12");
    let (ok, _, stderr) = killed.outcome();
    assert!(
        !ok,
        "the process was killed while writing checkpoint-12: {stderr}"
    );
    let out = killed.out();
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert!(
        names.contains(&".checkpoint-12.tmp".to_string()),
        "a half-written checkpoint: {names:?}"
    );
    assert!(
        !out.join("checkpoint-12").exists(),
        "never under its final name"
    );

    let resumed = killed
        .clone()
        .clear_env()
        .args(&["--resume_from_checkpoint", "true"]);
    let done = resumed.ok();
    assert!(
        done.stderr
            .contains(".checkpoint-12.tmp: removed, an unfinished save"),
        "the leftover is cleaned up first: {}",
        done.stderr
    );
    assert!(
        done.stderr.contains("checkpoint-8 at step 8"),
        "picks the last complete one: {}",
        done.stderr
    );
    assert_eq!(done.checkpoints(), [4, 8, 12, 16, 20, 24]);
    assert!(
        !out.join(".checkpoint-12.tmp").exists(),
        "the leftover is replaced"
    );
    let whole = Run::regression("resume_killed_whole").args(&flags).ok();
    let a = std::fs::read(whole.out.join("checkpoint-24/model.safetensors")).unwrap();
    let b = std::fs::read(done.out.join("checkpoint-24/model.safetensors")).unwrap();
    assert!(a == b, "the resumed run ends with the same weights");
}

#[test]
fn resuming_a_finished_run_does_not_train_again() {
    // HF #10290 resumes and trains again; trainbox does not.
    let first = Run::regression("resume_finished").args(&["--save_steps", "8"]);
    let done = first.ok();
    let steps_before = done
        .events()
        .iter()
        .filter(|e| e["event"] == "on_step_begin")
        .count();
    let again = first
        .clone()
        .args(&["--resume_from_checkpoint", "true"])
        .ok();
    assert!(
        again.stderr.contains("nothing to train"),
        "{}",
        again.stderr
    );
    let steps_after = again
        .events()
        .iter()
        .filter(|e| e["event"] == "on_step_begin")
        .count();
    assert_eq!(steps_before, steps_after);
    // With a longer run asked for, it trains on from the checkpoint.
    let longer =
        Run::regression("resume_finished_longer").args(&["--save_steps", "8", "--max_steps", "32"]);
    let longer = resuming(longer, &done, 24).ok();
    assert_eq!(longer.state("trainer_state.json")["global_step"], 32);
}

/// The run with `--output_dir` set to its own output folder.
pub(crate) fn with_output(run: Run) -> Run {
    let out = run.out();
    run.args(&["--output_dir", out.to_str().unwrap()])
}

#[test]
fn two_instances_restore_in_order_and_missing_or_extra_plugins_only_warn() {
    let scores = "scores=0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6";
    let base = |test: &str| {
        with_output(
            Run::command(
                test,
                &[
                    "train",
                    "--task",
                    "scripted",
                    "--disable_tqdm",
                    "--task_option",
                    scores,
                ],
            )
            .args(&[
                "--eval_strategy",
                "steps",
                "--eval_steps",
                "4",
                "--metric_for_best_model",
                "score",
                "--save_steps",
                "8",
            ]),
        )
    };
    let first = base("resume_two_instances")
        .plugin("early-stopping")
        .plugin("early-stopping")
        .ok();
    let path = first.out.join("checkpoint-8/trainer_state.json");
    let mut state: Value = crate::util::read_state(&path);
    let list = state["stateful_callbacks"]["early-stopping"]
        .as_array()
        .expect("two instances make a list")
        .clone();
    assert_eq!(
        list.len(),
        2,
        "one state per instance, not one per save (HF PR #33875)"
    );
    // Give the two instances distinct stored states.
    for (i, patience) in [(0, 5), (1, 7)] {
        state["stateful_callbacks"]["early-stopping"][i]["args"]["early_stopping_patience"] =
            patience.into();
    }
    std::fs::write(&path, serde_json::to_string_pretty(&state).unwrap()).unwrap();

    let done = restoring(base("resume_two_instances_b"), &first, 8)
        .plugin("early-stopping")
        .plugin("early-stopping")
        .ok();
    let after = done.state("checkpoint-16/trainer_state.json");
    let patience: Vec<u64> = after["stateful_callbacks"]["early-stopping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["args"]["early_stopping_patience"].as_u64().unwrap())
        .collect();
    assert_eq!(patience, [5, 7], "restored in order");

    // A plugin the checkpoint does not know starts fresh with a warning.
    let plain = base("resume_missing_plain").ok();
    let done = restoring(base("resume_missing"), &plain, 8)
        .plugin("early-stopping")
        .ok();
    assert!(
        done.stderr.contains(
            "early-stopping (instance 1) has no state in the checkpoint; it starts fresh"
        ),
        "{}",
        done.stderr
    );
    assert!(done.out.join("checkpoint-16").is_dir());

    // A stored state for a plugin not loaded now is reported and ignored.
    let done = restoring(base("resume_extra"), &first, 8).ok();
    assert!(
        done.stderr
            .contains("not included in current configuration; ignoring: early-stopping"),
        "{}",
        done.stderr
    );
}

/// Resuming from `checkpoint-8` after `damage` fails with `want` in the
/// message and leaves every checkpoint as it was.
fn assert_resume_fails(test: &str, damage: impl FnOnce(&Path), want: &str, extra: &[&str]) {
    let first = Run::regression(test).args(&["--save_steps", "8", "--max_steps", "16"]);
    let done = first.ok();
    let ckpt = done.out.join("checkpoint-8");
    damage(&ckpt);
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = (snapshot(&ckpt), snapshot(&done.out.join("checkpoint-16")));
    let again = first.clone().args(&[
        "--resume_from_checkpoint",
        ckpt.to_str().unwrap(),
        "--max_steps",
        "24",
    ]);
    let err = again
        .args(extra)
        .args(&["--restore_callback_states_from_checkpoint"])
        .fails();
    assert!(err.contains(want), "expected {want:?} in: {err}");
    assert!(
        err.contains("checkpoint-8"),
        "the error names the checkpoint: {err}"
    );
    assert_eq!(
        before,
        (snapshot(&ckpt), snapshot(&done.out.join("checkpoint-16"))),
        "nothing was changed"
    );
}

#[test]
fn bad_checkpoints_fail_clearly_and_lose_nothing() {
    assert_resume_fails(
        "resume_bad_state",
        |c| std::fs::write(c.join("trainer_state.json"), "{\"global_step\": 8,").unwrap(),
        "trainer_state.json: line 1",
        &[],
    );
    assert_resume_fails(
        "resume_no_model",
        |c| std::fs::remove_file(c.join("model.safetensors")).unwrap(),
        "model.safetensors: missing",
        &[],
    );
    assert_resume_fails(
        "resume_bad_model",
        |c| std::fs::write(c.join("model.safetensors"), b"garbage").unwrap(),
        "model.safetensors: not a readable safetensors file",
        &[],
    );
    assert_resume_fails(
        "resume_bad_optimizer",
        |c| std::fs::write(c.join("optimizer.safetensors"), b"garbage").unwrap(),
        "optimizer.safetensors: not a readable safetensors file",
        &[],
    );
    assert_resume_fails(
        "resume_bad_loop_state",
        |c| {
            let path = c.join("loop_state.json");
            let text = std::fs::read_to_string(&path).unwrap();
            let mut state: Value = serde_json::from_str(&text).unwrap();
            state["globalstep_last_logged"] = serde_json::json!(9000);
            std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
        },
        "loop_state.json: corrupt: globalstep_last_logged must be a step from 0 to the checkpoint's global_step 8",
        &[],
    );
    assert_resume_fails(
        "resume_rejected_state",
        |c| {
            let path = c.join("trainer_state.json");
            let mut state: Value = crate::util::read_state(&path);
            state["stateful_callbacks"]["stopper"] =
                serde_json::json!({"args": {}, "attributes": {}});
            state["stateful_callbacks"]["early-stopping"] =
                serde_json::json!({"args": {"early_stopping_patience": "many"}, "attributes": {}});
            std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
            // A rejected state is a fault: under `abort`, the resume stops.
            let run_dir = c.parent().unwrap().parent().unwrap();
            std::fs::write(
                run_dir.join("abort.toml"),
                "[plugins.early-stopping]\non_error = \"abort\"\n",
            )
            .unwrap();
        },
        "rejected its saved state",
        &[
            "--config",
            "abort.toml",
            "--plugin",
            crate::util::plugin("early-stopping").to_str().unwrap(),
            "--metric_for_best_model",
            "loss",
            "--eval_strategy",
            "steps",
        ],
    );
}

#[test]
fn trainer_state_from_other_transformers_versions_is_read() {
    let first =
        Run::regression("resume_versions").args(&["--save_steps", "8", "--max_steps", "16"]);
    let done = first.ok();
    let path = done.out.join("checkpoint-8/trainer_state.json");
    let mut state: Value = crate::util::read_state(&path);
    let obj = state.as_object_mut().unwrap();
    obj.insert("a_key_from_the_future".into(), 1.into()); // a newer transformers
    obj.remove("best_global_step"); // an older one
    obj.remove("stateful_callbacks");
    std::fs::write(&path, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    let again = first
        .clone()
        .args(&[
            "--resume_from_checkpoint",
            path.parent().unwrap().to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        again.state("checkpoint-16/trainer_state.json")["global_step"],
        16
    );
}
