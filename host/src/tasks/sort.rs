//! The demo: a small transformer encoder learns to sort sequences of digits.
//! Each output position predicts the digit that belongs there once sorted;
//! `eval_accuracy` (correct digits) and `eval_sequence_accuracy` (fully
//! sorted sequences) climb from chance (~0.1 and 0) to near 1 in about a
//! thousand steps (20 s on two CPU cores, `make run`).
//!
//! Options: `train_size` (16384), `eval_size` (1024), `length` (16),
//! `d_model` (96), `layers` (3), `heads` (4).

use super::{OptionReader, Task, TaskOptions};
use crate::trainer::data::{Batch, SplitMix64, TensorDataset};
use crate::trainer::model::{EvalBatch, MetricSum, Model};
use anyhow::{ensure, Result};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

const DIGITS: i64 = 10;

/// A pre-norm transformer block: self-attention, then an MLP.
struct Block {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ln2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
}

impl Block {
    fn new(p: nn::Path, d: i64, heads: i64) -> Block {
        Block {
            ln1: nn::layer_norm(&p / "ln1", vec![d], Default::default()),
            qkv: nn::linear(&p / "qkv", d, 3 * d, Default::default()),
            proj: nn::linear(&p / "proj", d, d, Default::default()),
            ln2: nn::layer_norm(&p / "ln2", vec![d], Default::default()),
            fc1: nn::linear(&p / "fc1", d, 4 * d, Default::default()),
            fc2: nn::linear(&p / "fc2", 4 * d, d, Default::default()),
            heads,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, l, d) = x.size3().expect("block input is [batch, length, d_model]");
        let qkv = x
            .apply(&self.ln1)
            .apply(&self.qkv)
            .view([b, l, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let att = Tensor::scaled_dot_product_attention(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        let x = x + att
            .transpose(1, 2)
            .contiguous()
            .view([b, l, d])
            .apply(&self.proj);
        let h = x
            .apply(&self.ln2)
            .apply(&self.fc1)
            .gelu("none")
            .apply(&self.fc2);
        x + h
    }
}

/// Token and position embeddings, transformer blocks, a per-position classifier.
pub struct SortModel {
    vs: nn::VarStore,
    tok: nn::Embedding,
    pos: Tensor,
    blocks: Vec<Block>,
    ln_f: nn::LayerNorm,
    head: nn::Linear,
}

impl SortModel {
    pub fn new(length: i64, d: i64, layers: i64, heads: i64) -> SortModel {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let tok = nn::embedding(&root / "tok", DIGITS, d, Default::default());
        let pos = root.randn("pos", &[length, d], 0.0, 0.02);
        let blocks = (0..layers)
            .map(|i| Block::new(&root / "blocks" / i, d, heads))
            .collect();
        let ln_f = nn::layer_norm(&root / "ln_f", vec![d], Default::default());
        let head = nn::linear(&root / "head", d, DIGITS, Default::default());
        SortModel {
            vs,
            tok,
            pos,
            blocks,
            ln_f,
            head,
        }
    }

    /// Logits `[batch, length, 10]` for digit sequences `[batch, length]`.
    fn logits(&self, digits: &Tensor) -> Tensor {
        let mut x = self.tok.forward(digits) + &self.pos;
        for block in &self.blocks {
            x = block.forward(&x);
        }
        x.apply(&self.ln_f).apply(&self.head)
    }
}

impl Model for SortModel {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn to_device(&mut self, device: tch::Device) -> Result<()> {
        self.vs.set_device(device);
        Ok(())
    }

    fn loss(&self, batch: &Batch, _train: bool) -> Result<Tensor> {
        let logits = self.logits(batch.get("input_ids")?);
        Ok(logits
            .view([-1, DIGITS])
            .cross_entropy_for_logits(&batch.get("labels")?.view([-1])))
    }

    fn logits(&self, batch: &Batch, _train: bool) -> Result<Option<Tensor>> {
        Ok(Some(self.logits(batch.get("input_ids")?)))
    }

    fn eval_batch(&self, batch: &Batch) -> Result<EvalBatch> {
        let labels = batch.get("labels")?;
        let logits = self.logits(batch.get("input_ids")?);
        let loss = logits
            .view([-1, DIGITS])
            .cross_entropy_for_logits(&labels.view([-1]));
        let correct = logits.argmax(-1, false).eq_tensor(labels);
        let tokens = correct.numel() as f64;
        let sequences = batch.len() as f64;
        let right = correct.sum(Kind::Int64).int64_value(&[]) as f64;
        let sorted = correct.all_dim(-1, false).sum(Kind::Int64).int64_value(&[]) as f64;
        Ok(EvalBatch {
            loss: Some(loss),
            metrics: vec![
                MetricSum::mean("accuracy", right, tokens),
                MetricSum::mean("sequence_accuracy", sorted, sequences),
            ],
            ..EvalBatch::default()
        })
    }
}

/// `n` random digit sequences and their sorted versions.
pub fn dataset(n: usize, length: usize, seed: u64) -> TensorDataset {
    let mut rng = SplitMix64(seed);
    let mut inputs = Vec::with_capacity(n * length);
    let mut targets = Vec::with_capacity(n * length);
    for _ in 0..n {
        let mut seq: Vec<i64> = (0..length)
            .map(|_| (rng.next_u64() % DIGITS as u64) as i64)
            .collect();
        inputs.extend_from_slice(&seq);
        seq.sort_unstable();
        targets.extend_from_slice(&seq);
    }
    let shape = [n as i64, length as i64];
    TensorDataset::new([
        ("input_ids", Tensor::from_slice(&inputs).view(shape)),
        ("labels", Tensor::from_slice(&targets).view(shape)),
    ])
}

/// The sort task.
pub fn task(options: &TaskOptions) -> Result<Task> {
    let mut o = OptionReader::new("sort", options);
    let train_size = o.get("train_size", 16384usize)?;
    let eval_size = o.get("eval_size", 1024usize)?;
    let length = o.get("length", 16usize)?;
    let d_model = o.get("d_model", 96i64)?;
    let layers = o.get("layers", 3i64)?;
    let heads = o.get("heads", 4i64)?;
    o.finish()?;
    ensure!(
        length > 0 && d_model > 0 && heads > 0,
        "--task_option length, d_model and heads must be positive"
    );
    ensure!(
        d_model % heads == 0,
        "--task_option d_model ({d_model}) must be a multiple of heads ({heads})"
    );
    Ok(Task {
        model: Box::new(SortModel::new(length as i64, d_model, layers, heads)),
        train: Box::new(dataset(train_size, length, 1)),
        eval: Box::new(dataset(eval_size, length, 2)),
    })
}
