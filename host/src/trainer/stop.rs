//! Stopping a run from outside (Ctrl-C, an orchestrator's SIGTERM): a
//! [`StopRequest`] that the command line's signal handler sets and the loop
//! reads after every optimizer step. The loop then stops with an
//! [`Interrupted`] error, so the callbacks hear `finish(aborted)`; with
//! `enable_jit_checkpoint`, a SIGTERM first saves a checkpoint at the step the
//! run stopped at (HF's JIT checkpoint, without its 3 s wait: a save here is
//! atomic, so a SIGKILL during it leaves the previous checkpoints whole).

use super::run::Run;
use super::{Trainer, CHECKPOINT_PREFIX};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The signal that asked the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, an orchestrator ending a job).
    Terminate,
}

impl StopSignal {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }

    /// The exit status a shell shows for a program ended by this signal
    /// (128 + its number), which is what a Python training script reports.
    pub fn exit_status(self) -> i32 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }

    fn code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 1,
            StopSignal::Terminate => 2,
        }
    }
}

/// A request to stop, shared by whoever sets it and the trainer. Cloning
/// shares it; the first signal is kept.
#[derive(Debug, Clone, Default)]
pub struct StopRequest(Arc<AtomicU8>);

impl StopRequest {
    /// Asks the run to stop; `true` when this is the first request.
    pub fn request(&self, signal: StopSignal) -> bool {
        self.0
            .compare_exchange(0, signal.code(), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The signal that asked to stop, if one did.
    pub fn requested(&self) -> Option<StopSignal> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            1 => Some(StopSignal::Interrupt),
            _ => Some(StopSignal::Terminate),
        }
    }
}

/// The error a stopped run ends with: what stopped it, where, and the
/// checkpoint to resume from.
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub signal: StopSignal,
    /// `global_step` when the run stopped, of `max_steps`.
    pub step: u64,
    pub max_steps: u64,
    /// The newest checkpoint of this run (saved, or resumed from), if any.
    pub checkpoint: Option<PathBuf>,
    /// Whether `checkpoint` was saved because of the signal (JIT).
    pub saved_on_stop: bool,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted by {} at step {} of {}",
            self.signal.name(),
            self.step,
            self.max_steps
        )
    }
}

impl std::error::Error for Interrupted {}

impl Trainer {
    /// The stop asked of this rank or, with several processes, of any.
    fn agreed_stop(&self) -> Result<Option<StopSignal>> {
        let mine = self.stop.requested();
        if !self.world.is_distributed() {
            return Ok(mine);
        }
        let mut asked = [
            mine == Some(StopSignal::Interrupt),
            mine == Some(StopSignal::Terminate),
        ];
        self.world.any("agreeing on a stop request", &mut asked)?;
        Ok(match asked {
            [_, true] => Some(StopSignal::Terminate),
            [true, false] => Some(StopSignal::Interrupt),
            [false, false] => None,
        })
    }

    /// After an optimizer step (and once before the first): stops the run
    /// when a stop was requested, saving a checkpoint first on SIGTERM with
    /// `enable_jit_checkpoint`.
    ///
    /// With several processes, the ranks agree first: a signal any rank got
    /// stops them all at this step (SIGTERM winning over SIGINT).
    pub(super) fn stop_if_requested(&mut self, run: &mut Run) -> Result<()> {
        let Some(signal) = self.agreed_stop()? else {
            return Ok(());
        };
        let step = self.state.global_step;
        let here = Path::new(&self.args.output_dir).join(format!("{CHECKPOINT_PREFIX}-{step}"));
        let mut saved_on_stop = false;
        // Nothing trained since the start (a signal while plugins loaded):
        // no checkpoint to add.
        if signal == StopSignal::Terminate
            && self.args.enable_jit_checkpoint
            && step > run.start_step
            && self.last_checkpoint.as_deref() != Some(here.as_path())
        {
            if self.world.is_world_zero() {
                crate::ui::info(&format!(
                    "SIGTERM with enable_jit_checkpoint: saving {} before stopping",
                    here.display()
                ));
            }
            self.store_flos(run)?;
            self.save_checkpoint(Some(run))?;
            self.last_checkpoint = Some(here);
            saved_on_stop = true;
        }
        Err(Interrupted {
            signal,
            step,
            max_steps: run.max_steps,
            checkpoint: self.last_checkpoint.clone(),
            saved_on_stop,
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_kept() {
        let stop = StopRequest::default();
        assert_eq!(stop.requested(), None);
        assert!(stop.clone().request(StopSignal::Terminate));
        assert!(!stop.request(StopSignal::Interrupt));
        assert_eq!(stop.requested(), Some(StopSignal::Terminate));
        assert_eq!(StopSignal::Interrupt.exit_status(), 130);
        assert_eq!(StopSignal::Terminate.exit_status(), 143);
    }
}
