//! The state of one `train()` call that is not `TrainerState`: the
//! optimizer, the planned steps and the loss since the last log; and its
//! on-disk form, `loop_state.json`, which a checkpoint keeps so that a
//! resumed run logs what a run in one go would. The loop (`train.rs`) drives
//! it; checkpoints (`checkpoint.rs`) write it and `resume.rs` reads it back.

use super::optim::Optimizer;
use super::scaler::GradScaler;
use super::schedule::Schedule;
use crate::pyjson::Json;
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// What HF's files do not hold but an exact resume needs: the optimizer
/// step, the loss accumulated since the last log, the last grad norm and
/// learning rate.
pub(super) const LOOP_STATE_FILE: &str = "loop_state.json";

/// The bookkeeping of one `train()` call.
pub(crate) struct Run {
    pub optimizer: Optimizer,
    /// The learning-rate schedule (`--lr_scheduler_type`).
    pub schedule: Schedule,
    /// The loss scaler of `--fp16` on CUDA.
    pub scaler: Option<GradScaler>,
    /// Updates planned.
    pub max_steps: u64,
    /// Loss summed since the last log (each update contributes its mean).
    pub tr_loss: f64,
    /// Loss of every logged interval so far (for `train_loss`).
    pub total_loss: f64,
    pub globalstep_last_logged: u64,
    /// Floating-point operations not yet added to `state.total_flos`.
    pub current_flos: f64,
    pub grad_norm: Option<f64>,
    pub learning_rate: Option<f64>,
    /// `global_step` when this call started (non-zero after a resume).
    pub start_step: u64,
    /// The step after which `total_loss` and `tr_loss` count losses: the
    /// start, or the last log before the checkpoint resumed from.
    pub loss_from_step: u64,
    pub started: Instant,
    /// `state.num_input_tokens_seen` when this call started (after a
    /// resume), for `train_tokens_per_second`.
    pub tokens_at_start: u64,
}

impl Run {
    /// The loop's own state, for `loop_state.json`.
    pub(super) fn loop_state(&self) -> Json {
        let opt = |v: Option<f64>| v.map_or(Json::Null, Json::Float);
        Json::Object(BTreeMap::from([
            ("format".to_string(), Json::Int(1)),
            (
                "optimizer_step".to_string(),
                Json::Int(self.optimizer.step as i64),
            ),
            ("tr_loss".to_string(), Json::Float(self.tr_loss)),
            (
                "globalstep_last_logged".to_string(),
                Json::Int(self.globalstep_last_logged as i64),
            ),
            ("grad_norm".to_string(), opt(self.grad_norm)),
            ("learning_rate".to_string(), opt(self.learning_rate)),
        ]))
    }
}

/// What `loop_state.json` holds, checked.
pub(super) struct LoopState {
    pub optimizer_step: u64,
    pub tr_loss: f64,
    pub globalstep_last_logged: u64,
    pub grad_norm: Option<f64>,
    pub learning_rate: Option<f64>,
}

/// Reads and checks `loop_state.json` of a checkpoint at `global_step`;
/// `None` when the checkpoint has none (HF's own).
pub(super) fn read_loop_state(dir: &Path, global_step: u64) -> Result<Option<LoopState>> {
    let file = dir.join(LOOP_STATE_FILE);
    if !file.exists() {
        return Ok(None);
    }
    let corrupt = |why: String| {
        anyhow!(
            "{}: corrupt: {why}; restore it from a copy, or delete it to resume with the loss since the last log reset",
            file.display()
        )
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let json = Json::parse(&text).map_err(|e| corrupt(e.to_string()))?;
    let obj = json
        .as_object()
        .ok_or_else(|| corrupt("expected an object".into()))?;
    let step = |key: &str| -> Result<u64> {
        match obj.get(key).map(|v| v.as_i64()) {
            Some(Some(n)) if (0..=global_step as i64).contains(&n) => Ok(n as u64),
            Some(_) => Err(corrupt(format!(
                "{key} must be a step from 0 to the checkpoint's global_step {global_step}"
            ))),
            None => Err(corrupt(format!("{key} is missing"))),
        }
    };
    let number = |key: &str, required: bool| -> Result<Option<f64>> {
        match obj.get(key) {
            None | Some(Json::Null) if !required => Ok(None),
            Some(v) if v.as_f64().is_some() => Ok(v.as_f64()),
            _ => Err(corrupt(format!("{key} must be a number"))),
        }
    };
    Ok(Some(LoopState {
        optimizer_step: step("optimizer_step")?,
        tr_loss: number("tr_loss", true)?.unwrap_or(0.0),
        globalstep_last_logged: step("globalstep_last_logged")?,
        grad_norm: number("grad_norm", false)?,
        learning_rate: number("learning_rate", false)?,
    }))
}
