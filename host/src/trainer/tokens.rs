//! `--include_num_input_tokens_seen`: HF's `_track_num_input_tokens` and
//! what its `log` adds. Each training micro-batch adds the elements of the
//! model's main input (`all`), or the ones of `attention_mask` (`non_padding`;
//! without that column every element counts, with a warning, as HF without a
//! tokenizer), summed over the ranks, to `state.num_input_tokens_seen`.
//! Every log entry then carries `num_input_tokens_seen`, and the training
//! logs `train_runtime` and `train_tokens_per_second` of this `train()` call.

use super::data::Batch;
use super::run::Run;
use super::{round_to, Trainer};
use crate::state::{Logs, Value};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::Kind;

/// Whether the warnings below were given (once a process).
static NO_MAIN_INPUT: AtomicBool = AtomicBool::new(false);
static NO_ATTENTION_MASK: AtomicBool = AtomicBool::new(false);

fn warn_once(flag: &AtomicBool, message: &str) {
    if !flag.swap(true, Ordering::Relaxed) {
        crate::ui::warn(message);
    }
}

impl Trainer {
    /// Whether tokens are counted (`--include_num_input_tokens_seen` not `no`).
    fn counts_tokens(&self) -> bool {
        self.args.include_num_input_tokens_seen != "no"
    }

    /// HF's `_track_num_input_tokens` for one training micro-batch.
    pub(super) fn track_input_tokens(&mut self, batch: &Batch) -> Result<()> {
        if !self.counts_tokens() {
            return Ok(());
        }
        let name = self.model.main_input_name();
        let Some(input) = batch.columns.get(name) else {
            warn_once(
                &NO_MAIN_INPUT,
                &format!(
                    "--include_num_input_tokens_seen: the batches have no column `{name}` (the \
                     model's main input), so no token is counted"
                ),
            );
            return Ok(());
        };
        let tokens = if self.args.include_num_input_tokens_seen == "non_padding" {
            match batch.columns.get("attention_mask") {
                Some(mask) => mask.f_sum(Kind::Int64)?.f_int64_value(&[])?,
                None => {
                    warn_once(
                        &NO_ATTENTION_MASK,
                        "--include_num_input_tokens_seen non_padding: the batches have no \
                         `attention_mask` column; counting all tokens",
                    );
                    input.numel() as i64
                }
            }
        } else {
            input.numel() as i64
        };
        let mut sum = [tokens as f64];
        self.world.sum("counting the input tokens", &mut sum)?;
        self.state.num_input_tokens_seen += sum[0] as u64;
        Ok(())
    }

    /// What HF's `log` adds after `epoch`: `num_input_tokens_seen`.
    pub(super) fn add_tokens_seen(&self, logs: &mut Logs) {
        if self.counts_tokens() {
            let seen = self.state.num_input_tokens_seen as i64;
            logs.insert("num_input_tokens_seen", Value::Int(seen));
        }
    }

    /// What HF's `log(logs, start_time)` of a training log adds: `epoch`,
    /// `num_input_tokens_seen`, then the runtime of this `train()` call and
    /// its tokens per second (`log` keeps these in place).
    pub(super) fn add_token_speed(&self, logs: &mut Logs, run: &Run) {
        if !self.counts_tokens() {
            return;
        }
        logs.insert("epoch", super::epoch_value(&self.state));
        self.add_tokens_seen(logs);
        let runtime = run.started.elapsed().as_secs_f64();
        logs.insert("train_runtime", Value::Float(round_to(runtime, 4)));
        if runtime > 0.0 {
            let tokens = self
                .state
                .num_input_tokens_seen
                .saturating_sub(run.tokens_at_start) as f64;
            logs.insert(
                "train_tokens_per_second",
                Value::Float(round_to(tokens / runtime, 3)),
            );
        }
    }
}
