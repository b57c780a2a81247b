//! The Hugging Face examples in `examples/`: each export script builds its
//! model from a `transformers` config (nothing downloaded), traces it and
//! writes its Parquet dataset; the real binary trains it a few dozen steps.
//! The tiny GPT-2's eval loss falls far below that of its random init (read
//! with `--do_eval` on the exported model); the tiny BERT classifier, fed
//! variable-length sentences padded by trainbox with an attention_mask it
//! makes, ends well above chance, and its predictions from padded batches
//! are the logits of each sentence alone.

use crate::util::{read_pyjson, run_torch_python, Run};
use std::path::{Path, PathBuf};
use trainbox::pyjson::Json;

/// The repository's `examples/` folder.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .join("export.py")
}

/// Runs an example's export script into `dir/data` with `args`; returns the folder.
fn export(name: &str, dir: &Path, args: &[&str]) -> PathBuf {
    let data = dir.join("data");
    let script = example(name);
    let mut argv: Vec<&Path> = vec![script.as_path(), data.as_path()];
    argv.extend(args.iter().map(Path::new));
    run_torch_python(
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
        &argv,
    );
    data
}

/// `trainbox train --model data/model.pt` on the example's Parquet files,
/// output in `run.dir/out_dir`.
fn train(run: Run, data: &Path, out_dir: &str) -> Run {
    let out = run.dir.join(out_dir);
    let file = |f: &str| data.join(f).to_str().unwrap().to_string();
    run.args(&["--disable_tqdm", "--model", &file("model.pt")])
        .args(&["--train_file", &file("train.parquet")])
        .args(&["--validation_file", &file("validation.parquet")])
        .args(&["--output_dir", out.to_str().unwrap()])
}

/// A number in one of HF's `*_results.json` files.
fn metric(out: &Path, file: &str, key: &str) -> f64 {
    let json = read_pyjson(&out.join(file));
    let value = json.as_object().and_then(|m| m.get(key));
    value
        .and_then(Json::as_f64)
        .unwrap_or_else(|| panic!("{file} has no number {key}: {value:?}"))
}

#[test]
fn tiny_gpt2_eval_loss_falls() {
    let run = Run::command("examples_gpt2", &["train"]);
    let data = export(
        "hf-gpt2",
        &run.dir,
        &["--n_train", "128", "--n_eval", "16", "--seq_len", "32"],
    );

    // The random init: eval only, no training.
    let before = train(run.clone(), &data, "init").args(&["--do_eval", "--metric", "perplexity"]);
    before.ok();
    let loss0 = metric(&run.dir.join("init"), "eval_results.json", "eval_loss");
    assert!(
        (loss0 - 256f64.ln()).abs() < 0.3,
        "a random byte-level GPT-2 should be near ln 256: {loss0}"
    );

    let after = train(run, &data, "out")
        .args(&[
            "--num_train_epochs",
            "3",
            "--per_device_train_batch_size",
            "8",
        ])
        .args(&[
            "--learning_rate",
            "3e-3",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "16",
        ])
        .args(&["--logging_steps", "8", "--metric", "perplexity"])
        .plugin("recorder");
    let done = after.ok();
    let out = &done.out;
    let loss = metric(out, "eval_results.json", "eval_loss");
    assert!(
        loss < loss0 - 1.5,
        "eval loss should fall well below the init's {loss0}: {loss}"
    );
    let ppl = metric(out, "eval_results.json", "eval_perplexity");
    assert!(
        (ppl - loss.exp()).abs() < 1e-3 * ppl,
        "perplexity {ppl} is not exp(eval_loss) {}",
        loss.exp()
    );
    assert!(metric(out, "all_results.json", "train_loss") > 0.0);
    assert_eq!(metric(out, "all_results.json", "eval_loss"), loss);
    assert!(out.join("model.pt").is_file() && out.join("model.safetensors").is_file());
    // Plugins see the run as any other: eval metrics reach on_evaluate.
    let evaluations = done
        .events()
        .into_iter()
        .filter(|e| e["event"] == "on_evaluate")
        .count();
    assert!(evaluations >= 3, "{evaluations} evaluations recorded");
}

/// The logits of each validation sample alone, unpadded, through the
/// trained `model.pt`, against trainbox's predictions from padded batches
/// with the attention_mask it made (without the mask they differ by ~1e-3):
/// prints the largest difference and whether `label_ids` are the labels.
const UNPADDED: &str = r#"
import sys, torch, pyarrow.parquet as pq
from safetensors.torch import load_file
model = torch.jit.load(sys.argv[2] + "/model.pt").eval()
rows = pq.read_table(sys.argv[1] + "/validation.parquet").to_pylist()
with torch.no_grad():
    alone = torch.cat([model(torch.tensor([r["input_ids"]]), torch.ones(1, len(r["input_ids"]), dtype=torch.long),
                             torch.tensor([r["labels"]]))[1] for r in rows])
pred = load_file(sys.argv[2] + "/predictions.safetensors")
labels = torch.tensor([r["labels"] for r in rows])
print((pred["predictions"] - alone).abs().max().item(), torch.equal(pred["label_ids"], labels))
"#;

#[test]
fn tiny_bert_classifier_learns() {
    let run = Run::command("examples_bert", &["train"]);
    let data = export("hf-bert", &run.dir, &["--n_train", "384", "--n_eval", "96"]);
    let test_file = data.join("validation.parquet");
    let done = train(run, &data, "out")
        .args(&[
            "--num_train_epochs",
            "2",
            "--per_device_train_batch_size",
            "16",
        ])
        .args(&["--learning_rate", "2e-3", "--eval_strategy", "epoch"])
        .args(&["--metric", "accuracy", "--logging_steps", "8"])
        .args(&["--test_file", test_file.to_str().unwrap()])
        .ok();
    let out = &done.out;
    let accuracy = metric(out, "eval_results.json", "eval_accuracy");
    assert!(
        accuracy > 0.9,
        "telling English from German should be far above chance (0.5): {accuracy}"
    );
    assert_eq!(metric(out, "eval_results.json", "eval_samples"), 96.0);
    assert_eq!(metric(out, "all_results.json", "eval_accuracy"), accuracy);
    assert_eq!(metric(out, "all_results.json", "train_samples"), 384.0);

    let predicted = metric(out, "predict_results.json", "predict_accuracy");
    assert_eq!(predicted, accuracy, "the validation file as test file");
    let seen = run_torch_python(UNPADDED, &[&data, out]);
    let (diff, labels) = seen.trim().split_once(' ').unwrap();
    let diff: f64 = diff.parse().unwrap();
    assert!(
        diff < 1e-5,
        "logits from padded batches differ from the unpadded ones by {diff}"
    );
    assert_eq!(labels, "True", "label_ids are not the validation labels");
}
