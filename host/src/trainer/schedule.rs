//! Learning-rate schedules, as HF's `get_scheduler` (`LambdaLR` factors).

use crate::args::SchedulerType;
use std::f64::consts::PI;

/// The factor applied to the base learning rate at update `step` (0-based)
/// of a run of `total` updates with `warmup` warm-up updates.
pub fn lr_factor(kind: SchedulerType, step: u64, warmup: u64, total: u64) -> f64 {
    let (step, warmup, total) = (step as f64, warmup as f64, total as f64);
    let warming = step < warmup;
    let warm = step / warmup.max(1.0);
    match kind {
        SchedulerType::Constant => 1.0,
        SchedulerType::ConstantWithWarmup if warming => warm,
        SchedulerType::ConstantWithWarmup => 1.0,
        SchedulerType::Linear if warming => warm,
        SchedulerType::Linear => ((total - step) / (total - warmup).max(1.0)).max(0.0),
        SchedulerType::Cosine if warming => warm,
        SchedulerType::Cosine => {
            let progress = (step - warmup) / (total - warmup).max(1.0);
            (0.5 * (1.0 + (PI * progress).cos())).max(0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_warms_up_then_decays_to_zero() {
        let f = |s| lr_factor(SchedulerType::Linear, s, 2, 10);
        assert_eq!([f(0), f(1), f(2), f(6), f(10)], [0.0, 0.5, 1.0, 0.5, 0.0]);
    }

    #[test]
    fn cosine_and_constants() {
        assert!((lr_factor(SchedulerType::Cosine, 5, 0, 10) - 0.5).abs() < 1e-12);
        assert_eq!(lr_factor(SchedulerType::Cosine, 10, 0, 10), 0.0);
        assert_eq!(lr_factor(SchedulerType::Constant, 0, 5, 10), 1.0);
        assert_eq!(lr_factor(SchedulerType::ConstantWithWarmup, 1, 4, 10), 0.25);
        assert_eq!(lr_factor(SchedulerType::ConstantWithWarmup, 7, 4, 10), 1.0);
    }
}
