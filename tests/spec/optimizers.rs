//! `--optim sgd | adagrad | rmsprop | adafactor` against the real HF
//! Trainer with the same `--optim` and `--optim_args`, on the parity
//! harness of `own_model_parity.rs` (the same model, weights and data on
//! both sides): every logged loss, grad norm and eval loss within 1e-5
//! relative, and every logged `learning_rate` equal bit for bit, each run
//! under a different `--lr_scheduler_type` with `--lr_scheduler_kwargs`.
//! Also: an unsupported name refused with the library it needs, and a
//! resume under another optimizer than the checkpoint's refused.

use serde_json::{json, Value};

use crate::own_model_parity::{assert_same_history, entries, flags, train_both};
use crate::resume::assert_resume_is_exact;
use crate::util::Run;

/// Every `learning_rate` HF logged, bit for bit trainbox's.
fn assert_same_learning_rates(hf_log: &Value, tb: &Value) {
    let bits = |h: &Value| -> Vec<u64> {
        entries(h, "learning_rate")
            .iter()
            .map(|e| e["learning_rate"].as_f64().unwrap().to_bits())
            .collect()
    };
    let (want, got) = (bits(&hf_log["log_history"]), bits(tb));
    assert_eq!(want.len(), got.len());
    assert!(
        want.windows(2).any(|w| w[0] != w[1]),
        "the schedule should move the learning rate"
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            w,
            g,
            "learning_rate of log {i}: HF {} trainbox {}",
            f64::from_bits(*w),
            f64::from_bits(*g)
        );
    }
}

/// One batch per epoch (the data order cannot differ), 14 updates.
fn parity(test: &str, changes: &[(&'static str, Value)]) {
    let mut all = vec![
        ("num_train_epochs", json!(14)),
        ("per_device_train_batch_size", json!(16)),
        ("max_grad_norm", json!(2.0)),
        ("eval_strategy", json!("epoch")),
    ];
    all.extend_from_slice(changes);
    let (hf, tb) = train_both(test, "regression", &flags(&all), (16, 8));
    assert_eq!(entries(&hf["log_history"], "loss").len(), 14);
    assert_same_history(&hf, &tb);
    assert_same_learning_rates(&hf, &tb);
}

#[test]
fn sgd_with_nesterov_momentum_and_restarts_match_hf_trainer() {
    parity(
        "optim-sgd",
        &[
            ("optim", json!("sgd")),
            (
                "optim_args",
                json!("momentum=0.9,nesterov=True,weight_decay=0.3"),
            ),
            ("lr_scheduler_type", json!("cosine_with_restarts")),
            ("lr_scheduler_kwargs", json!({"num_cycles": 2})),
        ],
    );
}

#[test]
fn adagrad_and_a_polynomial_decay_match_hf_trainer() {
    parity(
        "optim-adagrad",
        &[
            ("optim", json!("adagrad")),
            ("optim_args", json!("lr_decay=0.01")),
            ("lr_scheduler_type", json!("polynomial")),
            ("lr_scheduler_kwargs", json!({"lr_end": 1e-4, "power": 2.0})),
        ],
    );
}

#[test]
fn centered_rmsprop_and_warmup_stable_decay_match_hf_trainer() {
    parity(
        "optim-rmsprop",
        &[
            ("optim", json!("rmsprop")),
            ("optim_args", json!("momentum=0.5,alpha=0.9,centered=true")),
            ("learning_rate", json!(0.005)),
            ("lr_scheduler_type", json!("warmup_stable_decay")),
            (
                "lr_scheduler_kwargs",
                json!({"num_decay_steps": 5, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1}),
            ),
        ],
    );
}

#[test]
fn adafactor_and_reduce_on_plateau_match_hf_trainer() {
    // Evaluated every epoch, the plateau schedule halves the rate after
    // one evaluation without improvement (HF steps it on eval_loss).
    parity(
        "optim-adafactor",
        &[
            ("optim", json!("adafactor")),
            ("lr_scheduler_type", json!("reduce_lr_on_plateau")),
            (
                "lr_scheduler_kwargs",
                json!({"patience": 0, "factor": 0.5, "threshold": 0.05}),
            ),
        ],
    );
}

#[test]
fn adamw_torch_and_cosine_with_min_lr_match_hf_trainer() {
    parity(
        "optim-adamw-min-lr",
        &[
            ("optim", json!("adamw_torch")),
            ("lr_scheduler_type", json!("cosine_warmup_with_min_lr")),
            (
                "lr_scheduler_kwargs",
                json!({"min_lr": 0.005, "warmup_lr_rate": 0.2}),
            ),
        ],
    );
}

#[test]
fn an_optimizer_trainbox_does_not_link_is_refused_with_its_library() {
    let err = Run::regression("optim-refused")
        .args(&["--optim", "paged_adamw_8bit"])
        .fails();
    assert!(
        err.contains("--optim paged_adamw_8bit needs bitsandbytes, which trainbox does not link; use adamw_torch"),
        "{err}"
    );
}

#[test]
fn resuming_under_another_optimizer_is_one_clear_error() {
    let first = Run::regression("optim-resume-other").args(&[
        "--optim",
        "sgd",
        "--optim_args",
        "momentum=0.9",
        "--max_steps",
        "4",
        "--save_steps",
        "2",
    ]);
    let done = first.ok();
    assert!(done.checkpoints().contains(&2));
    let ckpt = first.out().join("checkpoint-2");
    let again = Run::regression("optim-resume-other-again").args(&[
        "--max_steps",
        "4",
        "--resume_from_checkpoint",
        ckpt.to_str().unwrap(),
    ]);
    let err = again.fails();
    assert!(
        err.contains("trained with --optim sgd, and this run has --optim adamw_torch_fused")
            && err.contains("resume with --optim sgd"),
        "{err}"
    );
    // The same optimizer resumes, its momentum buffers read back.
    Run::regression("optim-resume-same")
        .args(&[
            "--optim",
            "sgd",
            "--optim_args",
            "momentum=0.9",
            "--max_steps",
            "4",
            "--resume_from_checkpoint",
            ckpt.to_str().unwrap(),
        ])
        .ok();
}

/// The flags of the resume cases: 12 updates, checkpoints every 4.
fn resume_flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--max_steps",
        "12",
        "--save_steps",
        "4",
        "--logging_steps",
        "2",
        "--learning_rate",
        "0.01",
        "--weight_decay",
        "0.1",
    ];
    flags.extend_from_slice(extra);
    flags
}

#[test]
fn every_optimizer_resumes_exactly() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "sgd",
            &[
                "--optim",
                "sgd",
                "--optim_args",
                "momentum=0.9,dampening=0.1",
            ],
        ),
        (
            "adagrad",
            &["--optim", "adagrad", "--optim_args", "lr_decay=0.05"],
        ),
        (
            "rmsprop",
            &[
                "--optim",
                "rmsprop",
                "--optim_args",
                "momentum=0.5,centered=true",
            ],
        ),
        ("adafactor", &["--optim", "adafactor"]),
    ];
    for (name, extra) in cases {
        assert_resume_is_exact(&format!("optim-resume-{name}"), &resume_flags(extra), 4, 12);
    }
}

/// `reduce_lr_on_plateau` keeps its state in the checkpoint
/// (`scheduler.json`): a run resumed from step 4 logs the learning rates,
/// losses and evaluations of the run in one go and ends with its weights.
#[test]
fn the_plateau_schedule_resumes_exactly() {
    let flags = resume_flags(&[
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "2",
        "--lr_scheduler_type",
        "reduce_lr_on_plateau",
        "--lr_scheduler_kwargs",
        r#"{"patience": 0, "factor": 0.5, "threshold": 0.2}"#,
    ]);
    let whole = Run::regression("optim-resume-plateau-whole")
        .args(&flags)
        .ok();
    assert!(whole.out.join("checkpoint-4/scheduler.json").is_file());
    let ckpt = whole.out.join("checkpoint-4");
    let resumed = Run::regression("optim-resume-plateau-resumed")
        .args(&flags)
        .args(&["--resume_from_checkpoint", ckpt.to_str().unwrap()])
        .ok();
    let history = |d: &crate::util::Done| d.state("trainer_state.json")["log_history"].clone();
    let (a, b) = (history(&whole), history(&resumed));
    let lrs: Vec<f64> = entries(&a, "learning_rate")
        .iter()
        .map(|e| e["learning_rate"].as_f64().unwrap())
        .collect();
    assert!(
        lrs.windows(2).any(|w| w[1] < w[0]),
        "the plateau schedule should have lowered the rate: {lrs:?}"
    );
    for key in ["learning_rate", "loss", "eval_loss"] {
        let values = |h: &Value| -> Vec<(Value, Value)> {
            entries(h, key)
                .iter()
                .map(|e| (e["step"].clone(), e[key].clone()))
                .collect()
        };
        assert_eq!(
            values(&a),
            values(&b),
            "{key} of the whole run and the resumed one"
        );
    }
    let weights = |d: &crate::util::Done| {
        std::fs::read(d.out.join("checkpoint-12/model.safetensors")).unwrap()
    };
    assert!(
        weights(&whole) == weights(&resumed),
        "the final weights differ"
    );
}

/// `lr_scheduler_kwargs` as a table of a TOML config: the run's logged
/// learning rates are the library schedule's for the same arguments.
#[test]
fn scheduler_kwargs_come_from_a_config_table_too() {
    let run = Run::regression("optim-kwargs-toml");
    std::fs::write(
        run.dir.join("run.toml"),
        "max_steps = 9\nlogging_steps = 1\nsave_strategy = \"no\"\nlearning_rate = 0.02\nwarmup_steps = 2\nlr_scheduler_type = \"cosine_with_restarts\"\n[lr_scheduler_kwargs]\nnum_cycles = 2\n",
    )
    .unwrap();
    let done = run.args(&["--config", "run.toml"]).ok();
    let logged: Vec<u64> = entries(
        &done.state("trainer_state.json")["log_history"],
        "learning_rate",
    )
    .iter()
    .map(|e| e["learning_rate"].as_f64().unwrap().to_bits())
    .collect();
    let kwargs = trainbox::pyjson::Json::parse(r#"{"num_cycles": 2}"#).unwrap();
    let schedule = trainbox::trainer::schedule::Schedule::new(
        trainbox::args::SchedulerType::CosineWithRestarts,
        0.02,
        2,
        9,
        Some(&kwargs),
    )
    .unwrap();
    let want: Vec<u64> = (0..9).map(|s| schedule.lr(s).to_bits()).collect();
    assert_eq!(logged, want);
}

#[test]
fn a_metric_schedule_without_evaluation_is_refused_as_hf_does() {
    let err = Run::regression("optim-plateau-no-eval")
        .args(&["--lr_scheduler_type", "reduce_lr_on_plateau"])
        .fails();
    assert!(
        err.contains("lr_scheduler_type reduce_lr_on_plateau requires an eval strategy"),
        "{err}"
    );
}
