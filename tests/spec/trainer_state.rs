//! `trainer_state.json` and checkpoints: HF's exact format, read back by the
//! real `transformers.TrainerState` and `safetensors` from the torch
//! environment (`make test-env` installs them).

use crate::util::{run_torch_python, Run};

fn trained(test: &str) -> crate::util::Done {
    Run::regression(test)
        .args(&[
            "--logging_steps",
            "5",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "10",
            "--save_steps",
            "10",
        ])
        .args(&["--metric_for_best_model", "loss", "--learning_rate", "0.1"])
        .ok()
}

#[test]
fn trainer_state_is_written_in_hf_json_format() {
    let done = trained("state_format");
    let text = std::fs::read_to_string(done.out.join("checkpoint-20/trainer_state.json")).unwrap();
    assert!(text.ends_with("}\n"), "trailing newline as save_to_json");
    assert!(
        text.starts_with("{\n  \"best_global_step\": "),
        "keys sorted, indent 2: {text}"
    );
    let state = done.state("checkpoint-20/trainer_state.json");
    assert_eq!(state["global_step"], 20);
    assert_eq!(state["max_steps"], 24);
    assert_eq!(state["logging_steps"], 5);
    assert!(text.contains("\"logging_steps\": 5,"), "an int, not 5.0");
    assert_eq!(state["train_batch_size"], 8);
    assert_eq!(state["num_train_epochs"], 3);
    let history = state["log_history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        6,
        "logs at 5, 10, 15, 20 and evaluations at 10, 20"
    );
    assert_eq!(history[0]["step"], 5);
    assert_eq!(history[1]["step"], 10);
    assert!(
        history[2]["eval_loss"].is_number(),
        "the evaluation at step 10 follows its log"
    );
    assert_eq!(history[2]["step"], 10);
    assert_eq!(state["best_global_step"], 20, "the loss falls with lr 0.1");
    assert!(state["best_model_checkpoint"]
        .as_str()
        .unwrap()
        .ends_with("checkpoint-20"));
    assert_eq!(
        state["stateful_callbacks"]["TrainerControl"]["args"]["should_save"],
        true
    );
}

#[test]
fn transformers_loads_our_trainer_state_and_writes_the_same_bytes() {
    let done = trained("state_transformers");
    let ours = done.out.join("checkpoint-20/trainer_state.json");
    let theirs = done.out.join("hf_resaved.json");
    let script = r#"
import sys, json
from transformers import TrainerState
state = TrainerState.load_from_json(sys.argv[1])
state.save_to_json(sys.argv[2])
print(json.dumps({"global_step": state.global_step, "epoch": state.epoch, "best_metric": state.best_metric,
                  "n_logs": len(state.log_history), "max_steps": state.max_steps}))
"#;
    let printed = run_torch_python(script, &[&ours, &theirs]);
    let seen: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
    let state = done.state("checkpoint-20/trainer_state.json");
    assert_eq!(seen["global_step"], state["global_step"]);
    assert_eq!(seen["epoch"], state["epoch"]);
    assert_eq!(seen["best_metric"], state["best_metric"]);
    assert_eq!(seen["max_steps"], 24);
    assert_eq!(
        seen["n_logs"],
        state["log_history"].as_array().unwrap().len()
    );
    let (a, b) = (
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap(),
    );
    assert!(
        a == b,
        "HF's save_to_json of our state differs from our file:\n{}\n---\n{}",
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b)
    );
}

#[test]
fn safetensors_opens_our_weights() {
    let done = trained("state_safetensors");
    let model = done.out.join("checkpoint-24/model.safetensors");
    let printed = run_torch_python(
        "import sys\nfrom safetensors.torch import load_file\nt = load_file(sys.argv[1])\nprint(sorted(t), float(t['a']), float(t['b']))",
        &[&model],
    );
    assert!(printed.starts_with("['a', 'b']"), "{printed}");
    let a: f64 = printed.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(a > 1.0, "the slope moved towards 2: {printed}");
}

#[test]
fn final_state_and_model_are_written_to_output_dir() {
    let done = trained("state_final");
    let state = done.state("trainer_state.json");
    let last = state["log_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    for key in [
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "total_flos",
        "train_loss",
        "epoch",
    ] {
        assert!(last.get(key).is_some(), "final summary has {key}: {last}");
    }
    assert!(done.out.join("model.safetensors").is_file());
    // No half-written checkpoint is ever left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&done.out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary folders left: {leftovers:?}"
    );
}

#[test]
fn save_total_limit_keeps_the_newest_and_the_best() {
    let done = Run::regression("state_rotation")
        .args(&[
            "--save_steps",
            "4",
            "--save_total_limit",
            "2",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "4",
        ])
        .args(&[
            "--metric_for_best_model",
            "loss",
            "--greater_is_better",
            "true",
            "--learning_rate",
            "0.1",
        ])
        .ok();
    // Greater is better on a falling loss: the first evaluation stays the best.
    assert_eq!(done.checkpoints(), [4, 24]);
    let state = done.state("checkpoint-24/trainer_state.json");
    assert_eq!(state["best_global_step"], 4);
}

#[test]
fn save_strategy_best_saves_at_each_new_best_only() {
    let run = |test: &str, greater: &str| {
        Run::regression(test)
            .args(&["--save_strategy", "best", "--eval_strategy", "steps"])
            .args(&["--eval_steps", "4", "--metric_for_best_model", "loss"])
            .args(&["--greater_is_better", greater, "--learning_rate", "0.1"])
            .ok()
    };
    // A falling loss: every evaluation is a new best, and each is saved.
    let done = run("state_save_best_falling", "false");
    assert_eq!(done.checkpoints(), [4, 8, 12, 16, 20, 24]);
    // Greater is better on a falling loss: only the first one is.
    let done = run("state_save_best_first", "true");
    assert_eq!(done.checkpoints(), [4], "no save at the end, as HF");
    let saves: Vec<u64> = done
        .events()
        .iter()
        .filter(|e| e["event"] == "on_save")
        .map(|e| e["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(saves, [4]);
    let state = done.state("trainer_state.json");
    assert_eq!(state["best_global_step"], 4);
    assert!(state["best_model_checkpoint"]
        .as_str()
        .unwrap()
        .ends_with("checkpoint-4"));
}

#[test]
fn save_strategy_best_without_evaluation_trains_and_never_saves() {
    // transformers 5.24 accepts `--save_strategy best --eval_strategy no`:
    // with no evaluation there is never a new best, so never a checkpoint.
    let done = Run::regression("state_save_best_no_eval")
        .args(&["--save_strategy", "best", "--eval_strategy", "no"])
        .args(&["--metric_for_best_model", "loss"])
        .ok();
    assert!(done.checkpoints().is_empty());
    let state = done.state("trainer_state.json");
    assert_eq!(state["global_step"], 24);
    assert!(state["best_metric"].is_null());
}

#[test]
fn intervals_are_ints_only_under_their_own_steps_strategy() {
    // As transformers 5.24 writes them for the same flags: `--logging_steps
    // 5` is the float 5.0 under the epoch strategy, which HF does not cast.
    let done = Run::regression("state_interval_types")
        .args(&["--logging_strategy", "epoch", "--logging_steps", "5"])
        .args(&["--eval_strategy", "epoch", "--eval_steps", "4"])
        .args(&["--save_strategy", "epoch", "--save_steps", "2.5"])
        .ok();
    let text = std::fs::read_to_string(done.out.join("checkpoint-24/trainer_state.json")).unwrap();
    for line in [
        "\"eval_steps\": 4.0,",
        "\"logging_steps\": 5.0,",
        "\"save_steps\": 2.5,",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert_eq!(done.checkpoints(), [8, 16, 24]);
    // Under the steps strategies they are ints; the default 500 always is.
    let done = trained("state_interval_types_steps");
    let text = std::fs::read_to_string(done.out.join("checkpoint-20/trainer_state.json")).unwrap();
    for line in [
        "\"eval_steps\": 10,",
        "\"logging_steps\": 5,",
        "\"save_steps\": 10,",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[test]
fn load_best_model_at_end_takes_a_ratio_whose_multiple_is_the_save_count() {
    // HF accepts eval_steps 0.25 with save_steps 12 (12 % 0.25 == 0): of 24
    // steps it evaluates every 6 and saves every 12.
    let done = Run::regression("state_load_best_ratio")
        .args(&["--load_best_model_at_end", "--eval_strategy", "steps"])
        .args(&["--eval_steps", "0.25", "--save_steps", "12"])
        .ok();
    assert_eq!(done.checkpoints(), [12, 24]);
    let state = done.state("checkpoint-24/trainer_state.json");
    assert_eq!(state["eval_steps"], 6);
    assert_eq!(state["save_steps"], 12);
}

#[test]
fn load_best_model_at_end_restores_the_best_weights() {
    let done = Run::regression("state_load_best")
        .args(&[
            "--load_best_model_at_end",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "8",
            "--save_steps",
            "8",
        ])
        .args(&[
            "--metric_for_best_model",
            "loss",
            "--greater_is_better",
            "true",
            "--learning_rate",
            "0.1",
        ])
        .ok();
    assert!(
        done.stderr.contains("Loading best model from"),
        "{}",
        done.stderr
    );
    let best = std::fs::read(done.out.join("checkpoint-8/model.safetensors")).unwrap();
    let last = std::fs::read(done.out.join("checkpoint-24/model.safetensors")).unwrap();
    let final_model = std::fs::read(done.out.join("model.safetensors")).unwrap();
    assert_ne!(best, last);
    assert_eq!(
        final_model, best,
        "the saved final model is the best checkpoint's"
    );
}

#[test]
fn transformers_reads_stateful_plugin_states_from_our_checkpoints() {
    let done = Run::command(
        "state_hf_reads_stateful",
        &["train", "--task", "scripted", "--disable_tqdm"],
    )
    .args(&[
        "--task_option",
        "scores=0.5,0.4,0.3",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "4",
        "--save_steps",
        "8",
    ])
    .args(&[
        "--metric_for_best_model",
        "score",
        "--plugin_config",
        "early-stopping.early_stopping_patience=5",
    ])
    .arg("--output_dir")
    .arg(
        crate::util::fresh_dir("state_hf_reads_stateful_out")
            .to_str()
            .unwrap(),
    )
    .plugin("early-stopping")
    .ok_in("state_hf_reads_stateful_out");
    let path = done.out.join("checkpoint-16/trainer_state.json");
    let script = r#"
import sys, json
from transformers import TrainerState, TrainerControl
state = TrainerState.load_from_json(sys.argv[1])
es = state.stateful_callbacks["early-stopping"]
control = TrainerControl(**state.stateful_callbacks["TrainerControl"]["args"])
print(json.dumps({"patience": es["args"]["early_stopping_patience"],
                  "counter": es["attributes"]["early_stopping_patience_counter"],
                  "should_save": control.should_save}))
"#;
    let seen: serde_json::Value =
        serde_json::from_str(run_torch_python(script, &[&path]).trim()).unwrap();
    assert_eq!(seen["patience"], 5);
    assert_eq!(
        seen["counter"], 3,
        "scores fall after the first evaluation: 3 evaluations without improvement by step 16"
    );
    assert_eq!(
        seen["should_save"], true,
        "saved before on_save resets the flag, as HF"
    );
}

#[test]
fn trainbox_resumes_from_a_trainer_state_written_by_transformers() {
    let first = Run::regression("state_from_hf").args(&[
        "--save_steps",
        "8",
        "--max_steps",
        "16",
        "--logging_steps",
        "4",
    ]);
    let done = first.ok();
    let path = done.out.join("checkpoint-8/trainer_state.json");
    // HF writes the file from its own objects; trainbox must read it and go on.
    let script = r#"
import sys
from transformers import TrainerState, TrainerControl, EarlyStoppingCallback
state = TrainerState(epoch=1.0, global_step=8, max_steps=16, logging_steps=4, eval_steps=500, save_steps=8,
                     train_batch_size=8, num_train_epochs=2, total_flos=123.0,
                     log_history=[{"loss": 11.5, "grad_norm": 3.0, "learning_rate": 4e-05, "epoch": 0.5, "step": 4},
                                  {"loss": 10.5, "grad_norm": 2.5, "learning_rate": 3e-05, "epoch": 1.0, "step": 8}],
                     stateful_callbacks=[EarlyStoppingCallback(5, 0.2), TrainerControl()])
state.save_to_json(sys.argv[1])
"#;
    run_torch_python(script, &[&path]);
    for trainbox_only in ["loop_state.json", "optimizer.safetensors"] {
        std::fs::remove_file(path.parent().unwrap().join(trainbox_only)).unwrap();
    }
    let again = first
        .clone()
        .args(&[
            "--resume_from_checkpoint",
            path.parent().unwrap().to_str().unwrap(),
        ])
        .args(&["--restore_callback_states_from_checkpoint"])
        .ok();
    assert!(
        again.stderr.contains("ignoring: EarlyStoppingCallback"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("no loop_state.json"),
        "an HF checkpoint has no loop state: {}",
        again.stderr
    );
    assert!(
        again.stderr.contains("AdamW moments start from zero"),
        "{}",
        again.stderr
    );
    let state = again.state("checkpoint-16/trainer_state.json");
    let history = state["log_history"].as_array().unwrap();
    assert_eq!(
        history[0]["loss"], 11.5,
        "the history written by transformers is kept"
    );
    assert_eq!(
        history.iter().filter(|e| e.get("loss").is_some()).count(),
        4,
        "logs at 4, 8 (from HF), 12, 16"
    );
    assert!(state["total_flos"].as_f64().unwrap() > 123.0);
}
