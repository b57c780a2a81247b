//! HF 5.24's loss kwargs against the real HF Trainer: a tiny GPT-2 traced
//! with a `num_items_in_batch` argument (HF's `model_accepts_loss_kwargs`),
//! two batches accumulated per update with padded labels (-100) of unequal
//! counts, so that only the update's count as HF takes it (over
//! `labels[..., 1:]`, the loss not divided by the accumulation steps) gives
//! HF's numbers; `--label_smoothing_factor` on causal LMs (HF shifts the
//! labels of its causal LM classes, and divides by the count it passes);
//! and trainbox's rule for "a causal LM class" checked against transformers'
//! own `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`.

use crate::own_model_parity::{assert_same_history, entries, flags};
use crate::util::{read_state, run_torch_python, Run};
use serde_json::{json, Value};
use std::path::Path;
use trainbox::torchscript::is_causal_lm_class;

/// The models and HF's run (`main(dir, case, flags)`).
const SCRIPT: &str = include_str!("loss_kwargs.py");

/// Exports `case` (`kwargs`: forward takes `num_items_in_batch`;
/// `no_kwargs`: it does not), trains it with HF's Trainer and with trainbox
/// under `flags`; returns (HF's log, trainbox's `log_history`).
fn train_both(
    test: &str,
    case: &str,
    flags: &[(&str, Value)],
    n: (usize, usize),
) -> (Value, Value) {
    let mut cli: Vec<String> = [
        "train",
        "--model",
        "model.pt",
        "--train_file",
        "train.parquet",
        "--validation_file",
        "validation.parquet",
        "--output_dir",
        "out",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
    ]
    .map(String::from)
    .to_vec();
    let mut hf = serde_json::Map::new();
    for (k, v) in flags {
        cli.push(format!("--{k}"));
        cli.push(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        hf.insert(k.to_string(), v.clone());
    }
    hf.insert("n_train".into(), json!(n.0));
    hf.insert("n_eval".into(), json!(n.1));
    let run = Run::command(test, &cli.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::write(run.dir.join("loss_kwargs.py"), SCRIPT).unwrap();
    std::fs::write(run.dir.join("hf_args.json"), Value::Object(hf).to_string()).unwrap();
    run_torch_python(
        "import sys; sys.path.insert(0, sys.argv[1]); import loss_kwargs; loss_kwargs.main(*sys.argv[1:])",
        &[&run.dir, Path::new(case), &run.dir.join("hf_args.json")],
    );
    let hf_log: Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("hf_log.json")).unwrap())
            .unwrap();
    run.ok();
    let state = read_state(&run.dir.join("out/trainer_state.json"));
    (hf_log, state["log_history"].clone())
}

/// One update of two accumulated batches of 8 per epoch (so that HF's and
/// trainbox's data orders, which differ, give the same updates), 4 epochs,
/// an evaluation each epoch on batches of 8 and 4.
fn accumulated(changes: &[(&'static str, Value)]) -> Vec<(&'static str, Value)> {
    let mut base = vec![
        ("num_train_epochs", json!(4)),
        ("per_device_train_batch_size", json!(8)),
        ("gradient_accumulation_steps", json!(2)),
        ("learning_rate", json!(0.01)),
        ("max_grad_norm", json!(1.0)),
        ("eval_strategy", json!("epoch")),
    ];
    base.extend_from_slice(changes);
    flags(&base)
}

#[test]
fn num_items_in_batch_over_accumulated_batches_matches_hf_trainer() {
    let (hf, tb) = train_both("loss-kwargs-ga", "kwargs", &accumulated(&[]), (16, 12));
    assert_eq!(entries(&hf["log_history"], "loss").len(), 4);
    assert_same_history(&hf, &tb);
}

#[test]
fn label_smoothing_of_a_causal_lm_with_num_items_matches_hf_trainer() {
    let smoothed = accumulated(&[("label_smoothing_factor", json!(0.1))]);
    let (hf, tb) = train_both("loss-kwargs-smoothing", "kwargs", &smoothed, (16, 12));
    assert_same_history(&hf, &tb);
}

#[test]
fn label_smoothing_of_a_causal_lm_without_num_items_is_shifted_as_in_hf() {
    // One batch of 16 per epoch: each batch its own mean, the labels shifted.
    let flags = flags(&[
        ("num_train_epochs", json!(3)),
        ("per_device_train_batch_size", json!(16)),
        ("learning_rate", json!(0.01)),
        ("eval_strategy", json!("epoch")),
        ("label_smoothing_factor", json!(0.1)),
    ]);
    let (hf, tb) = train_both("loss-kwargs-smoothing-plain", "no_kwargs", &flags, (16, 12));
    assert_same_history(&hf, &tb);
}

/// trainbox's training entries (`loss`, `grad_norm`, `train_loss` by step).
fn training_numbers(dir: &Path) -> Vec<(String, f64)> {
    let state = read_state(&dir.join("out/trainer_state.json"));
    let mut numbers = Vec::new();
    for entry in state["log_history"].as_array().unwrap() {
        for key in ["loss", "grad_norm", "train_loss"] {
            if let Some(x) = entry[key].as_f64() {
                numbers.push((format!("{key}@{}", entry["step"]), x));
            }
        }
    }
    numbers
}

#[test]
fn average_tokens_across_devices_makes_two_processes_train_as_one() {
    // 16 samples: one process with one batch of 16, or two with 8 each,
    // one update an epoch. Summed over the ranks (and the loss times 2),
    // the count makes each update the mean over all 16 samples' tokens, as
    // one process takes it; each rank's own count makes another mean.
    let one = Run::command("loss-kwargs-ddp-one", &["train"]);
    std::fs::write(one.dir.join("loss_kwargs.py"), SCRIPT).unwrap();
    let flags = json!({"n_train": 16, "n_eval": 4, "hf": false}).to_string();
    std::fs::write(one.dir.join("hf_args.json"), flags).unwrap();
    run_torch_python(
        "import sys; sys.path.insert(0, sys.argv[1]); import loss_kwargs; loss_kwargs.main(*sys.argv[1:])",
        &[&one.dir, Path::new("kwargs"), &one.dir.join("hf_args.json")],
    );
    let file = |f: &str| one.dir.join(f).to_str().unwrap().to_owned();
    let (model, data) = (file("model.pt"), file("train.parquet"));
    let train = |run: Run, batch: &str, average: &str| {
        run.args(&[
            "--model",
            &model,
            "--train_file",
            &data,
            "--output_dir",
            "out",
        ])
        .args(&[
            "--per_device_train_batch_size",
            batch,
            "--num_train_epochs",
            "3",
        ])
        .args(&[
            "--learning_rate",
            "0.01",
            "--logging_steps",
            "1",
            "--seed",
            "7",
        ])
        .args(&[
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--disable_tqdm",
        ])
        .args(&["--average_tokens_across_devices", average])
    };
    let one = train(one, "16", "true");
    one.ok();
    let two = train(Run::command("loss-kwargs-ddp-two", &["train"]), "8", "true");
    two.clone().torchrun(2, &[]).ok();
    let own = train(
        Run::command("loss-kwargs-ddp-own", &["train"]),
        "8",
        "false",
    );
    own.clone().torchrun(2, &[]).ok();
    let (want, got) = (training_numbers(&one.dir), training_numbers(&two.dir));
    assert_eq!(want.len(), 7, "3 losses, 3 norms, train_loss: {want:?}");
    assert_eq!(
        want.iter().map(|n| &n.0).collect::<Vec<_>>(),
        got.iter().map(|n| &n.0).collect::<Vec<_>>()
    );
    for ((key, a), (_, b)) in want.iter().zip(&got) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs(),
            "{key}: {a} with one process, {b} with two"
        );
    }
    let first_loss = |numbers: &[(String, f64)]| numbers[0].1;
    let own = training_numbers(&own.dir);
    assert!(
        (first_loss(&own) - first_loss(&want)).abs() > 1e-4 * first_loss(&want),
        "each rank's own count should give another loss: {own:?} vs {want:?}"
    );
}

#[test]
fn the_causal_lm_rule_agrees_with_transformers_mapping() {
    let out = run_torch_python(
        "import json\n\
         from transformers.models.auto import modeling_auto as m\n\
         causal = sorted(set(m.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()))\n\
         others = set()\n\
         for name in ['MODEL_MAPPING_NAMES', 'MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES',\n\
                      'MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES', 'MODEL_FOR_MASKED_LM_MAPPING_NAMES',\n\
                      'MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES']:\n\
         \x20   for v in getattr(m, name).values():\n\
         \x20       others.update(v if isinstance(v, (list, tuple)) else [v])\n\
         print(json.dumps({'causal': causal, 'others': sorted(others - set(causal))}))",
        &[],
    );
    let lists: Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    let causal: Vec<&str> = lists["causal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        causal.len() > 100,
        "transformers' causal LM classes: {causal:?}"
    );
    let missed: Vec<&&str> = causal.iter().filter(|c| !is_causal_lm_class(c)).collect();
    assert!(
        missed.is_empty(),
        "causal LM classes the rule misses: {missed:?}"
    );
    let mut others: Vec<String> = lists["others"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    others.extend(
        [
            "BertForSequenceClassification",
            "T5ForConditionalGeneration",
            "CausalLM",
        ]
        .map(String::from),
    );
    let wrong: Vec<&String> = others.iter().filter(|c| is_causal_lm_class(c)).collect();
    assert!(
        wrong.is_empty(),
        "not causal LM classes, taken for them: {wrong:?}"
    );
}
