//! `WANDB_WATCH`: what HF's `wandb.watch(model, log=…,
//! log_freq=max(100, logging_steps))` logs, from trainbox's events.
//!
//! wandb counts with hooks: a forward hook on the model counts every
//! forward pass (training micro-batches and evaluation batches alike) and
//! on every `log_freq`-th logs `parameters/<name>` of each parameter; a
//! hook on each parameter counts its backward passes and on every
//! `log_freq`-th logs `gradients/<name>`. The histograms (64 bins, finite
//! values, `histc` over min..max, computed by the host) are logged with
//! `commit=False`, so they join the next `wandb.log` row (HF's next log,
//! with its `train/global_step`); a later one of the same key replaces an
//! uncommitted one.
//!
//! Here a micro-batch's forward and backward are counted at its end
//! (`substep-end`, or `pre-optimizer-step` for an update's last one), when
//! the parameters still hold the values that forward used, and an
//! evaluation or prediction batch's forward at `prediction-step`. One
//! difference: the gradient read is the accumulated one the optimizer
//! uses, after clipping (`max_grad_norm`), where wandb's hook sees each
//! backward's own gradient before clipping; with one micro-batch per
//! update and no clipping they are the same tensor.

use crate::run::{json_f64, Field};
use crate::settings::Watch;
use trainbox_sdk::views::{self, Histogram, TensorKind};

/// `TorchHistory._num_bins`.
const BINS: u32 = 64;

/// The hooks' counters and the histograms not yet committed.
pub struct Watcher {
    gradients: bool,
    parameters: bool,
    /// `log_freq`.
    freq: u64,
    forwards: u64,
    backwards: u64,
    pending: Vec<(String, Histogram)>,
}

impl Watcher {
    /// `wandb.watch(model, log=watch, log_freq=max(100, logging_steps))`;
    /// none for `WANDB_WATCH=false`.
    pub fn new(watch: Watch, logging_steps: f64) -> Option<Watcher> {
        let (gradients, parameters) = match watch {
            Watch::Off => return None,
            Watch::Gradients => (true, false),
            Watch::Parameters => (false, true),
            Watch::All => (true, true),
        };
        Some(Watcher {
            gradients,
            parameters,
            freq: (logging_steps.max(0.0) as u64).max(100),
            forwards: 0,
            backwards: 0,
            pending: Vec::new(),
        })
    }

    /// Whether histograms wait for the next row.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A training micro-batch ended: its forward, then its backward.
    pub fn micro_batch(&mut self) {
        self.forward();
        if self.gradients && tick(&mut self.backwards, self.freq) {
            self.take("gradients/", TensorKind::Gradient);
        }
    }

    /// A forward pass ended (an evaluation or prediction batch).
    pub fn forward(&mut self) {
        if self.parameters && tick(&mut self.forwards, self.freq) {
            self.take("parameters/", TensorKind::Value);
        }
    }

    fn take(&mut self, prefix: &str, kind: TensorKind) {
        let model = views::model();
        for name in model.parameter_names() {
            if let Some(h) = model.histogram(&name, kind, BINS) {
                let key = format!("{prefix}{name}");
                self.pending.retain(|(k, _)| *k != key);
                self.pending.push((key, h));
            }
        }
    }

    /// The uncommitted histograms as the fields wandb-core writes for a
    /// `wandb.Histogram` (`_type`, `values`, `bins`); empties the list.
    pub fn drain(&mut self) -> Vec<Field> {
        let mut out = Vec::new();
        for (key, h) in self.pending.drain(..) {
            let (values, bins) = histogram_json(&h);
            out.push((key.clone(), "_type", "\"histogram\"".into()));
            out.push((key.clone(), "values", values));
            out.push((key, "bins", bins));
        }
        out
    }
}

/// `log_track_update`: counts one call; true on every `freq`-th.
fn tick(count: &mut u64, freq: u64) -> bool {
    *count += 1;
    if *count < freq {
        return false;
    }
    *count = 0;
    true
}

/// `wandb.Histogram(np_histogram=(counts, edges)).to_json()`'s `values`
/// and `bins` as JSON text: counts as integers (wandb-core writes the
/// whole floats `histc` returns so), edges float32's values.
fn histogram_json(h: &Histogram) -> (String, String) {
    let values: Vec<String> = h.counts.iter().map(u64::to_string).collect();
    let bins: Vec<String> = h.edges().into_iter().map(json_f64).collect();
    (
        format!("[{}]", values.join(",")),
        format!("[{}]", bins.join(",")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_freq_th_call_logs() {
        let mut n = 0;
        let hits: Vec<u64> = (1..=250).filter(|_| tick(&mut n, 100)).collect();
        assert_eq!(hits.len(), 2);
        assert_eq!(n, 50);
    }

    #[test]
    fn log_freq_is_at_least_100() {
        assert_eq!(Watcher::new(Watch::All, 5.0).unwrap().freq, 100);
        assert_eq!(Watcher::new(Watch::Gradients, 250.0).unwrap().freq, 250);
        assert!(Watcher::new(Watch::Off, 5.0).is_none());
    }

    #[test]
    fn histogram_values_and_bins() {
        let h = Histogram {
            min: 0.5,
            max: 0.5,
            counts: vec![4],
        };
        assert_eq!(histogram_json(&h), ("[4]".into(), "[0.5,0.5]".into()));
    }
}
