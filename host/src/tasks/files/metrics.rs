//! The built-in evaluation metrics (`--metric NAME`), computed on the host
//! from a batch's logits and labels as sums and counts, so that their value
//! over all batches is exact. Names as HF's `evaluate` library spells them.

use crate::datasets::LABEL_PAD;
use crate::trainer::model::{MetricSum, Reduce};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// A built-in metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Argmax of the logits over the last dimension equal to the label,
    /// labels of -100 left out.
    Accuracy,
    /// Mean squared error of the logits (squeezed) against the labels.
    Mse,
    /// Mean absolute error of the logits (squeezed) against the labels.
    Mae,
    /// `exp` of the mean evaluation loss.
    Perplexity,
}

/// Every metric, by name.
pub const METRICS: &[(&str, Metric)] = &[
    ("accuracy", Metric::Accuracy),
    ("mse", Metric::Mse),
    ("mae", Metric::Mae),
    ("perplexity", Metric::Perplexity),
];

impl Metric {
    /// The metric called `name`; the error lists them and the nearest.
    pub fn parse(name: &str) -> Result<Metric> {
        if let Some((_, m)) = METRICS.iter().find(|(n, _)| *n == name) {
            return Ok(*m);
        }
        let names: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
        match crate::suggest::closest(name, names.iter().copied()) {
            Some(near) => bail!(
                "--metric {name}: no such metric (did you mean {near}?); metrics: {}",
                names.join(", ")
            ),
            None => bail!(
                "--metric {name}: no such metric; metrics: {}",
                names.join(", ")
            ),
        }
    }

    /// The metric's name (`accuracy`).
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// The metric's sum and count over one batch of `samples` samples.
    pub fn of_batch(
        self,
        loss: f64,
        samples: usize,
        logits: Option<&Tensor>,
        labels: Option<&Tensor>,
    ) -> Result<MetricSum> {
        let name = self.name();
        if self == Metric::Perplexity {
            return Ok(MetricSum {
                name,
                sum: loss * samples as f64,
                count: samples as f64,
                reduce: Reduce::ExpOfMean,
            });
        }
        let Some(logits) = logits else {
            bail!(
                "--metric {name} needs the model's logits: return (loss, logits) or a dict with \
                 \"logits\" from forward"
            );
        };
        let Some(labels) = labels else {
            bail!("--metric {name} needs the labels: the evaluation data has no label column");
        };
        match self {
            Metric::Accuracy => accuracy(logits, labels),
            _ => errors(self, logits, labels),
        }
    }
}

/// Correct predictions and counted labels.
fn accuracy(logits: &Tensor, labels: &Tensor) -> Result<MetricSum> {
    let predicted = if logits.dim() == labels.dim() + 1 {
        logits.f_argmax(-1, false)?
    } else {
        bail!(
            "--metric accuracy: logits of shape {:?} do not give one class per label of shape {:?} \
             (the logits need one more dimension, the classes)",
            logits.size(),
            labels.size()
        );
    };
    if predicted.size() != labels.size() {
        bail!(
            "--metric accuracy: predictions of shape {:?} against labels of shape {:?}",
            predicted.size(),
            labels.size()
        );
    }
    let counted = labels.f_ne(LABEL_PAD)?;
    let right = predicted.f_eq_tensor(labels)?.f_logical_and(&counted)?;
    Ok(MetricSum::mean(
        "accuracy",
        right.f_sum(Kind::Int64)?.f_int64_value(&[])? as f64,
        counted.f_sum(Kind::Int64)?.f_int64_value(&[])? as f64,
    ))
}

/// Squared or absolute errors summed over every label element.
fn errors(metric: Metric, logits: &Tensor, labels: &Tensor) -> Result<MetricSum> {
    let mut predicted = logits.shallow_clone();
    if predicted.dim() == labels.dim() + 1 && predicted.size().last() == Some(&1) {
        predicted = predicted.f_squeeze_dim(-1)?;
    }
    if predicted.size() != labels.size() {
        bail!(
            "--metric {}: logits of shape {:?} against labels of shape {:?}",
            metric.name(),
            logits.size(),
            labels.size()
        );
    }
    let diff = predicted.f_to_kind(Kind::Double)? - labels.f_to_kind(Kind::Double)?;
    let per = match metric {
        Metric::Mse => diff.f_square()?,
        _ => diff.f_abs()?,
    };
    Ok(MetricSum::mean(
        metric.name(),
        per.f_sum(Kind::Double)?.f_double_value(&[])?,
        labels.numel() as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_leaves_out_padded_labels() {
        let logits = Tensor::from_slice(&[0.1f32, 0.9, 0.8, 0.2, 0.3, 0.7]).view([1, 3, 2]);
        let labels = Tensor::from_slice(&[1i64, 1, LABEL_PAD]).view([1, 3]);
        let m = Metric::Accuracy
            .of_batch(0.0, 1, Some(&logits), Some(&labels))
            .unwrap();
        assert_eq!((m.sum, m.count), (1.0, 2.0));
    }

    #[test]
    fn errors_squeeze_a_single_output_and_perplexity_is_exp_of_the_mean_loss() {
        let logits = Tensor::from_slice(&[1.0f32, 2.0]).view([2, 1]);
        let labels = Tensor::from_slice(&[0.0f32, 4.0]);
        let mse = Metric::Mse
            .of_batch(0.0, 2, Some(&logits), Some(&labels))
            .unwrap();
        assert_eq!((mse.sum, mse.count), (5.0, 2.0));
        let mae = Metric::Mae
            .of_batch(0.0, 2, Some(&logits), Some(&labels))
            .unwrap();
        assert_eq!(mae.value(), 1.5);
        let mut p = Metric::Perplexity.of_batch(2.0, 3, None, None).unwrap();
        let q = Metric::Perplexity.of_batch(1.0, 1, None, None).unwrap();
        p.sum += q.sum;
        p.count += q.count;
        assert!((p.value() - (7.0f64 / 4.0).exp()).abs() < 1e-12);
        assert!(Metric::parse("acuracy")
            .unwrap_err()
            .to_string()
            .contains("accuracy"));
    }
}
