//! How dataset columns meet forward's arguments (`--model_input_names`,
//! `--label_names`, HF's renaming and dropping of columns), and
//! `trainbox train --model` on bad input: a file that is not a TorchScript
//! module, dataset files that are truncated, empty, of text, of mismatched
//! lengths or without the column forward needs, a loss that is not a
//! scalar, a wrong dtype, a shape the model rejects. Each is one clear
//! error (exit 2) naming the file and the column or argument, found before
//! any training step, and the previous run in `output_dir` is left byte for
//! byte.

use crate::own_model::{assert_close, check_with, fx, read_json, train};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir`, by relative path, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// (model, flags, what the error must say).
type Case = (&'static str, Vec<String>, Vec<&'static str>);

fn data(train: &str) -> Vec<String> {
    vec!["--train_file".into(), fx(train)]
}

fn cases() -> Vec<Case> {
    let mut eval_wide = data("reg_train.parquet");
    eval_wide.extend(["--validation_file".into(), fx("wide.parquet")]);
    vec![
        (
            "notes.pt",
            data("reg_train.parquet"),
            vec!["notes.pt", "torch.jit"],
        ),
        (
            "state_dict.pt",
            data("reg_train.parquet"),
            vec!["state_dict.pt", "torch.jit"],
        ),
        (
            "missing.pt",
            data("reg_train.parquet"),
            vec!["missing.pt", "no such file"],
        ),
        (
            "regressor.pt",
            data("truncated.parquet"),
            vec!["truncated.parquet", "truncated"],
        ),
        (
            "regressor.pt",
            data("no_x.parquet"),
            vec!["no_x.parquet", "`x`"],
        ),
        (
            "regressor.pt",
            data("empty.parquet"),
            vec!["empty.parquet", "empty"],
        ),
        (
            "regressor.pt",
            data("strings.csv"),
            vec!["strings.csv", "'x'", "text"],
        ),
        (
            "regressor.pt",
            data("mismatched.safetensors"),
            vec!["mismatched.safetensors", "'labels'", "mismatched lengths"],
        ),
        (
            "per_sample.pt",
            data("reg_train.parquet"),
            vec!["per_sample.pt", "not a scalar"],
        ),
        (
            "tagger.pt",
            data("float_ids.safetensors"),
            vec!["tagger.pt", "float_ids.safetensors", "input_ids", "Float"],
        ),
        (
            "regressor.pt",
            data("wide.parquet"),
            vec!["regressor.pt", "wide.parquet", "x", "8x5"],
        ),
        (
            "regressor.pt",
            eval_wide,
            vec!["regressor.pt", "wide.parquet", "x", "8x5"],
        ),
        (
            "regressor.pt",
            data("string_labels.parquet"),
            vec!["string_labels.parquet", "'labels'", "class ids"],
        ),
        (
            "fixed_batch.pt",
            [
                data("reg_train.parquet"),
                vec!["--max_train_samples".into(), "20".into()],
                vec!["--per_device_train_batch_size".into(), "8".into()],
            ]
            .concat(),
            vec![
                "fixed_batch.pt",
                "last batch",
                "samples 16-19",
                "reg_train.parquet",
            ],
        ),
    ]
}

#[test]
fn bad_models_and_bad_datasets_are_one_clear_error_before_training_and_destroy_nothing() {
    // A previous run's results in output_dir (no checkpoints, which a new
    // run would refuse to start over).
    let flags = "--train_file @reg_train.parquet --max_steps 2 --save_strategy no";
    let first = train("own_model_errors", "scalar.pt", flags).ok();
    let before = snapshot(&first.out);
    for name in ["model.pt", "model.safetensors", "trainer_state.json"] {
        assert!(
            before.contains_key(name),
            "the first run wrote {name}: {before:?}"
        );
    }
    let out = first.out.to_str().unwrap().to_string();
    let mut failures = Vec::new();
    for (model, flags, words) in cases() {
        let output = crate::util::trainbox()
            .args([
                "train",
                "--disable_tqdm",
                "--model",
                &fx(model),
                "--output_dir",
                &out,
            ])
            .args(&flags)
            .args(["--max_steps", "2", "--save_steps", "1"])
            .current_dir(first.out.parent().unwrap())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let what = format!("{model} {flags:?}");
        // The error is the last line (HF's note on ignored columns may come first).
        let error = stderr.lines().last().unwrap_or("");
        if output.status.code() != Some(2) || !error.starts_with("trainbox: ") {
            failures.push(format!(
                "{what}: expected exit status 2 and a `trainbox:` error, got {}\n{stdout}\n{stderr}",
                output.status
            ));
        } else if let Some(w) = words.iter().find(|w| !error.contains(*w)) {
            failures.push(format!("{what}: the error does not say {w:?}: {error}"));
        }
        if stderr.contains("panicked") || stderr.contains("Exception raised from") {
            failures.push(format!("{what}: a panic or a C++ backtrace: {stderr}"));
        }
        if stdout.contains("'loss'") || stdout.contains("\"loss\"") {
            failures.push(format!("{what}: a training step was logged: {stdout}"));
        }
        let after = snapshot(&first.out);
        if after != before {
            let changed: Vec<&String> = after
                .keys()
                .chain(before.keys())
                .filter(|k| after.get(*k) != before.get(*k))
                .collect();
            failures.push(format!("{what}: output_dir changed: {changed:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Columns bound to forward's arguments by `--model_input_names` (ragged
/// token lists under other names, their labels padded with -100 because
/// `--label_names` names them, the attention mask made from the tokens),
/// and as HF binds them by default: a `label` column renamed `labels`, an
/// unused column dropped, or an error with `--remove_unused_columns false`.
#[test]
fn columns_bind_by_model_input_names_label_names_and_hf_defaults() {
    let flags =
        "--train_file @tag_renamed_train.parquet --validation_file @tag_renamed_val.parquet \
        --model_input_names tokens,attention_mask,tags --label_names tags \
        --max_eval_samples 20 --learning_rate 0.05 --max_steps 4 --save_strategy no";
    let done = train("own_model_binding_tagger", "tagger.pt", flags).ok();
    let eval = read_json(&done.out.join("eval_results.json"));
    let py = check_with(
        "check_eval",
        &done.out,
        &[Path::new("tagger"), Path::new("tag_val"), Path::new("20")],
    );
    assert_close(
        &eval["eval_loss"],
        &py["loss"],
        1e-5,
        "tags padded with -100",
    );

    let flags = "--train_file @cls_label_train.parquet --validation_file @cls_label_val.parquet \
        --learning_rate 0.05 --max_steps 4 --save_strategy no";
    let done = train("own_model_binding_label", "classifier.pt", flags).ok();
    let eval = read_json(&done.out.join("eval_results.json"));
    let py = check_with(
        "check_eval",
        &done.out,
        &[
            Path::new("classifier"),
            Path::new("cls_val"),
            Path::new("24"),
        ],
    );
    assert_close(&eval["eval_loss"], &py["loss"], 1e-5, "label as labels");

    let strict = train("own_model_binding_strict", "classifier.pt", flags)
        .args(&["--remove_unused_columns", "false"])
        .fails();
    let error = strict.lines().last().unwrap();
    assert!(
        error.contains("cls_label_train.parquet") && error.contains("idx"),
        "{strict}"
    );
    assert!(!strict.contains("panicked"), "{strict}");
}

/// Columns forward does not take are dropped without being read, whatever
/// they hold (lists of text, structs, timestamps: CoNLL tokens, metadata),
/// as HF's `remove_unused_columns` drops them; asked for, each is an error.
#[test]
fn unused_columns_of_any_type_are_ignored_unread() {
    let flags = "--train_file @extra_columns.parquet --max_steps 2 --save_strategy no";
    let done = train("own_model_unused_columns", "regressor.pt", flags).ok();
    let note = done
        .stderr
        .lines()
        .find(|l| l.contains("have been ignored"))
        .unwrap_or_else(|| panic!("no note of the ignored columns: {}", done.stderr));
    for column in ["tokens", "meta", "stamp"] {
        assert!(note.contains(column), "{column}: {note}");
    }
    assert!(done.out.join("model.pt").is_file());
    let flags = "--train_file @extra_columns.parquet --model_input_names tokens,labels";
    let err = train("own_model_unused_columns_asked", "regressor.pt", flags).fails();
    assert!(
        err.contains("extra_columns.parquet") && err.contains("'tokens'") && err.contains("text"),
        "{err}"
    );
}
