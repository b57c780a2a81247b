//! `trainbox train --model`: TorchScript models exported in Python (scripted
//! and traced; a loss, a `(loss, logits)` tuple, a dict), trained on dataset
//! files of every format, then checked from Python: `torch.jit.load` of the
//! saved `model.pt` gives trainbox's eval loss, metrics and predictions back;
//! `model.safetensors` holds the module's parameters under their names; the
//! results files are HF's `save_metrics` files. The Python side is
//! `own_model.py`.

use crate::util::{fresh_dir, read_jsonl, run_torch_python, Done, Run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PY: &str = include_str!("own_model.py");

/// Calls `own_model.<function>(fixtures, *argv)` and prints what it returns.
const CALL: &str = "import json, sys; sys.path.insert(0, sys.argv[1]); import own_model; \
    print(json.dumps(getattr(own_model, sys.argv[2])(sys.argv[1], *sys.argv[3:])))";

/// The fixtures (models and datasets), written once per test process.
pub(crate) fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fresh_dir("own_model_fixtures");
        std::fs::write(dir.join("own_model.py"), PY).unwrap();
        run_torch_python(
            "import sys; sys.path.insert(0, sys.argv[1]); import own_model; own_model.export(sys.argv[1])",
            &[&dir],
        );
        dir
    })
}

/// A fixture file's path, as an argument.
pub(crate) fn fx(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_string()
}

/// `run` with the words of `flags`, `@name` standing for a fixture's path.
pub(crate) fn with(run: Run, flags: &str) -> Run {
    flags
        .split_whitespace()
        .fold(run, |run, w| match w.strip_prefix('@') {
            Some(name) => run.arg(&fx(name)),
            None => run.arg(w),
        })
}

/// `trainbox train --model <fixture> <flags>` in a fresh directory, output
/// in `out`.
pub(crate) fn train(test: &str, model: &str, flags: &str) -> Run {
    let run = Run::command(test, &["train", "--disable_tqdm", "--model"]).arg(&fx(model));
    let out = run.out();
    with(run.arg("--output_dir").arg(out.to_str().unwrap()), flags)
}

/// Runs `function` of `own_model.py` on `out` (and `more`); returns the
/// JSON it gives back.
fn check(function: &str, out: &Path) -> Value {
    check_with(function, out, &[])
}

pub(crate) fn check_with(function: &str, out: &Path, more: &[&Path]) -> Value {
    let mut args = vec![fixtures(), Path::new(function), out];
    args.extend_from_slice(more);
    let printed = run_torch_python(CALL, &args);
    serde_json::from_str(printed.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {printed}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[track_caller]
pub(crate) fn assert_close(got: &Value, want: &Value, rel: f64, what: &str) {
    let (g, w) = (num(got), num(want));
    assert!(
        (g - w).abs() <= rel * w.abs().max(1e-6),
        "{what}: trainbox {g}, python {w}"
    );
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `loss` entries of the log history.
fn losses(done: &Done) -> Vec<f64> {
    done.state("trainer_state.json")["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("loss").map(num))
        .collect()
}

#[track_caller]
fn assert_loss_falls(done: &Done, factor: f64) {
    let l = losses(done);
    assert!(l.len() >= 2, "logged losses: {l:?}");
    assert!(
        l[l.len() - 1] < factor * l[0],
        "the loss falls by {factor}: {l:?}"
    );
}

const TRAIN_KEYS: &[&str] = &[
    "epoch",
    "total_flos",
    "train_loss",
    "train_runtime",
    "train_samples",
    "train_samples_per_second",
    "train_steps_per_second",
];

/// HF's `{prefix}_results.json` keys with these metrics.
fn split_keys(prefix: &str, metrics: &[&str]) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = ["loss", "runtime", "samples", "samples_per_second"]
        .iter()
        .chain(&["steps_per_second"])
        .chain(metrics)
        .map(|k| format!("{prefix}_{k}"))
        .collect();
    if prefix == "eval" {
        keys.insert("epoch".into());
    }
    keys
}

/// A scripted regressor with dropout, returning a dict: Parquet to train,
/// JSON lines to evaluate, CSV to predict; every output checked from Python.
#[test]
fn a_scripted_regressor_trains_on_parquet_and_its_results_load_back_in_python() {
    let flags = "--train_file @reg_train.parquet --validation_file @reg_val.jsonl \
        --test_file @reg_test.csv --metric mse --metric mae --learning_rate 0.05 \
        --num_train_epochs 3 --logging_steps 3 --save_steps 6 --eval_strategy epoch";
    let done = train("own_model_regressor", "regressor.pt", flags)
        .plugin("probe")
        .ok();
    done.assert_checkpoints(&[6, 12, 18]);
    for step in [6, 12, 18] {
        let pt = done.out.join(format!("checkpoint-{step}/model.pt"));
        assert!(pt.is_file(), "{} missing", pt.display());
    }
    assert_loss_falls(&done, 0.5);
    for table in ["train", "eval", "predict"] {
        assert!(
            done.stdout
                .contains(&format!("***** {table} metrics *****")),
            "HF's log_metrics table for {table}:\n{}",
            done.stdout
        );
    }
    let py = check("check_regression", &done.out);

    // The trained model.pt, in eval mode in Python, gives trainbox's metrics.
    let results = &py["results"];
    let eval = &results["eval"]["metrics"];
    for m in ["loss", "mse", "mae"] {
        assert_close(&eval[format!("eval_{m}")], &py["final"][m], 1e-5, m);
    }
    assert!(
        num(&eval["eval_loss"]) < 0.5 * num(&py["initial"]),
        "eval loss {} from {} untrained",
        eval["eval_loss"],
        py["initial"]
    );
    let history = done.state("trainer_state.json")["log_history"].clone();
    let last_eval = history
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e.get("eval_loss").is_some())
        .unwrap();
    assert_eq!(last_eval["step"], 18);
    assert_close(
        &last_eval["eval_loss"],
        &eval["eval_loss"],
        1e-9,
        "epoch 3 eval",
    );

    // Predictions: the logits [12, 1] as the model returns them, the labels.
    assert_eq!(
        py["shapes"],
        serde_json::json!({"predictions": [12, 1], "label_ids": [12]})
    );
    assert_eq!(py["dtypes"]["predictions"], "torch.float32");
    assert!(num(&py["pred_diff"]) < 1e-5, "{}", py["pred_diff"]);
    assert_eq!(py["label_ids_equal"], true);
    let predict = &results["predict"]["metrics"];
    for m in ["loss", "mse", "mae"] {
        assert_close(&predict[format!("predict_{m}")], &py["predict"][m], 1e-5, m);
    }

    // model.safetensors: the module's own names, model.pt's values; in
    // every checkpoint too.
    let names = ["net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"];
    assert_eq!(py["names"], serde_json::json!(names));
    let mut sorted = names.to_vec();
    sorted.sort();
    assert_eq!(py["stored"], serde_json::json!(sorted));
    assert_eq!(py["same"], true);
    assert_eq!(
        py["checkpoints"],
        serde_json::json!({"checkpoint-12": true, "checkpoint-18": true, "checkpoint-6": true})
    );

    // HF's save_metrics: its keys, json.dumps(indent=4, sort_keys=True),
    // all_results the union.
    let want = [
        ("train", set(TRAIN_KEYS)),
        ("eval", split_keys("eval", &["mse", "mae"])),
        ("predict", split_keys("predict", &["mse", "mae"])),
    ];
    let mut union = serde_json::Map::new();
    for (split, keys_wanted) in &want {
        let r = &results[*split];
        assert_eq!(keys(&r["metrics"]), *keys_wanted, "{split}_results.json");
        assert_eq!(
            r["hf_json"], true,
            "{split}_results.json as json.dumps writes it"
        );
        union.extend(r["metrics"].as_object().unwrap().clone());
    }
    assert_eq!(results["all"]["hf_json"], true);
    assert_eq!(results["all"]["metrics"], Value::Object(union));
    let train = &results["train"]["metrics"];
    assert_eq!(train["train_samples"], 48);
    assert_eq!(train["epoch"], 3.0);
    assert_eq!(eval["eval_samples"], 20);
    assert_eq!(predict["predict_samples"], 12);

    assert_probe_sees_the_module(&done, &names, &py["stats"]);
}

/// The plugins' views: the module's parameter names, their gradients
/// (which add up to the logged, clipped grad norm) and their values (those
/// Python reads from model.pt after the last update).
fn assert_probe_sees_the_module(done: &Done, names: &[&str], stats: &Value) {
    let probe = read_jsonl(&done.out.join("plugins/probe/probe.jsonl"));
    assert_eq!(probe[0]["event"], "on_train_begin");
    assert_eq!(
        probe[0]["parameters"],
        serde_json::json!(names),
        "the module's names in the model's order (named_parameters), as the WIT says"
    );
    assert_eq!(probe[0]["parameter_count"], 4 * 16 + 16 + 16 + 1);
    let state = done.state("trainer_state.json");
    let mut checked = 0;
    for entry in state["log_history"].as_array().unwrap() {
        let Some(norm) = entry.get("grad_norm").map(num) else {
            continue;
        };
        let step = entry["step"].as_u64().unwrap();
        let pre = probe
            .iter()
            .find(|p| p["event"] == "on_pre_optimizer_step" && p["global_step"] == step - 1)
            .unwrap();
        let total: f64 = names
            .iter()
            .map(|n| num(&pre["gradients"][n]["norm"]).powi(2))
            .sum();
        assert!(
            (total.sqrt() - norm.min(1.0)).abs() < 1e-4,
            "step {step}: gradients under the module's names {} vs grad_norm {norm}",
            total.sqrt()
        );
        checked += 1;
    }
    assert_eq!(checked, 6, "a grad_norm every 3 of 18 steps");
    let last = probe
        .iter()
        .rfind(|p| p["event"] == "on_optimizer_step")
        .unwrap();
    assert_eq!(last["global_step"], 17);
    for n in names {
        for s in ["norm", "mean", "min", "max"] {
            let (got, want) = (&last["values"][n][s], &stats[n][s]);
            assert!(
                (num(got) - num(want)).abs() <= 1e-5 * num(want).abs().max(1e-3),
                "{n} {s}: view {got}, model.pt {want}"
            );
        }
    }
}

/// A traced classifier returning (loss, logits): safetensors to train,
/// Parquet to evaluate; `eval_accuracy` as Python computes it from each
/// checkpoint's model.pt; the best checkpoint by accuracy loaded at the
/// end; then `--do_eval` and `--do_predict` alone on saved models.
#[test]
fn a_traced_classifier_keeps_its_best_checkpoint_by_accuracy_and_evaluates_without_training() {
    let flags = "--train_file @cls_train.safetensors --validation_file @cls_val.parquet \
        --metric accuracy --learning_rate 0.05 --num_train_epochs 3 --logging_steps 3 \
        --eval_strategy steps --eval_steps 3 --save_steps 3 \
        --metric_for_best_model accuracy --load_best_model_at_end";
    let done = train("own_model_classifier", "classifier.pt", flags).ok();
    assert_loss_falls(&done, 0.8);
    let py = check("check_classifier", &done.out);
    let state = done.state("trainer_state.json");
    let mut evals = Vec::new();
    // The evaluations during training (a final one after loading the best
    // model, at the last step again, aside).
    for e in state["log_history"].as_array().unwrap() {
        let step = e["step"].as_u64().unwrap();
        if let Some(acc) = e.get("eval_accuracy") {
            if evals.iter().all(|(s, _, _)| *s != step) {
                evals.push((step, num(acc), num(&e["eval_loss"])));
            }
        }
    }
    assert_eq!(
        evals.iter().map(|e| e.0).collect::<Vec<_>>(),
        [3, 6, 9, 12, 15, 18]
    );
    for (step, acc, loss) in &evals {
        let ours = &py["checkpoints"][step.to_string()];
        assert_close(&(*acc).into(), &ours["accuracy"], 1e-9, "eval_accuracy");
        assert_close(&(*loss).into(), &ours["loss"], 1e-5, "eval_loss");
    }
    // HF: greater is better for accuracy, the first of equal ones kept.
    let (best_step, best_acc, _) = evals
        .iter()
        .fold(evals[0], |b, e| if e.1 > b.1 { *e } else { b });
    let best_by_loss = evals
        .iter()
        .fold(evals[0], |b, e| if e.2 < b.2 { *e } else { b })
        .0;
    assert_ne!(
        best_step, best_by_loss,
        "the fixture tells accuracy from loss"
    );
    assert_eq!(
        state["best_model_checkpoint"],
        done.out
            .join(format!("checkpoint-{best_step}"))
            .to_str()
            .unwrap()
    );
    assert_close(
        &state["best_metric"],
        &best_acc.into(),
        1e-12,
        "best_metric",
    );
    assert_eq!(py["same"], true);
    assert_eq!(
        py["checkpoints"][best_step.to_string()]["final_is_it"],
        true,
        "the final model is checkpoint-{best_step}"
    );
    let eval = read_json(&done.out.join("eval_results.json"));
    assert_close(
        &eval["eval_accuracy"],
        &best_acc.into(),
        1e-12,
        "final eval",
    );

    // --do_eval alone, on a checkpoint: no training, the same numbers.
    let ckpt = done.out.join("checkpoint-6");
    let only = Run::command("own_model_classifier_eval", &["train", "--disable_tqdm"]);
    let out = only.out();
    let flags = "--do_eval --validation_file @cls_val.parquet --metric accuracy";
    let evaluated = with(only.clone(), flags)
        .args(&["--model", ckpt.to_str().unwrap()])
        .args(&["--output_dir", out.to_str().unwrap()])
        .ok();
    // (`plugins/` is the built-in printer's folder.)
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .filter(|name| name != "plugins")
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["all_results.json", "eval_results.json"],
        "evaluation only: nothing trained or saved"
    );
    assert!(!evaluated.stdout.contains("train metrics"));
    let eval = read_json(&out.join("eval_results.json"));
    assert_eq!(
        keys(&eval),
        split_keys("eval", &["accuracy"]),
        "HF 5.24 writes \"epoch\": 0 before any training (TrainerState.epoch defaults to 0)"
    );
    assert_eq!(num(&eval["epoch"]), 0.0);
    let at6 = evals.iter().find(|e| e.0 == 6).unwrap();
    assert_close(&eval["eval_loss"], &at6.2.into(), 1e-6, "checkpoint-6");
    assert_close(&eval["eval_accuracy"], &at6.1.into(), 1e-12, "checkpoint-6");

    // --do_predict alone, on the final model folder; all_results merged.
    with(
        only,
        "--do_predict --test_file @cls_val.parquet --metric accuracy",
    )
    .args(&["--model", done.out.to_str().unwrap()])
    .args(&["--output_dir", out.to_str().unwrap()])
    .ok();
    let py = check_with(
        "check_classifier_eval",
        &out,
        &[&ckpt.join("model.pt"), &done.out.join("model.pt")],
    );
    assert_close(
        &eval["eval_loss"],
        &py["checkpoint"]["loss"],
        1e-5,
        "python",
    );
    assert_eq!(
        py["shapes"],
        serde_json::json!({"predictions": [24, 3], "label_ids": [24]})
    );
    assert!(num(&py["pred_diff"]) < 1e-5, "{}", py["pred_diff"]);
    assert_eq!(py["label_ids_equal"], true);
    assert_eq!(py["hf_json"], true);
    let predict = read_json(&out.join("predict_results.json"));
    assert_eq!(keys(&predict), split_keys("predict", &["accuracy"]));
    assert_close(
        &predict["predict_accuracy"],
        &py["final"]["accuracy"],
        1e-12,
        "predict",
    );
    let all = read_json(&out.join("all_results.json"));
    let mut both = keys(&eval);
    both.extend(keys(&predict));
    assert_eq!(keys(&all), both, "all_results.json: eval's and predict's");
}

/// A token tagger on variable-length lists (Parquet lists to train, ragged
/// safetensors to evaluate, JSON lines to predict): padded per batch as
/// HF's collators, an attention mask made, accuracy over the tokens that
/// are not -100 aggregated over batches, perplexity, HF's nested_concat of
/// predictions, and --max_train_samples / --max_eval_samples.
#[test]
fn a_token_tagger_on_variable_length_lists_pads_as_hf_and_aggregates_metrics_exactly() {
    let flags = "--do_train --do_eval --do_predict --train_file @tag_train.parquet \
        --validation_file @tag_val.safetensors --test_file @tag_test.jsonl \
        --metric accuracy --metric perplexity --max_train_samples 20 --max_eval_samples 20 \
        --num_train_epochs 2 --learning_rate 0.05 --logging_steps 1 --save_strategy no";
    let done = train("own_model_tagger", "tagger.pt", flags).ok();
    let state = done.state("trainer_state.json");
    assert_eq!(
        state["global_step"], 6,
        "20 of 48 samples: 3 batches of 8, 2 epochs"
    );
    assert_loss_falls(&done, 0.9);
    let train = read_json(&done.out.join("train_results.json"));
    assert_eq!(train["train_samples"], 20);
    let py = check("check_tagger", &done.out);
    let eval = read_json(&done.out.join("eval_results.json"));
    assert_eq!(keys(&eval), split_keys("eval", &["accuracy", "perplexity"]));
    assert_eq!(eval["eval_samples"], 20);
    assert_close(&eval["eval_loss"], &py["final"]["loss"], 1e-5, "eval_loss");
    assert_close(
        &eval["eval_accuracy"],
        &py["final"]["accuracy"],
        1e-12,
        "accuracy",
    );
    assert!(
        (num(&py["final"]["accuracy"]) - num(&py["mean_of_batches"])).abs() > 1e-3,
        "the fixture tells an exact aggregate from a mean of batches: {py}"
    );
    let ppl = num(&eval["eval_loss"]).exp();
    assert_close(
        &eval["eval_perplexity"],
        &ppl.into(),
        1e-9,
        "exp(eval_loss)",
    );

    // 12 test samples in batches of 8 and 4: [12, longest, 3], -100 beyond
    // a batch's own length.
    assert_eq!(py["shapes"]["predictions"], py["want_shape"]);
    let width = &py["want_shape"].as_array().unwrap()[..2];
    assert_eq!(py["shapes"]["label_ids"], serde_json::json!(width));
    assert!(num(&py["pred_diff"]) < 1e-5, "{}", py["pred_diff"]);
    assert_eq!(py["label_ids_equal"], true);
    let predict = read_json(&done.out.join("predict_results.json"));
    assert_eq!(
        keys(&predict),
        split_keys("predict", &["accuracy", "perplexity"])
    );
    assert_eq!(predict["predict_samples"], 12);
    assert_close(
        &predict["predict_loss"],
        &py["predict"]["loss"],
        1e-5,
        "predict_loss",
    );
    assert_close(
        &predict["predict_accuracy"],
        &py["predict"]["accuracy"],
        1e-12,
        "predict_accuracy",
    );
}

/// A state's log history without the fields that measure time.
fn history_without_timing(done: &Done, rel: &str) -> Value {
    let mut state = done.state(rel);
    for entry in state["log_history"].as_array_mut().unwrap() {
        let obj = entry.as_object_mut().unwrap();
        obj.retain(|k, _| !k.ends_with("_runtime") && !k.ends_with("_per_second"));
    }
    state["log_history"].take()
}

/// Stopped at checkpoint-4 and resumed, a run with dropout (torch's random
/// numbers) crossing an epoch ends with the weights, optimizer state and
/// log history (loss, grad_norm, learning_rate, eval_loss) of the run in one go.
#[test]
fn a_run_of_a_torchscript_model_resumed_from_a_checkpoint_is_exact() {
    let flags = "--train_file @reg_train.parquet --validation_file @reg_val.jsonl \
        --max_steps 10 --save_steps 4 --logging_steps 1 --eval_strategy steps --eval_steps 4 \
        --learning_rate 0.02 --weight_decay 0.01";
    let whole = train("own_model_resume_whole", "regressor.pt", flags).ok();
    let resumed = crate::resume::resuming(
        train("own_model_resume_resumed", "regressor.pt", flags),
        &whole,
        4,
    )
    .ok();
    assert!(
        resumed.stderr.contains("resuming from"),
        "{}",
        resumed.stderr
    );
    let (mut a, mut b) = (
        history_without_timing(&whole, "trainer_state.json"),
        history_without_timing(&resumed, "trainer_state.json"),
    );
    let losses: Vec<f64> = a
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("grad_norm").is_some())
        .map(|e| num(&e["loss"]))
        .collect();
    assert_eq!(losses.len(), 10, "a loss and grad_norm at every step");
    // The resumed run's train_loss is the mean of the steps it ran (5-10),
    // as in tests/spec/resume.rs; everything else is the same.
    let summary =
        |h: &mut Value| h.as_array_mut().unwrap().last_mut().unwrap()["train_loss"].take();
    let (_, resumed_loss) = (summary(&mut a), summary(&mut b));
    assert_eq!(a, b, "log history (timing aside)");
    let mean = losses[4..].iter().sum::<f64>() / 6.0;
    assert_close(
        &resumed_loss,
        &mean.into(),
        1e-6,
        "train_loss of steps 5-10",
    );
    for file in [
        "checkpoint-8/model.safetensors",
        "checkpoint-8/optimizer.safetensors",
        "checkpoint-10/model.safetensors",
        "checkpoint-10/optimizer.safetensors",
        "model.safetensors",
    ] {
        let a = std::fs::read(whole.out.join(file)).unwrap();
        let b = std::fs::read(resumed.out.join(file)).unwrap();
        assert!(
            a == b,
            "{file} differs between the whole run and the resumed one"
        );
    }
    assert!(resumed.out.join("checkpoint-8/model.pt").is_file());
}
