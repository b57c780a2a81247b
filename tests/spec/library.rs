//! The library API: a user's own tch model and data, a native callback,
//! and the same `Trainer` the binary uses.

use anyhow::Result;
use std::sync::{Arc, Mutex};
use tch::{nn, Tensor};
use trainbox::{
    Batch, Callback, Event, EventContext, Model, TensorDataset, Trainer, TrainerControl,
    TrainingArguments,
};

/// y = w·x + c on 4 features (the session spec trains it too).
pub(crate) struct Linear {
    pub(crate) vs: nn::VarStore,
    pub(crate) layer: nn::Linear,
}

impl Model for Linear {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn loss(&self, batch: &Batch, _train: bool) -> Result<Tensor> {
        Ok(batch
            .get("x")?
            .apply(&self.layer)
            .squeeze_dim(-1)
            .mse_loss(batch.get("labels")?, tch::Reduction::Mean))
    }
}

fn data(n: i64) -> TensorDataset {
    let x = Tensor::randn([n, 4], (tch::Kind::Float, tch::Device::Cpu));
    let w = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0]);
    let y = x.matmul(&w) + 0.25;
    TensorDataset::new([("x", x), ("labels", y)])
}

/// Counts events and stops training at `stop_at`.
struct Counter {
    seen: Arc<Mutex<Vec<Event>>>,
    stop_at: u64,
}

impl Callback for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn on_event(
        &mut self,
        cx: &EventContext<'_>,
        mut control: TrainerControl,
    ) -> Result<TrainerControl> {
        self.seen.lock().unwrap().push(cx.event);
        if cx.event == Event::StepEnd && cx.state.global_step >= self.stop_at {
            control.should_training_stop = true;
        }
        Ok(control)
    }
}

fn trainer(dir: &str, args: TrainingArguments, callback: Option<Counter>) -> Result<Trainer> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let layer = nn::linear(vs.root() / "layer", 4, 1, Default::default());
    let out = crate::util::fresh_dir(dir);
    let args = TrainingArguments {
        output_dir: out.to_string_lossy().into(),
        ..args
    };
    let mut b = Trainer::builder(args, Box::new(Linear { vs, layer }), Box::new(data(256)))
        .eval_dataset(Box::new(data(64)));
    if let Some(cb) = callback {
        b = b.callback(Box::new(cb));
    }
    b.build()
}

#[test]
fn a_users_model_trains_and_its_loss_falls() -> Result<()> {
    let args = TrainingArguments {
        learning_rate: 0.1,
        num_train_epochs: 10.0,
        per_device_train_batch_size: 16,
        eval_strategy: trainbox::args::IntervalStrategy::Epoch,
        save_strategy: trainbox::args::SaveStrategy::No,
        ..Default::default()
    };
    let mut t = trainer("lib_train", args, None)?;
    let before = t
        .evaluate()?
        .get("eval_loss")
        .and_then(|v| v.as_f64())
        .unwrap();
    let out = t.train()?;
    assert_eq!(out.global_step, 160);
    let evals: Vec<f64> = t
        .state()
        .log_history
        .iter()
        .filter_map(|e| e.get("eval_loss")?.as_f64())
        .collect();
    assert_eq!(
        evals.len(),
        10,
        "one per epoch (train() starts a fresh state, as HF)"
    );
    assert!(
        evals[9] < before / 100.0,
        "eval loss {before} -> {}",
        evals[9]
    );
    Ok(())
}

#[test]
fn a_native_callback_sees_the_events_and_can_stop_training() -> Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let args = TrainingArguments {
        save_strategy: trainbox::args::SaveStrategy::No,
        ..Default::default()
    };
    let mut t = trainer(
        "lib_callback",
        args,
        Some(Counter {
            seen: seen.clone(),
            stop_at: 3,
        }),
    )?;
    let out = t.train()?;
    assert_eq!(out.global_step, 3);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.first(), Some(&Event::InitEnd));
    assert_eq!(seen.last(), Some(&Event::TrainEnd));
    assert_eq!(seen.iter().filter(|e| **e == Event::StepEnd).count(), 3);
    let names: Vec<&str> = t.callbacks().map(|c| c.name()).collect();
    assert_eq!(names, ["DefaultFlowCallback", "counter"]);
    Ok(())
}

#[test]
fn evaluation_needs_an_evaluation_dataset() {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let layer = nn::linear(vs.root() / "layer", 4, 1, Default::default());
    let args = TrainingArguments {
        eval_strategy: trainbox::args::IntervalStrategy::Steps,
        ..Default::default()
    };
    let err = Trainer::builder(args, Box::new(Linear { vs, layer }), Box::new(data(8)))
        .build()
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("requires an evaluation dataset"),
        "{err}"
    );
}

#[test]
fn the_sort_demo_reports_accuracy_metrics() {
    let run = crate::util::Run::command(
        "lib_sort_demo",
        &["train", "--task", "sort", "--disable_tqdm"],
    );
    let out = run.dir.join("out");
    let done = run
        .args(&[
            "--output_dir",
            out.to_str().unwrap(),
            "--max_steps",
            "20",
            "--learning_rate",
            "1e-3",
        ])
        .args(&[
            "--task_option",
            "train_size=512",
            "--task_option",
            "eval_size=128",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "10",
        ])
        .args(&[
            "--per_device_train_batch_size",
            "32",
            "--save_strategy",
            "no",
        ])
        .ok();
    let state = done.state("trainer_state.json");
    let evals: Vec<&serde_json::Value> = state["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("eval_accuracy").is_some())
        .collect();
    assert_eq!(evals.len(), 2);
    for e in evals {
        let acc = e["eval_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{e}");
        assert!(e["eval_sequence_accuracy"].as_f64().unwrap() <= acc);
    }
}

#[test]
fn predict_fires_prediction_steps_then_on_predict_with_test_metrics() -> Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let args = TrainingArguments {
        save_strategy: trainbox::args::SaveStrategy::No,
        ..Default::default()
    };
    let mut t = trainer(
        "lib_predict",
        args,
        Some(Counter {
            seen: seen.clone(),
            stop_at: u64::MAX,
        }),
    )?;
    seen.lock().unwrap().clear();
    let metrics = t.predict(&data(20), "test")?.metrics;
    let keys: Vec<&str> = metrics.keys().collect();
    assert_eq!(
        keys,
        [
            "test_loss",
            "test_runtime",
            "test_samples_per_second",
            "test_steps_per_second"
        ]
    );
    let events = seen.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            Event::PredictionStep,
            Event::PredictionStep,
            Event::PredictionStep,
            Event::Predict
        ],
        "3 batches of 8"
    );
    assert!(
        t.state().log_history.is_empty(),
        "predict does not log, as HF"
    );
    Ok(())
}

/// `Linear` with the per-sample losses left unreduced (shape `[batch]`),
/// in training or only in evaluation.
struct PerSampleLoss {
    inner: Linear,
    in_training: bool,
}

impl Model for PerSampleLoss {
    fn var_store(&self) -> &nn::VarStore {
        self.inner.var_store()
    }
    fn loss(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        if train && !self.in_training {
            return self.inner.loss(batch, train);
        }
        Ok(batch
            .get("x")?
            .apply(&self.inner.layer)
            .squeeze_dim(-1)
            .mse_loss(batch.get("labels")?, tch::Reduction::None))
    }
}

fn per_sample_trainer(dir: &str, in_training: bool) -> Result<Trainer> {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let layer = nn::linear(vs.root() / "layer", 4, 1, Default::default());
    let args = TrainingArguments {
        output_dir: crate::util::fresh_dir(dir).to_string_lossy().into(),
        save_strategy: trainbox::args::SaveStrategy::No,
        per_device_train_batch_size: 4,
        ..Default::default()
    };
    let model = PerSampleLoss {
        inner: Linear { vs, layer },
        in_training,
    };
    Trainer::builder(args, Box::new(model), Box::new(data(16)))
        .eval_dataset(Box::new(data(8)))
        .build()
}

#[test]
fn a_loss_that_is_not_a_scalar_fails_training_with_its_shape() -> Result<()> {
    let mut t = per_sample_trainer("lib_loss_not_scalar", true)?;
    let err = t.train().expect_err("training must fail");
    assert_eq!(
        format!("{err:#}"),
        "the model returned a loss of shape [4]; it must be a scalar (a 0-dim tensor): reduce it in `Model::loss`, e.g. with `.mean()`"
    );
    assert_eq!(t.state().global_step, 0, "no update was made");
    Ok(())
}

#[test]
fn an_evaluation_loss_that_is_not_a_scalar_fails_with_its_shape() -> Result<()> {
    let mut t = per_sample_trainer("lib_eval_loss_not_scalar", false)?;
    let err = t.evaluate().expect_err("evaluation must fail");
    assert!(
        format!("{err:#}")
            .starts_with("the model returned a loss of shape [8]; it must be a scalar"),
        "{err:#}"
    );
    Ok(())
}
