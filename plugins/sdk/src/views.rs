//! Read-only views on the run, queried only when needed, so that an event
//! costs the same however long the run has been going.
//!
//! ```no_run
//! let model = trainbox_sdk::views::model();
//! if let Some(norm) = model.grad_norm() { /* … */ }
//! let history = trainbox_sdk::views::history();
//! let last = history.get(history.len().saturating_sub(1));
//! ```
//!
//! Since `trainbox:callback@0.2.0`, [`ModelStats::histogram`] gives a
//! histogram of a parameter or of its gradient, computed on the host as
//! `wandb.watch` does (see [`Histogram`]).

pub use crate::wit::trainbox::callback::views::{
    dataloaders, history, model, DataloaderLengths, LogHistory, ModelStats, TensorStats,
};
#[cfg(not(feature = "wit-0-1-0"))]
pub use crate::wit::trainbox::callback::views::{Histogram, TensorKind};

/// Most bins [`ModelStats::histogram`] takes; more (or 0) is a fault.
#[cfg(not(feature = "wit-0-1-0"))]
pub const MAX_HISTOGRAM_BINS: u32 = 4096;

/// A histogram is read as:
///
/// ```no_run
/// use trainbox_sdk::views::{self, TensorKind};
/// let model = views::model();
/// for name in model.parameter_names() {
///     if let Some(h) = model.histogram(&name, TensorKind::Gradient, 64) {
///         let edges = h.edges(); // counts.len() + 1 bin edges
///         assert_eq!(edges.len(), h.counts.len() + 1);
///     }
/// }
/// ```
#[cfg(not(feature = "wit-0-1-0"))]
impl Histogram {
    /// The `counts.len() + 1` bin edges, as `wandb.watch` writes them:
    /// `torch.linspace(min, max, n + 1)` in float32 (the first half counted
    /// up from `min`, the second down from `max`, each with one rounding, as
    /// torch's CPU kernel does); `[min, max]`
    /// for the one bin of a constant tensor.
    pub fn edges(&self) -> Vec<f64> {
        let n = self.counts.len();
        if n <= 1 {
            return vec![self.min, self.max];
        }
        let steps = n + 1;
        let (start, end) = (self.min as f32, self.max as f32);
        let step = (end - start) / (steps - 1) as f32;
        let halfway = steps / 2;
        (0..steps)
            .map(|i| {
                // One rounding, as torch's vectorized kernel (a fused multiply-add).
                if i < halfway {
                    step.mul_add(i as f32, start)
                } else {
                    (-step).mul_add((steps - i - 1) as f32, end)
                }
            })
            .map(f64::from)
            .collect()
    }
}

#[cfg(all(test, not(feature = "wit-0-1-0")))]
mod tests {
    use super::*;

    #[test]
    fn edges_are_torch_linspace_in_float32() {
        // torch.linspace(min, max, 11) in float32, as wandb.watch's bins
        // (a product and a sum rounded apart would miss in the third digit
        // after the point of some edges).
        let cases: [(f32, f32, [f64; 11]); 2] = [
            (
                -1.234,
                0.987,
                [
                    -1.2339999675750732,
                    -1.0118999481201172,
                    -0.7897999882698059,
                    -0.5677000284194946,
                    -0.3456000089645386,
                    -0.12349995970726013,
                    0.09860002994537354,
                    0.3207000195980072,
                    0.5428000092506409,
                    0.7648999691009521,
                    0.9869999885559082,
                ],
            ),
            (
                -2.5,
                3.1,
                [
                    -2.5,
                    -1.940000057220459,
                    -1.3799999952316284,
                    -0.8199999928474426,
                    -0.25999999046325684,
                    0.2999998927116394,
                    0.8599998950958252,
                    1.4199998378753662,
                    1.9799998998641968,
                    2.5399999618530273,
                    3.0999999046325684,
                ],
            ),
        ];
        for (min, max, torch) in cases {
            let h = Histogram {
                min: f64::from(min),
                max: f64::from(max),
                counts: vec![0; 10],
            };
            assert_eq!(h.edges(), torch, "{min}..{max}");
        }
        let one = Histogram {
            min: 2.0,
            max: 2.0,
            counts: vec![5],
        };
        assert_eq!(one.edges(), vec![2.0, 2.0]);
    }
}
