//! Data-parallel training under the real `torchrun` (Gloo on 127.0.0.1):
//! N processes × batch B train as one process × batch N·B, every rank
//! follows HF's event flow, world zero alone writes, the ranks agree on a
//! stop, runs resume with another world size, and a dead rank ends the run
//! (or, with `--max_restarts`, the group resumes from its last checkpoint).

use crate::util::{plugin, read_jsonl, read_state, Run};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tch::Tensor;

/// The demo's transformer, small: 192 training samples (a multiple of 2×4
/// and 3×4, so that no epoch ends unevenly), 40 evaluation samples (which
/// do not split evenly: the last rank's last batch is only filler).
fn sort_run(test: &str, batch: usize) -> Run {
    Run::command(test, &["train"])
        .args(&["--task", "sort", "--disable_tqdm"])
        .args(&[
            "--task_option",
            "train_size=192",
            "--task_option",
            "eval_size=40",
        ])
        .args(&["--task_option", "length=6", "--task_option", "d_model=32"])
        .args(&["--task_option", "layers=1", "--task_option", "heads=2"])
        .args(&[
            "--learning_rate",
            "1e-3",
            "--max_steps",
            "12",
            "--logging_steps",
            "2",
        ])
        .args(&[
            "--save_steps",
            "6",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "6",
        ])
        .args(&["--per_device_eval_batch_size", "8"])
        .args(&["--per_device_train_batch_size", &batch.to_string()])
        .plugin("recorder")
        // One thread per process, as torchrun sets it, so that one process
        // sums in the same order as each of several.
        .env("OMP_NUM_THREADS", "1")
}

fn with_output(run: Run) -> Run {
    let out = run.out();
    run.arg("--output_dir").arg(out.to_str().unwrap())
}

/// The final weights of a run, by name.
fn weights(out: &Path) -> Vec<(String, Tensor)> {
    let mut w = Tensor::read_safetensors(out.join("model.safetensors")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// Asserts that two runs' weights agree within `tol`, relative, tensor by tensor.
fn assert_same_weights(a: &Path, b: &Path, tol: f64) {
    let (wa, wb) = (weights(a), weights(b));
    assert_eq!(wa.len(), wb.len());
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb);
        // The keys' bias has no gradient (softmax ignores a shift of every
        // score): AdamW turns its rounding noise into full-size steps, in
        // any two runs that sum in another order. Its query and value
        // thirds are compared.
        let (ta, tb) = if na.ends_with("qkv.bias") {
            let d = ta.size()[0] / 3;
            let qv = |t: &Tensor| Tensor::cat(&[t.narrow(0, 0, d), t.narrow(0, 2 * d, d)], 0);
            (qv(ta), qv(tb))
        } else {
            (ta.shallow_clone(), tb.shallow_clone())
        };
        let (ta, tb) = (&ta, &tb);
        let diff = (ta - tb).norm().double_value(&[]);
        let scale = tb.norm().double_value(&[]).max(1e-12);
        assert!(
            diff / scale < tol,
            "{na}: relative difference {} between {} and {}",
            diff / scale,
            a.display(),
            b.display()
        );
    }
}

/// The numbers of the log history that do not measure time.
fn logged(out: &Path) -> Vec<(String, f64)> {
    let state = read_state(&out.join("trainer_state.json"));
    let mut numbers = Vec::new();
    for entry in state["log_history"].as_array().unwrap() {
        for (k, v) in entry.as_object().unwrap() {
            if k.ends_with("_runtime") || k.ends_with("_per_second") {
                continue;
            }
            if let Some(x) = v.as_f64() {
                numbers.push((format!("{}@{}", k, entry["step"]), x));
            }
        }
    }
    numbers
}

/// Asserts that two runs logged the same numbers; a resumed run's
/// `train_loss` (the mean of the steps it trained itself, as HF) is left out.
fn assert_same_logs(a: &Path, b: &Path) {
    let resumed = |l: &Vec<(String, f64)>| -> Vec<(String, f64)> {
        l.iter()
            .filter(|e| !e.0.starts_with("train_loss"))
            .cloned()
            .collect()
    };
    let (la, lb) = (logged(a), logged(b));
    let (la, lb) = if a.parent().unwrap().ends_with("ddp_resume_one")
        || a.parent().unwrap().ends_with("ddp_restart")
    {
        (resumed(&la), resumed(&lb))
    } else {
        (la, lb)
    };
    assert_eq!(
        la.iter().map(|l| &l.0).collect::<Vec<_>>(),
        lb.iter().map(|l| &l.0).collect::<Vec<_>>()
    );
    for ((k, x), (_, y)) in la.iter().zip(&lb) {
        assert!(
            (x - y).abs() <= 1e-5 * y.abs().max(1e-3),
            "{k}: {x} with several processes, {y} with one"
        );
    }
}

/// (event, global_step) of each event a recorder saw.
fn flow(events: &Path) -> Vec<(String, u64)> {
    read_jsonl(events)
        .iter()
        .map(|e: &Value| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["global_step"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn checkpoints(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint-") || n.contains(".tmp"))
        .collect();
    names.sort();
    names
}

#[test]
fn n_processes_with_batch_b_train_as_one_with_batch_n_times_b() {
    let one = with_output(sort_run("ddp_one_8", 8)).ok();
    let two = with_output(sort_run("ddp_two_4", 4).torchrun(2, &[])).ok();
    assert_same_weights(&two.out, &one.out, 1e-5);
    assert_same_logs(&two.out, &one.out);
    // Evaluation is gathered: the 40 samples counted once each.
    let evals: Vec<(String, f64)> = logged(&two.out)
        .into_iter()
        .filter(|l| l.0.starts_with("eval_loss"))
        .collect();
    assert_eq!(evals.len(), 2, "two evaluations: {evals:?}");

    // Every rank fires HF's event flow, the same as one process but for
    // the evaluation batches: 3 of the 5 on each rank.
    // (the events with each evaluation's prediction steps as one, the
    // number of prediction steps of each evaluation)
    let batches_of = |events: Vec<(String, u64)>| {
        let mut folded: Vec<(String, u64)> = Vec::new();
        let mut counts = Vec::new();
        for e in events {
            let again = e.0 == "on_prediction_step" && folded.last() == Some(&e);
            if again {
                *counts.last_mut().unwrap() += 1;
                continue;
            }
            if e.0 == "on_prediction_step" {
                counts.push(1);
            }
            folded.push(e);
        }
        (folded, counts)
    };
    let (single, single_batches) = batches_of(flow(&one.out.join("plugins/recorder/events.jsonl")));
    assert_eq!(single_batches, [5, 5]);
    for dir in ["recorder", "recorder@rank1"] {
        let (events, batches) = batches_of(flow(
            &two.out.join("plugins").join(dir).join("events.jsonl"),
        ));
        assert_eq!(events, single, "{dir}");
        assert_eq!(batches, [3, 3], "{dir}");
    }
    // World zero alone wrote the checkpoints, each once and whole.
    assert_eq!(checkpoints(&two.out), ["checkpoint-12", "checkpoint-6"]);
    crate::util::assert_checkpoint_whole(&two.out.join("checkpoint-6"));
    let state = read_state(&two.out.join("trainer_state.json"));
    assert_eq!(state["is_world_process_zero"], true);
    // The summary counts the whole batch of every process.
    let summary = state["log_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let per_step = summary["train_samples_per_second"].as_f64().unwrap()
        / summary["train_steps_per_second"].as_f64().unwrap();
    assert!(
        (per_step - 8.0).abs() < 0.1,
        "2 × 4 samples a step: {summary}"
    );

    // With gradient accumulation, the micro-batches exchange nothing and
    // the update's mean is still the whole batch's.
    let accumulate =
        |run: Run| run.args(&["--gradient_accumulation_steps", "2", "--max_steps", "6"]);
    let one_ga = with_output(accumulate(sort_run("ddp_one_8_ga", 8))).ok();
    let two_ga = with_output(accumulate(sort_run("ddp_two_4_ga", 4)).torchrun(2, &[])).ok();
    assert_same_weights(&two_ga.out, &one_ga.out, 1e-5);
    assert_same_logs(&two_ga.out, &one_ga.out);

    let three = with_output(sort_run("ddp_three_4", 4).torchrun(3, &[])).ok();
    let one12 = with_output(sort_run("ddp_one_12", 12)).ok();
    assert_same_weights(&three.out, &one12.out, 1e-5);
    assert_same_logs(&three.out, &one12.out);
    assert!(three
        .out
        .join("plugins/recorder@rank2/events.jsonl")
        .is_file());
}

#[test]
fn a_stop_a_plugin_asks_for_on_rank_1_only_stops_every_rank_at_that_step() {
    let run = with_output(sort_run("ddp_stop_rank1", 4).torchrun(2, &[]))
        .plugin("stopper")
        .args(&[
            "--plugin_config",
            "stopper.at_step=3",
            "--plugin_config",
            "stopper.on=others",
        ]);
    let done = run.ok();
    for dir in ["recorder", "recorder@rank1"] {
        let events = flow(&done.out.join("plugins").join(dir).join("events.jsonl"));
        let last_step = events.iter().map(|e| e.1).max().unwrap();
        assert_eq!(last_step, 3, "{dir} trained past the stop");
        assert_eq!(events.last().unwrap().0, "on_train_end", "{dir}");
    }
    let state = read_state(&done.out.join("trainer_state.json"));
    assert_eq!(state["global_step"], 3);
}

#[test]
fn a_two_process_run_resumes_with_one_and_with_three_processes() {
    let two = with_output(sort_run("ddp_resume_from", 4).torchrun(2, &[])).ok();
    let copy = |run: &Run| {
        let to = run.out().join("checkpoint-6");
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(two.out.join("checkpoint-6"))
            .unwrap()
            .flatten()
        {
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    };
    // One process with the whole batch continues the two-process run exactly.
    let one = with_output(sort_run("ddp_resume_one", 8));
    copy(&one);
    let one = one.args(&["--resume_from_checkpoint", "true"]).ok();
    assert_same_weights(&one.out, &two.out, 1e-5);
    assert_same_logs(&one.out, &two.out);
    // Three processes resume too (a larger batch from step 6 on).
    let three = with_output(sort_run("ddp_resume_three", 4).torchrun(3, &[]));
    copy(&three);
    let three = three.args(&["--resume_from_checkpoint", "last"]).ok();
    // The ranks stay what they are after loading world zero's state: only
    // world zero's printer prints.
    assert!(three.stdout.contains("[printer]"), "{}", three.stdout);
    assert!(!three.stdout.contains("@rank"), "{}", three.stdout);
    let state = read_state(&three.out.join("trainer_state.json"));
    assert_eq!(state["global_step"], 12);
    let events = flow(&three.out.join("plugins/recorder@rank2/events.jsonl"));
    let begin = events.iter().find(|e| e.0 == "on_train_begin").unwrap();
    assert_eq!(begin.1, 6, "rank 2 starts at the checkpoint");
    assert_eq!(events.iter().filter(|e| e.0 == "on_step_end").count(), 6);
}

/// Port 0 is not allowed for MASTER_PORT: a port free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `run` as ranks 0 and 1 of a world of 2, started by hand with
/// torch's variables (no launcher to stop the others); their outputs, in
/// rank order, and how long until rank 0 ended.
fn by_hand(run: &Run) -> (Vec<std::process::Output>, Duration) {
    let port = free_port().to_string();
    let started = Instant::now();
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            run.command_line()
                .env("WORLD_SIZE", "2")
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ranks = ranks.into_iter();
    let zero = ranks.next().unwrap().wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let one = ranks.next().unwrap().wait_with_output().unwrap();
    (vec![zero, one], elapsed)
}

#[test]
fn a_rank_that_dies_ends_the_others_with_an_error_in_bounded_time() {
    // Rank 1 dies with SIGKILL after step 3.
    let run = with_output(sort_run("ddp_dead_rank", 4))
        .args(&["--ddp_timeout", "120"])
        .env("TRAINBOX_FAULT_INJECT", "kill-rank:1:3");
    let (mut outputs, elapsed) = by_hand(&run);
    let dead = outputs.remove(1);
    let survivor = outputs.remove(0);
    assert!(!dead.status.success());
    let stderr = String::from_utf8_lossy(&survivor.stderr);
    assert!(!survivor.status.success(), "rank 0 went on: {stderr}");
    assert!(
        stderr.contains("rank 0 of 2") && stderr.contains("another rank stopped"),
        "{stderr}"
    );
    // Far below --ddp_timeout: the dead peer's closed connection is seen at once.
    assert!(elapsed < Duration::from_secs(100), "took {elapsed:?}");
}

#[test]
fn torchrun_restarts_a_group_whose_rank_died_from_its_last_checkpoint() {
    let whole = with_output(sort_run("ddp_restart_whole", 4).torchrun(2, &[])).ok();
    let restarted = with_output(sort_run("ddp_restart", 4).torchrun(2, &["--max_restarts", "1"]))
        .args(&["--resume_from_checkpoint", "last", "--ddp_timeout", "120"])
        .env("TRAINBOX_FAULT_INJECT", "kill-rank:1:8")
        .ok();
    assert!(
        restarted.stderr.contains("rank 1 dies after step 8"),
        "{}",
        restarted.stderr
    );
    assert_same_weights(&restarted.out, &whole.out, 1e-5);
    assert_same_logs(&restarted.out, &whole.out);
    assert_eq!(
        checkpoints(&restarted.out),
        ["checkpoint-12", "checkpoint-6"]
    );
}

#[test]
fn integrations_write_from_world_zero_only() {
    let done = with_output(sort_run("ddp_tensorboard", 4).torchrun(2, &[]))
        .args(&["--report_to", "tensorboard"])
        .ok();
    let plugins = done.out.join("plugins");
    assert!(plugins.join("tensorboard").is_dir());
    assert!(!plugins.join("tensorboard@rank1").exists());
    let mut event_files = 0;
    let mut stack = vec![done.out.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().contains("tfevents") {
                event_files += 1;
            }
        }
    }
    assert_eq!(event_files, 1, "one TensorBoard event file for the run");
    let _ = plugin("tensorboard");
}

/// Evaluation and prediction gathered over 2 ranks, checked against the
/// trained model itself in Python: each sample counted once (the filler of
/// the last round left out), the predictions in the data's order, padded
/// as HF's nested_concat.
#[test]
fn evaluation_and_predictions_are_gathered_in_order_without_the_filler() {
    use crate::own_model::{assert_close, check_with, read_json, train};
    let flags = "--do_train --do_eval --do_predict --train_file @tag_train.parquet \
        --validation_file @tag_val.safetensors --test_file @tag_test.jsonl \
        --metric accuracy --max_train_samples 20 --max_eval_samples 20 \
        --num_train_epochs 2 --learning_rate 0.05 --logging_steps 1 --save_strategy no";
    let done = train("ddp_tagger", "tagger.pt", flags)
        .torchrun(2, &[])
        .env("OMP_NUM_THREADS", "1")
        .ok();
    // 20 samples, 2 ranks × 8: two rounds an epoch.
    let state = done.state("trainer_state.json");
    assert_eq!(state["global_step"], 4);
    let py = check_with("check_tagger", &done.out, &[]);
    let eval = read_json(&done.out.join("eval_results.json"));
    assert_eq!(eval["eval_samples"], 20);
    assert_close(&eval["eval_loss"], &py["final"]["loss"], 1e-5, "eval_loss");
    assert_close(
        &eval["eval_accuracy"],
        &py["final"]["accuracy"],
        1e-12,
        "accuracy",
    );
    assert_eq!(py["shapes"]["predictions"], py["want_shape"]);
    assert!(num(&py["pred_diff"]) < 1e-5, "{}", py["pred_diff"]);
    assert_eq!(py["label_ids_equal"], true);
    let predict = read_json(&done.out.join("predict_results.json"));
    assert_eq!(predict["predict_samples"], 12);
    assert_close(
        &predict["predict_accuracy"],
        &py["predict"]["accuracy"],
        1e-12,
        "predict_accuracy",
    );
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `--load_best_model_at_end` loads the best checkpoint on every rank: the
/// evaluation after training (gathered over both) is the best one's.
#[test]
fn every_rank_loads_the_best_model_at_the_end() {
    use crate::own_model::{read_json, train};
    let flags = "--do_train --do_eval --train_file @tag_train.parquet \
        --validation_file @tag_val.safetensors --metric accuracy --max_train_samples 20 \
        --max_eval_samples 20 --num_train_epochs 2 --learning_rate 0.05 --logging_steps 1 \
        --eval_strategy steps --eval_steps 1 --save_steps 1 --load_best_model_at_end \
        --metric_for_best_model accuracy";
    let done = train("ddp_best_model", "tagger.pt", flags)
        .torchrun(2, &[])
        .env("OMP_NUM_THREADS", "1")
        .ok();
    let state = done.state("trainer_state.json");
    let best = state["best_metric"].as_f64().unwrap();
    let best_step = state["best_global_step"].as_u64().unwrap();
    assert_ne!(
        best_step, 4,
        "the fixture's best is not its last step: {state}"
    );
    let eval = read_json(&done.out.join("eval_results.json"));
    assert!(
        (eval["eval_accuracy"].as_f64().unwrap() - best).abs() < 1e-9,
        "final {} against the best {best} (step {best_step})",
        eval["eval_accuracy"]
    );
}

/// A plugin that aborts the run on rank 1 only (`on_error = "abort"`):
/// rank 1 ends with the plugin's error, and rank 0, started by hand with no
/// launcher to stop it, fails at its next collective instead of waiting.
#[test]
fn a_plugin_that_aborts_on_one_rank_ends_the_others_too() {
    let run = with_output(sort_run("ddp_abort_rank1", 4))
        .plugin("stopper")
        .args(&["--config", "run.toml", "--ddp_timeout", "120"])
        .args(&[
            "--plugin_config",
            "stopper.mode=panic",
            "--plugin_config",
            "stopper.on=others",
        ])
        .args(&["--plugin_config", "stopper.at_step=2"]);
    std::fs::write(
        run.dir.join("run.toml"),
        "[plugins.stopper]\non_error = \"abort\"\n",
    )
    .unwrap();
    let (outputs, elapsed) = by_hand(&run);
    let err = |i: usize| String::from_utf8_lossy(&outputs[i].stderr).into_owned();
    assert!(!outputs[1].status.success());
    assert!(
        err(1).contains("aborting the run (on_error = abort)"),
        "{}",
        err(1)
    );
    assert!(!outputs[0].status.success(), "rank 0 went on: {}", err(0));
    assert!(err(0).contains("another rank stopped"), "{}", err(0));
    assert!(elapsed < Duration::from_secs(100), "took {elapsed:?}");
}
