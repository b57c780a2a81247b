//! HF 5.24's loss kwargs against the real HF Trainer: a tiny GPT-2 traced
//! with a `num_items_in_batch` argument (HF's `model_accepts_loss_kwargs`),
//! two batches accumulated per update with padded labels (-100) of unequal
//! counts, so that only the update's count as HF takes it (over
//! `labels[..., 1:]`, the loss not divided by the accumulation steps) gives
//! HF's numbers; `--label_smoothing_factor` on causal LMs (HF shifts the
//! labels of its causal LM classes, and divides by the count it passes);
//! and trainbox's rule for "a causal LM class" checked against transformers'
//! own `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`.

use crate::own_model_parity::{assert_same_history, entries, flags, train_both_with};
use crate::util::{read_state, run_torch_python, Run};
use serde_json::{json, Value};
use std::path::Path;
use trainbox::torchscript::is_causal_lm_class;

/// The models and HF's run (`main(dir, case, flags)`).
const SCRIPT: &str = include_str!("loss_kwargs.py");

/// Exports `case` (`kwargs`: forward takes `num_items_in_batch`, named
/// GPT2LMHeadModel; `kwargs_causal`: the same named LlamaForCausalLM;
/// `no_kwargs`: it does not take it), trains it with HF's Trainer and with trainbox
/// under `flags`; returns (HF's log, trainbox's `log_history`).
fn train_both(
    test: &str,
    case: &str,
    flags: &[(&str, Value)],
    n: (usize, usize),
) -> (Value, Value) {
    train_both_with(("loss_kwargs", SCRIPT), test, case, flags, n)
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
fn num_items_of_a_causal_loss_type_count_shifted_labels_as_hf_trainer() {
    // Named LlamaForCausalLM: HF's loss type ForCausalLM, labels[..., 1:]
    // counted; the GPT-2 name above is counted unshifted.
    let (hf, tb) = train_both(
        "loss-kwargs-ga-causal",
        "kwargs_causal",
        &accumulated(&[]),
        (16, 12),
    );
    assert_eq!(entries(&hf["log_history"], "loss").len(), 4);
    assert_same_history(&hf, &tb);
    let smoothed = accumulated(&[("label_smoothing_factor", json!(0.1))]);
    let (hf, tb) = train_both(
        "loss-kwargs-smoothing-causal",
        "kwargs_causal",
        &smoothed,
        (16, 12),
    );
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

/// trainbox's entries (`loss`, `grad_norm`, `train_loss`, `eval_loss` by step).
fn training_numbers(dir: &Path) -> Vec<(String, f64)> {
    let state = read_state(&dir.join("out/trainer_state.json"));
    let mut numbers = Vec::new();
    for entry in state["log_history"].as_array().unwrap() {
        for key in ["loss", "grad_norm", "train_loss", "eval_loss"] {
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
    // one process takes it; each rank's own count makes another mean. The
    // evaluation (4 samples: one batch, or two of 2) too, as HF's
    // prediction_step counts over the ranks.
    let one = Run::command("loss-kwargs-ddp-one", &["train"]);
    std::fs::write(one.dir.join("loss_kwargs.py"), SCRIPT).unwrap();
    let flags = json!({"n_train": 16, "n_eval": 4, "hf": false}).to_string();
    std::fs::write(one.dir.join("hf_args.json"), flags).unwrap();
    run_torch_python(
        "import sys; sys.path.insert(0, sys.argv[1]); import loss_kwargs; loss_kwargs.main(*sys.argv[1:])",
        &[&one.dir, Path::new("kwargs"), &one.dir.join("hf_args.json")],
    );
    let file = |f: &str| one.dir.join(f).to_str().unwrap().to_owned();
    let (model, data, eval) = (
        file("model.pt"),
        file("train.parquet"),
        file("validation.parquet"),
    );
    let train = |run: Run, batch: &str, average: &str| {
        run.args(&[
            "--model",
            &model,
            "--train_file",
            &data,
            "--validation_file",
            &eval,
            "--output_dir",
            "out",
        ])
        .args(&[
            "--eval_strategy",
            "epoch",
            "--per_device_eval_batch_size",
            "4",
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
    assert_eq!(
        want.len(),
        10,
        "3 losses, 3 norms, 3 eval losses, train_loss: {want:?}"
    );
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

/// transformers' `_loss_shifts_labels` for real models (tiny configs) and,
/// for every class of its auto mappings, the loss type and the config's
/// `is_encoder_decoder` that the rule is made of.
const COUNT_RULE: &str = r#"
import json, re, tempfile, warnings
warnings.filterwarnings("ignore")
import transformers
from transformers import Trainer, TrainingArguments
from transformers.loss.loss_utils import LOSS_MAPPING, ForCausalLMLoss
from transformers.models.auto import modeling_auto as m
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
transformers.logging.set_verbosity_error()
tiny = dict(vocab_size=32, hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
            d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=16, decoder_ffn_dim=16, d_ff=16, d_kv=8, num_layers=1, num_heads=2,
            n_embd=16, n_layer=1, n_head=2)
real = {}
for cls, cfg in [("GPT2LMHeadModel", "GPT2Config"), ("LlamaForCausalLM", "LlamaConfig"),
                 ("BartForCausalLM", "BartConfig"), ("T5ForConditionalGeneration", "T5Config")]:
    config_cls = getattr(transformers, cfg)
    config = config_cls(**{k: v for k, v in tiny.items() if hasattr(config_cls(), k)})
    model = getattr(transformers, cls)(config)
    with tempfile.TemporaryDirectory() as d:
        args = TrainingArguments(output_dir=d, use_cpu=True, report_to=[])
        real[cls] = Trainer(model=model, args=args)._loss_shifts_labels
classes = {}
for name in dir(m):
    if name.startswith("MODEL_") and name.endswith("_MAPPING_NAMES"):
        for model_type, v in getattr(m, name).items():
            for c in (v if isinstance(v, (list, tuple)) else [v]):
                classes.setdefault(c, set()).add(model_type)
pattern = f"({'|'.join(LOSS_MAPPING)})"
encdec = {}
def is_encoder_decoder(model_type):
    if model_type not in encdec:
        try:
            encdec[model_type] = bool(getattr(CONFIG_MAPPING[model_type](), "is_encoder_decoder", False))
        except Exception:
            encdec[model_type] = None
    return encdec[model_type]
rows = []
for c, types in sorted(classes.items()):
    loss_type = c if c in LOSS_MAPPING else (re.findall(pattern, c) or [None])[0]
    flags = {is_encoder_decoder(t) for t in types}
    rows.append([c, loss_type, flags.pop() if len(flags) == 1 else None])
print(json.dumps({"real": real, "loss_types": [[k, v is ForCausalLMLoss] for k, v in LOSS_MAPPING.items()],
                  "classes": rows}))
"#;

#[test]
fn the_count_rule_agrees_with_transformers_loss_shifts_labels() {
    use trainbox::torchscript::{counts_shifted_labels, loss_type};
    let out = run_torch_python(COUNT_RULE, &[]);
    let got: Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    // HF's Trainer itself, on real models.
    for (class, shifts) in got["real"].as_object().unwrap() {
        assert_eq!(
            counts_shifted_labels(class),
            shifts.as_bool().unwrap(),
            "{class}: HF's _loss_shifts_labels is {shifts}"
        );
    }
    assert_eq!(got["real"]["GPT2LMHeadModel"], json!(false));
    assert_eq!(got["real"]["LlamaForCausalLM"], json!(true));
    // The loss types, in LOSS_MAPPING's order.
    let table: Vec<(String, bool)> = trainbox::torchscript::LOSS_TYPES
        .iter()
        .map(|(k, c)| (k.to_string(), *c))
        .collect();
    let theirs: Vec<(String, bool)> = serde_json::from_value(got["loss_types"].clone()).unwrap();
    assert_eq!(table, theirs, "LOSS_MAPPING changed");
    // Every class of the auto mappings: the same loss type, and counted
    // shifted when that type is a causal LM's, except the encoder-decoder
    // ...ForConditionalGeneration classes (a ...ForCausalLM decoder sets
    // is_encoder_decoder = False, as BartForCausalLM above).
    let rows = got["classes"].as_array().unwrap();
    assert!(rows.len() > 1000, "classes of transformers: {}", rows.len());
    let mut wrong = Vec::new();
    for row in rows {
        let class = row[0].as_str().unwrap();
        if loss_type(class) != row[1].as_str() {
            wrong.push(format!(
                "{class}: loss type {:?}, HF {}",
                loss_type(class),
                row[1]
            ));
            continue;
        }
        let causal = theirs
            .iter()
            .any(|(k, c)| Some(k.as_str()) == row[1].as_str() && *c);
        let encoder_decoder =
            row[2].as_bool() == Some(true) && class.ends_with("ForConditionalGeneration");
        if counts_shifted_labels(class) != (causal && !encoder_decoder) {
            wrong.push(format!(
                "{class}: counted shifted {}",
                counts_shifted_labels(class)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the count rule differs from HF's: {wrong:#?}"
    );
}
