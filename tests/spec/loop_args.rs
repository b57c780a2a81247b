//! The loop's training arguments: `--label_smoothing_factor` and
//! `--include_num_input_tokens_seen` against the real HF Trainer (the parity
//! harness of `own_model_parity.rs`), `--save_only_model` checkpoints and
//! their refused resume, `--dataloader_num_workers` (bit-identical losses),
//! `--data_seed` (the order, not the initialisation), `--full_determinism`,
//! `--torch_empty_cache_steps` and `--eval_accumulation_steps` on the CPU.

use crate::own_model_parity::{assert_same_history, entries, flags, train_both};
use crate::util::Run;
use serde_json::{json, Value};

#[test]
fn label_smoothing_matches_hf_trainer() {
    // One batch of 16 per epoch, 4 epochs; 12 validation samples: every
    // logged loss and eval_loss is the smoothed one, as HF's LabelSmoother.
    let flags = flags(&[
        ("num_train_epochs", json!(4)),
        ("per_device_train_batch_size", json!(16)),
        ("eval_strategy", json!("epoch")),
        ("label_smoothing_factor", json!(0.2)),
    ]);
    let (hf, tb) = train_both("loop-args-smoothing", "smoothing", &flags, (16, 12));
    assert_eq!(entries(&hf["log_history"], "eval_loss").len(), 4);
    assert_same_history(&hf, &tb);
    // The same run without smoothing logs other losses: the factor bites.
    let plain = crate::own_model_parity::flags(&[
        ("num_train_epochs", json!(4)),
        ("per_device_train_batch_size", json!(16)),
        ("eval_strategy", json!("epoch")),
    ]);
    let (_, unsmoothed) = train_both("loop-args-no-smoothing", "smoothing", &plain, (16, 12));
    let first = |h: &Value| entries(h, "loss")[0]["loss"].as_f64().unwrap();
    assert_ne!(first(&tb), first(&unsmoothed));
}

#[test]
fn num_input_tokens_seen_matches_hf_trainer() {
    // Batches of 8 samples of 5 tokens, two accumulated per update: every
    // log entry carries HF's count, training logs its speed too.
    let flags = flags(&[
        ("num_train_epochs", json!(2)),
        ("per_device_train_batch_size", json!(8)),
        ("gradient_accumulation_steps", json!(2)),
        ("eval_strategy", json!("epoch")),
        ("include_num_input_tokens_seen", json!("all")),
    ]);
    let (hf, tb) = train_both("loop-args-tokens", "classifier", &flags, (16, 8));
    let hf = hf["log_history"].as_array().unwrap();
    let tb = tb.as_array().unwrap();
    assert_eq!(hf.len(), tb.len(), "HF {hf:#?}\ntrainbox {tb:#?}");
    for (w, g) in hf.iter().zip(tb) {
        assert_eq!(w["step"], g["step"]);
        assert_eq!(
            w["num_input_tokens_seen"], g["num_input_tokens_seen"],
            "HF {w}\ntrainbox {g}"
        );
        for key in ["train_runtime", "train_tokens_per_second"] {
            assert_eq!(
                w.get(key).is_some(),
                g.get(key).is_some(),
                "{key}: HF {w}, trainbox {g}"
            );
        }
    }
    // 2 epochs of 16 samples of 5 tokens.
    assert_eq!(tb.last().unwrap()["num_input_tokens_seen"], json!(160));
}

#[test]
fn label_smoothing_of_a_model_that_gives_only_a_loss_is_refused() {
    let err = Run::regression("loop-args-smoothing-loss-only")
        .args(&["--label_smoothing_factor", "0.1", "--max_steps", "1"])
        .fails();
    assert!(
        err.contains("--label_smoothing_factor needs the model's logits"),
        "{err}"
    );
}

#[test]
fn save_only_model_checkpoints_hold_the_model_and_refuse_a_resume() {
    let run = Run::regression("loop-args-save-only-model").args(&[
        "--max_steps",
        "4",
        "--save_steps",
        "2",
        "--save_only_model",
    ]);
    let done = run.ok();
    assert_eq!(done.checkpoints(), [2, 4]);
    let ckpt = run.out().join("checkpoint-2");
    let mut files: Vec<String> = std::fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "model.safetensors",
            "trainer_state.json",
            "training_args.json"
        ],
        "{}",
        ckpt.display()
    );
    let err = Run::regression("loop-args-save-only-model-resume")
        .args(&["--max_steps", "6", "--resume_from_checkpoint"])
        .arg(ckpt.to_str().unwrap())
        .fails();
    assert!(err.contains("saved with --save_only_model"), "{err}");
    assert!(err.contains("checkpoint-2"), "{err}");
}

/// A small sort run (a transformer: dropout-free, so the order alone moves
/// the losses) with `extra` flags; its `log_history`.
fn sort_history(test: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "train",
        "--task",
        "sort",
        "--disable_tqdm",
        "--report_to",
        "none",
        "--output_dir",
        "out",
        "--save_strategy",
        "no",
        "--max_steps",
        "6",
        "--logging_steps",
        "1",
        "--per_device_train_batch_size",
        "16",
        "--learning_rate",
        "0.01",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "3",
        "--eval_on_start",
    ];
    for option in [
        "train_size=160",
        "eval_size=40",
        "length=8",
        "d_model=16",
        "layers=1",
        "heads=2",
    ] {
        args.extend(["--task_option", option]);
    }
    args.extend(extra);
    let run = Run::command(test, &args);
    let done = run.ok();
    done.state("trainer_state.json")["log_history"]
        .as_array()
        .unwrap()
        .clone()
}

/// The values of `key` in a history, in order.
fn values(history: &[Value], key: &str) -> Vec<f64> {
    history
        .iter()
        .filter_map(|e| e.get(key).and_then(Value::as_f64))
        .collect()
}

#[test]
fn workers_give_bit_identical_losses() {
    let alone = sort_history("loop-args-workers-0", &[]);
    let ahead = sort_history(
        "loop-args-workers-2",
        &[
            "--dataloader_num_workers",
            "2",
            "--dataloader_prefetch_factor",
            "3",
        ],
    );
    for key in [
        "loss",
        "grad_norm",
        "eval_loss",
        "eval_accuracy",
        "train_loss",
    ] {
        let (a, b) = (values(&alone, key), values(&ahead, key));
        assert!(!a.is_empty(), "{key} logged");
        // Bit for bit: the same batches, in the same order.
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{key}: 0 workers {a:?}, 2 workers {b:?}"
        );
    }
}

#[test]
fn data_seed_changes_the_order_but_not_the_initialisation() {
    let base = sort_history("loop-args-seed", &[]);
    let same = sort_history("loop-args-data-seed-42", &["--data_seed", "42"]);
    let other = sort_history("loop-args-data-seed-7", &["--data_seed", "7"]);
    // --data_seed equal to --seed (42) is the run without it.
    assert_eq!(values(&base, "loss"), values(&same, "loss"));
    // The evaluation before any update sees the same initial weights.
    assert_eq!(
        values(&base, "eval_loss")[0],
        values(&other, "eval_loss")[0]
    );
    // Another data seed: other batches, other losses from the first step.
    assert_ne!(values(&base, "loss")[0], values(&other, "loss")[0]);
}

#[test]
fn full_determinism_and_cache_emptying_train_as_without_on_the_cpu() {
    let plain = sort_history("loop-args-plain", &[]);
    let strict = sort_history(
        "loop-args-determinism",
        &[
            "--full_determinism",
            "--torch_empty_cache_steps",
            "2",
            "--eval_accumulation_steps",
            "1",
        ],
    );
    assert_eq!(values(&plain, "loss"), values(&strict, "loss"));
    assert_eq!(values(&plain, "eval_loss"), values(&strict, "eval_loss"));
}

#[test]
fn loop_arguments_are_checked_as_hf_checks_them() {
    for (flags, says) in [
        (
            &["--dataloader_prefetch_factor", "2"][..],
            "--dataloader_prefetch_factor can only be set when data is loaded in a different process",
        ),
        (
            &["--torch_empty_cache_steps", "0"][..],
            "`torch_empty_cache_steps` must be an integer bigger than 0",
        ),
        (
            &["--include_num_input_tokens_seen", "some"][..],
            "expected all, non_padding or no",
        ),
    ] {
        let err = Run::regression("loop-args-checks").args(flags).fails();
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

/// A linear model that gives its outputs as predictions (logits).
struct Scores {
    vs: tch::nn::VarStore,
    layer: tch::nn::Linear,
}

impl trainbox::Model for Scores {
    fn var_store(&self) -> &tch::nn::VarStore {
        &self.vs
    }
    fn loss(&self, batch: &trainbox::Batch, _train: bool) -> anyhow::Result<tch::Tensor> {
        Ok(batch
            .get("x")?
            .apply(&self.layer)
            .cross_entropy_for_logits(batch.get("labels")?))
    }
    fn eval_batch(&self, batch: &trainbox::Batch) -> anyhow::Result<trainbox::EvalBatch> {
        let logits = batch.get("x")?.apply(&self.layer);
        Ok(trainbox::EvalBatch {
            loss: Some(logits.cross_entropy_for_logits(batch.get("labels")?)),
            predictions: Some(logits),
            labels: Some(batch.get("labels")?.shallow_clone()),
            ..Default::default()
        })
    }
}

#[test]
fn eval_accumulation_steps_and_workers_leave_predictions_as_they_are() {
    use tch::{Kind, Tensor};
    let predict = |accumulate: Option<u32>, workers: u32| {
        tch::manual_seed(3);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let layer = tch::nn::linear(vs.root(), 4, 3, Default::default());
        let x = Tensor::randn([21, 4], (Kind::Float, tch::Device::Cpu));
        let labels = Tensor::randint(3, [21], (Kind::Int64, tch::Device::Cpu));
        let data = trainbox::TensorDataset::new([("x", x), ("labels", labels)]);
        let dir = crate::util::fresh_dir("loop-args-eval-accumulation");
        let args = trainbox::TrainingArguments {
            output_dir: dir.join("out").display().to_string(),
            per_device_eval_batch_size: 4,
            eval_accumulation_steps: accumulate,
            dataloader_num_workers: workers,
            label_smoothing_factor: 0.1,
            ..Default::default()
        };
        let train = trainbox::TensorDataset::new([(
            "x",
            Tensor::zeros([1, 4], (Kind::Float, tch::Device::Cpu)),
        )]);
        let mut t =
            trainbox::Trainer::builder(args, Box::new(Scores { vs, layer }), Box::new(train))
                .build()
                .unwrap();
        t.predict(&data, "test").unwrap()
    };
    let base = predict(None, 0);
    let preds = base.predictions.as_ref().unwrap();
    assert_eq!(preds.size(), [21, 3]);
    for (accumulate, workers) in [(Some(1), 0), (Some(2), 0), (Some(5), 2), (None, 3)] {
        let other = predict(accumulate, workers);
        assert!(
            other.predictions.unwrap().equal(preds),
            "{accumulate:?} {workers}"
        );
        assert!(other
            .label_ids
            .unwrap()
            .equal(base.label_ids.as_ref().unwrap()));
        assert_eq!(
            other.metrics.get("test_loss"),
            base.metrics.get("test_loss")
        );
    }
    // The loss is label-smoothed (from the predictions), not the model's.
    let labels = base.label_ids.as_ref().unwrap();
    let plain = preds.cross_entropy_for_logits(labels).double_value(&[]);
    let Some(trainbox::Value::Float(smoothed)) = base.metrics.get("test_loss") else {
        panic!("{:?}", base.metrics)
    };
    assert!((smoothed - plain).abs() > 1e-4, "{smoothed} vs {plain}");
}

#[test]
fn workers_on_dataset_files_train_as_hf_trainer_with_workers() {
    // Parquet files batched by 2 worker threads (HF: 2 worker processes),
    // 4 batches of 4 an epoch, all accumulated into one update (so that
    // the two samplers' orders cannot differ), 3 evaluation batches.
    let flags = flags(&[
        ("num_train_epochs", json!(3)),
        ("per_device_train_batch_size", json!(4)),
        ("per_device_eval_batch_size", json!(3)),
        ("gradient_accumulation_steps", json!(4)),
        ("eval_strategy", json!("epoch")),
        ("dataloader_num_workers", json!(2)),
    ]);
    let (hf, tb) = train_both("loop-args-file-workers", "classifier", &flags, (16, 8));
    assert_same_history(&hf, &tb);
}

#[test]
fn logging_dir_is_where_tensorboard_writes_its_events() {
    let run = Run::regression("loop-args-logging-dir");
    let logdir = run.dir.join("tb");
    let env_dir = run.dir.join("from-env");
    let done = run
        .args(&["--logging_steps", "8", "--report_to", "tensorboard"])
        .arg("--logging_dir")
        .arg(logdir.to_str().unwrap())
        // The flag wins over HF 5's variable.
        .env("TENSORBOARD_LOGGING_DIR", env_dir.to_str().unwrap())
        .ok();
    // As HF 4's logging_dir: the events right there, no run folder.
    let files: Vec<String> = std::fs::read_dir(&logdir)
        .unwrap_or_else(|e| panic!("{}: {e}", logdir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("events.out.tfevents."), "{files:?}");
    assert!(!env_dir.exists(), "TENSORBOARD_LOGGING_DIR is not written");
    assert!(!done.out.join("runs").exists(), "no output_dir/runs");
}
