//! Trains your own tch model with trainbox, as `trainbox train` does: HF's
//! events and arguments, the progress bar, wasm plugins
//! from the command line, and the end-of-run report, through one call
//! (`trainbox::Run`).
//!
//! Run (from a clean clone, one command; see docs/train-your-own-model.md):
//! `make example`, or, once `make` has built the cache,
//! `cargo run --release --example custom_model -- [PLUGIN.wasm ...]`.

use anyhow::Result;
use tch::{nn, Tensor};
use trainbox::{Batch, Model, Run, TensorDataset, TrainingArguments};

/// A two-layer network fitting y = sin(x).
struct SineNet {
    vs: nn::VarStore,
    net: nn::Sequential,
}

impl SineNet {
    fn new() -> SineNet {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let net = nn::seq()
            .add(nn::linear(&root / "l1", 1, 32, Default::default()))
            .add_fn(|x| x.tanh())
            .add(nn::linear(&root / "l2", 32, 1, Default::default()));
        SineNet { vs, net }
    }
}

impl Model for SineNet {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn loss(&self, batch: &Batch, _train: bool) -> Result<Tensor> {
        use tch::nn::Module;
        Ok(self
            .net
            .forward(batch.get("x")?)
            .mse_loss(batch.get("labels")?, tch::Reduction::Mean))
    }

    fn main_input_name(&self) -> &str {
        "x"
    }
}

fn data(n: i64) -> TensorDataset {
    let x = Tensor::rand([n, 1], (tch::Kind::Float, tch::Device::Cpu)) * 6.0 - 3.0;
    let y = x.sin();
    TensorDataset::new([("x", x), ("labels", y)])
}

fn main() -> Result<()> {
    tch::manual_seed(0);
    let args = TrainingArguments {
        output_dir: "runs/custom-model".into(),
        learning_rate: 1e-2,
        num_train_epochs: 20.0,
        per_device_train_batch_size: 32,
        logging_steps: 50.0,
        eval_strategy: trainbox::args::IntervalStrategy::Epoch,
        save_strategy: trainbox::args::SaveStrategy::No,
        ..Default::default()
    };

    // Plugins named on the command line, loaded in order, between the
    // integrations `report_to` names and the progress bar.
    let mut run = Run::new(args)
        .model(Box::new(SineNet::new()), Box::new(data(1024)))
        .eval_dataset(Box::new(data(256)));
    for path in std::env::args().skip(1) {
        run = run.plugin(path);
    }
    let outcome = run.train()?;
    let eval_loss = outcome
        .trainer
        .state()
        .log_history
        .iter()
        .rev()
        .find_map(|e| e.get("eval_loss")?.as_f64());
    println!(
        "trained {} steps; train loss {:.4}; last eval loss {:?}",
        outcome.output.global_step, outcome.output.training_loss, eval_loss
    );
    Ok(())
}
