//! Parity with the real Hugging Face Trainer: the same small model, from the
//! same initial weights, on the same Parquet files, trained by
//! `transformers.Trainer` (the eager `nn.Module`) and by `trainbox train
//! --model model.pt` (its `torch.jit.trace`). One batch per epoch (or one
//! update of two accumulated batches), so that the data order cannot differ;
//! a warm-up and linear schedule, clipping that bites on some steps only,
//! weight decay; HF's weight-decay groups (by name and by LayerNorm type),
//! a tied parameter, a real HF model (a tiny GPT-2). Every logged `loss`,
//! `grad_norm`, `learning_rate`, `eval_loss` and the final `train_loss` must
//! agree within 1e-5 relative.

use serde_json::{json, Value};
use std::path::Path;

use crate::util::{read_state, run_torch_python, Run};

/// The models, the Parquet files and HF's run. `main(dir, case, flags)`
/// writes `dir/model.pt`, `train.parquet`, `validation.parquet` and
/// `hf_log.json` (HF's `log_history`, its weight-decay parameter names).
const PARITY: &str = r#"
import json
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn


class Regressor(nn.Module):
    """Float features (a fixed-length list column), float labels, MSE;
    returns (loss, logits) as HF's return_dict=False."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 1)

    def forward(self, x, labels):
        pred = self.head(torch.tanh(self.norm(self.proj(x)))).squeeze(-1)
        return ((pred - labels) ** 2).mean(), pred


class Classifier(nn.Module):
    """Token ids (an int list column), int labels, cross-entropy."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.ln_f = nn.LayerNorm(8)
        self.out = nn.Linear(8, 3)

    def forward(self, input_ids, labels):
        logits = self.out(self.ln_f(self.embed(input_ids).mean(1)))
        return nn.functional.cross_entropy(logits, labels), logits


class BertNames(nn.Module):
    """A LayerNorm named as BERT names it (`LayerNorm`), which HF exempts
    from weight decay by its name."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(6, 16)
        self.LayerNorm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 1)

    def forward(self, x, labels):
        pred = self.head(torch.tanh(self.LayerNorm(self.dense(x)))).squeeze(-1)
        return ((pred - labels) ** 2).mean(), pred


class NormByType(nn.Module):
    """A LayerNorm inside a Sequential (`body.1`), which HF exempts from
    weight decay by its type alone."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.Tanh())
        self.head = nn.Linear(16, 1)

    def forward(self, x, labels):
        pred = self.head(self.body(x)).squeeze(-1)
        return ((pred - labels) ** 2).mean(), pred


class Smoothing(nn.Module):
    """The classifier, called without labels as HF's Trainer calls it under
    label_smoothing_factor (it pops the labels): then only (logits,)."""

    def __init__(self):
        super().__init__()
        from transformers import PretrainedConfig

        # HF's Trainer reads config.problem_type before it smooths labels.
        self.config = PretrainedConfig()
        self.embed = nn.Embedding(20, 8)
        self.ln_f = nn.LayerNorm(8)
        self.out = nn.Linear(8, 3)

    def forward(self, input_ids, labels=None):
        logits = self.out(self.ln_f(self.embed(input_ids).mean(1)))
        if labels is None:
            return (logits,)
        return nn.functional.cross_entropy(logits, labels), logits


class Tied(nn.Module):
    """An output layer tied to the embedding (as GPT-2's lm_head to wte):
    one parameter under two names, which HF counts and updates once."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.head = nn.Linear(8, 20, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, input_ids, labels):
        logits = self.head(torch.tanh(self.embed(input_ids).mean(1)))
        return nn.functional.cross_entropy(logits, labels), logits


class Gpt2(nn.Module):
    """A real HF model: a tiny GPT-2 (random init), called as trainbox's
    examples call it (return_dict=False, use_cache=False); LayerNorms
    ln_*, Conv1D weights, lm_head tied to wte."""

    def __init__(self):
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                            bos_token_id=None, eos_token_id=None)
        self.model = GPT2LMHeadModel(config)

    def forward(self, input_ids, labels):
        return self.model(input_ids=input_ids, labels=labels, return_dict=False,
                          use_cache=False)[:2]


MODELS = {"regression": Regressor, "classifier": Classifier, "bert_names": BertNames,
          "norm_by_type": NormByType, "tied": Tied, "gpt2": Gpt2,
          "smoothing": Smoothing}


def data(case, n):
    """Python lists, as a user hands them to datasets.Dataset.from_dict:
    floats become float64 in Parquet, ints int64."""
    g = torch.Generator().manual_seed(1)
    if case == "gpt2":
        ids = torch.randint(0, 64, (n, 16), generator=g).tolist()
        return {"input_ids": ids, "labels": ids}
    if case in ("classifier", "tied", "smoothing"):
        ids = torch.randint(0, 20, (n, 5), generator=g)
        return {"input_ids": ids.tolist(), "labels": (ids.sum(1) % 3).tolist()}
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    y = torch.sin(x @ torch.linspace(-1, 1, 6, dtype=torch.float64)) * 3 + 1
    return {"x": x.tolist(), "labels": y.tolist()}


def rows(path):
    """A Parquet file as datasets' torch format gives its rows: floats
    float32, ints int64."""
    table = pq.read_table(path).to_pydict()
    n = len(next(iter(table.values())))

    def tensor(v):
        t = torch.tensor(v)
        return t.float() if t.is_floating_point() else t.long()

    return [{k: tensor(v[i]) for k, v in table.items()} for i in range(n)]


def main(out, case, flags_path):
    from transformers import Trainer, TrainingArguments

    flags = json.load(open(flags_path))
    n_train, n_eval = flags.pop("n_train"), flags.pop("n_eval")
    columns = data(case, n_train + n_eval)
    for name, part in [("train", slice(0, n_train)), ("validation", slice(n_train, None))]:
        table = pa.table({k: pa.array(v[part]) for k, v in columns.items()})
        pq.write_table(table, f"{out}/{name}.parquet")

    torch.manual_seed(0)
    model = MODELS[case]()
    first = rows(f"{out}/train.parquet")[:2]
    example = tuple(torch.stack([r[k] for r in first]) for k in first[0])
    torch.jit.trace(model, example).save(f"{out}/model.pt")

    args = TrainingArguments(output_dir=f"{out}/hf", use_cpu=True, report_to=[], disable_tqdm=True,
                             save_strategy="no", **flags)
    trainer = Trainer(model=model, args=args, train_dataset=rows(f"{out}/train.parquet"),
                      eval_dataset=rows(f"{out}/validation.parquet"))
    trainer.train()
    log = {"log_history": trainer.state.log_history,
           "decay": sorted(trainer.get_decay_parameter_names(model)),
           "params": sorted(n for n, _ in model.named_parameters())}
    json.dump(log, open(f"{out}/hf_log.json", "w"), indent=1)
"#;

/// The training arguments both sides get, as HF's `TrainingArguments`
/// keyword arguments and as trainbox's flags: a shared base with `changes`.
pub(crate) fn flags(changes: &[(&'static str, Value)]) -> Vec<(&'static str, Value)> {
    let mut flags = vec![
        ("per_device_eval_batch_size", json!(8)),
        ("learning_rate", json!(0.05)),
        ("warmup_steps", json!(2)),
        ("lr_scheduler_type", json!("linear")),
        ("weight_decay", json!(0.1)),
        ("logging_steps", json!(1)),
        ("seed", json!(7)),
    ];
    for (k, v) in changes {
        flags.retain(|(old, _)| old != k);
        flags.push((k, v.clone()));
    }
    flags
}

/// Exports `case`, trains it with HF's Trainer and with trainbox under
/// `flags` on `n_train` training and `n_eval` validation samples; returns
/// (HF's log, trainbox's `log_history`).
pub(crate) fn train_both(
    test: &str,
    case: &str,
    flags: &[(&str, Value)],
    n: (usize, usize),
) -> (Value, Value) {
    train_both_with(("parity", PARITY), test, case, flags, n)
}

/// [`train_both`] with HF's side run by `script`: (module name, its text),
/// a Python module whose `main(dir, case, flags)` exports `case` and writes
/// HF's log to `hf_log.json`.
pub(crate) fn train_both_with(
    script: (&str, &str),
    test: &str,
    case: &str,
    flags: &[(&str, Value)],
    n: (usize, usize),
) -> (Value, Value) {
    let mut cli = vec![
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
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    let mut hf = serde_json::Map::new();
    for (k, v) in flags {
        cli.push(format!("--{k}"));
        cli.push(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        hf.insert(k.to_string(), v.clone());
    }
    hf.insert("n_train".into(), json!(n.0));
    hf.insert("n_eval".into(), json!(n.1));
    let run = Run::command(test, &cli.iter().map(String::as_str).collect::<Vec<_>>());
    let (module, text) = script;
    std::fs::write(run.dir.join(format!("{module}.py")), text).unwrap();
    std::fs::write(run.dir.join("hf_args.json"), Value::Object(hf).to_string()).unwrap();
    run_torch_python(
        &format!(
            "import sys; sys.path.insert(0, sys.argv[1]); import {module}; {module}.main(*sys.argv[1:])"
        ),
        &[&run.dir, Path::new(case), &run.dir.join("hf_args.json")],
    );
    let hf_log: Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("hf_log.json")).unwrap())
            .unwrap();
    run.ok();
    let state = read_state(&run.dir.join("out/trainer_state.json"));
    (hf_log, state["log_history"].clone())
}

/// `a` and `b` agree within 1e-5 relative (1e-12 absolute, for a learning
/// rate of 0 in the first warm-up step).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-12
}

/// The entries of a log history that hold `key`, as (step, epoch, entry).
pub(crate) fn entries<'a>(history: &'a Value, key: &str) -> Vec<&'a Value> {
    history
        .as_array()
        .expect("log_history is a list")
        .iter()
        .filter(|e| e.get(key).is_some())
        .collect()
}

/// Every training log, evaluation and the final `train_loss` of trainbox's
/// history agree with HF's: same steps and epochs, same values.
pub(crate) fn assert_same_history(hf_log: &Value, tb: &Value) {
    let hf = &hf_log["log_history"];
    let groups: [(&str, &[&str]); 3] = [
        ("loss", &["loss", "grad_norm", "learning_rate"]),
        ("eval_loss", &["eval_loss"]),
        ("train_loss", &["train_loss"]),
    ];
    for (marker, keys) in groups {
        let (want, got) = (entries(hf, marker), entries(tb, marker));
        assert_eq!(
            want.len(),
            got.len(),
            "HF logged {marker} {} times, trainbox {}:\nHF {hf:#}\ntrainbox {tb:#}",
            want.len(),
            got.len()
        );
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(
                w["step"], g["step"],
                "{marker} entries at other steps: {w} vs {g}"
            );
            let epoch = |e: &Value| e["epoch"].as_f64().unwrap();
            assert!(close(epoch(w), epoch(g)), "epochs differ: {w} vs {g}");
            for key in keys {
                let (a, b) = (w[*key].as_f64(), g[*key].as_f64());
                let (Some(a), Some(b)) = (a, b) else {
                    panic!("{key} missing at step {}: HF {w}, trainbox {g}", w["step"]);
                };
                assert!(
                    close(a, b),
                    "{key} at step {} differs: HF {a}, trainbox {b} (relative {:.2e}); HF decays {} of {}\nHF {w}\ntrainbox {g}",
                    w["step"],
                    (a - b).abs() / a.abs().max(b.abs()),
                    hf_log["decay"],
                    hf_log["params"]
                );
            }
        }
    }
}

/// The gradient norms HF logged straddle `max_grad_norm`: clipping bit on
/// some steps and not on others, so both paths are compared.
fn assert_clipping_bites_sometimes(hf_log: &Value, max_grad_norm: f64) {
    let norms: Vec<f64> = entries(&hf_log["log_history"], "grad_norm")
        .iter()
        .map(|e| e["grad_norm"].as_f64().unwrap())
        .collect();
    assert!(
        norms.iter().any(|n| *n > max_grad_norm) && norms.iter().any(|n| *n < max_grad_norm),
        "the set-up should clip on some steps only: grad norms {norms:?}, max {max_grad_norm}"
    );
}

#[test]
fn one_batch_per_epoch_matches_hf_trainer_step_by_step() {
    // 16 samples, batch 16: one batch per epoch; 12 validation samples in
    // eval batches of 8 and 4, so eval_loss is weighted by batch size.
    let flags = flags(&[
        ("num_train_epochs", json!(8)),
        ("per_device_train_batch_size", json!(16)),
        ("max_grad_norm", json!(3.0)),
        ("eval_strategy", json!("epoch")),
    ]);
    let (hf, tb) = train_both("own-model-parity", "regression", &flags, (16, 12));
    assert_clipping_bites_sometimes(&hf, 3.0);
    assert_eq!(entries(&hf["log_history"], "loss").len(), 8);
    assert_same_history(&hf, &tb);
}

#[test]
fn gradient_accumulation_matches_hf_trainer() {
    // 16 samples in batches of 8, two accumulated into one update an epoch:
    // the update sums both batches, whatever their order; int columns.
    let flags = flags(&[
        ("num_train_epochs", json!(6)),
        ("per_device_train_batch_size", json!(8)),
        ("gradient_accumulation_steps", json!(2)),
        ("max_grad_norm", json!(0.4)),
        ("eval_strategy", json!("steps")),
        ("eval_steps", json!(2)),
    ]);
    let (hf, tb) = train_both("own-model-parity-ga", "classifier", &flags, (16, 12));
    assert_clipping_bites_sometimes(&hf, 0.4);
    assert_eq!(entries(&hf["log_history"], "eval_loss").len(), 3);
    assert_same_history(&hf, &tb);
}

/// The flags of the weight-decay cases: a large decay, so that a
/// parameter decayed on one side only shows at once.
fn decay_flags() -> Vec<(&'static str, Value)> {
    flags(&[
        ("num_train_epochs", json!(6)),
        ("per_device_train_batch_size", json!(16)),
        ("weight_decay", json!(0.5)),
        ("max_grad_norm", json!(4.0)),
        ("eval_strategy", json!("epoch")),
    ])
}

#[test]
fn weight_decay_spares_a_layer_norm_named_as_bert_names_it() {
    let (hf, tb) = train_both(
        "own-model-parity-bert-names",
        "bert_names",
        &decay_flags(),
        (16, 8),
    );
    assert_eq!(
        hf["decay"],
        json!(["dense.weight", "head.weight"]),
        "HF's own grouping"
    );
    assert_clipping_bites_sometimes(&hf, 4.0);
    assert_same_history(&hf, &tb);
}

#[test]
fn weight_decay_spares_a_layer_norm_known_by_its_type_only() {
    let (hf, tb) = train_both(
        "own-model-parity-norm-type",
        "norm_by_type",
        &decay_flags(),
        (16, 8),
    );
    assert_eq!(
        hf["decay"],
        json!(["body.0.weight", "head.weight"]),
        "HF's own grouping"
    );
    assert_same_history(&hf, &tb);
}

#[test]
fn a_tied_parameter_is_one_parameter_as_in_hf() {
    let flags = flags(&[
        ("num_train_epochs", json!(6)),
        ("per_device_train_batch_size", json!(16)),
        ("max_grad_norm", json!(1.0)),
        ("eval_strategy", json!("epoch")),
    ]);
    let (hf, tb) = train_both("own-model-parity-tied", "tied", &flags, (16, 8));
    assert_eq!(hf["params"], json!(["embed.weight"]), "HF's own parameters");
    assert_same_history(&hf, &tb);
}

#[test]
fn a_tiny_gpt2_matches_hf_trainer_step_by_step() {
    let flags = flags(&[
        ("num_train_epochs", json!(5)),
        ("per_device_train_batch_size", json!(8)),
        ("learning_rate", json!(0.01)),
        ("max_grad_norm", json!(1.05)),
        ("eval_strategy", json!("epoch")),
    ]);
    let (hf, tb) = train_both("own-model-parity-gpt2", "gpt2", &flags, (8, 12));
    assert_clipping_bites_sometimes(&hf, 1.05);
    assert!(
        !hf["params"]
            .as_array()
            .unwrap()
            .contains(&json!("model.lm_head.weight")),
        "lm_head is tied to wte: {}",
        hf["params"]
    );
    assert_same_history(&hf, &tb);
}
