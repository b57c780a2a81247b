//! HF's output contract: what a forward returns, read as a loss and
//! (where present) logits.

use anyhow::{bail, Result};
use tch::{IValue, Tensor};

/// What one forward gave back.
#[derive(Debug)]
pub struct Output {
    /// The scalar loss (shape `[]`, floating point).
    pub loss: Tensor,
    /// The logits: a tuple's second element, or a dict's `"logits"`.
    pub logits: Option<Tensor>,
}

/// Reads `value` as HF's contract: a loss tensor, a tuple `(loss, logits,
/// …)` (`return_dict=False`), or a dict with `"loss"` (and `"logits"`).
/// The error says what was found, without the file (the caller adds it).
pub fn read(value: IValue) -> Result<Output> {
    let (loss, logits) = match value {
        IValue::Tensor(loss) => (loss, None),
        IValue::Tuple(items) | IValue::GenericList(items) => {
            let mut items = items.into_iter();
            let Some(IValue::Tensor(loss)) = items.next() else {
                bail!("forward returned a tuple whose first element is not the loss tensor");
            };
            let logits = match items.next() {
                Some(IValue::Tensor(t)) => Some(t),
                _ => None,
            };
            (loss, logits)
        }
        IValue::TensorList(items) => {
            let mut items = items.into_iter();
            let Some(loss) = items.next() else {
                bail!("forward returned an empty list, not the loss");
            };
            (loss, items.next())
        }
        IValue::GenericDict(entries) => {
            let (mut loss, mut logits) = (None, None);
            let mut keys = Vec::new();
            for (key, value) in entries {
                let IValue::String(key) = key else { continue };
                match (key.as_str(), value) {
                    ("loss", IValue::Tensor(t)) => loss = Some(t),
                    ("logits", IValue::Tensor(t)) => logits = Some(t),
                    _ => {}
                }
                keys.push(key);
            }
            let Some(loss) = loss else {
                bail!(
                    "forward returned a dict without a \"loss\" tensor (keys: {}); \
                     pass the labels so that the model computes its loss",
                    keys.join(", ")
                );
            };
            (loss, logits)
        }
        other => bail!(
            "forward returned {}, not a loss tensor, a tuple (loss, …) or a dict with \"loss\"",
            describe(&other)
        ),
    };
    if loss.numel() != 1 {
        bail!(
            "forward returned a loss of shape {:?}, not a scalar: reduce it in the model \
             (e.g. `.mean()`)",
            loss.size()
        );
    }
    if !loss.is_floating_point() {
        bail!(
            "forward returned a loss of dtype {:?}, not a floating-point scalar",
            loss.kind()
        );
    }
    Ok(Output {
        loss: loss.f_reshape([])?,
        logits,
    })
}

/// Reads `value` as an evaluation reads it: with labels given, as
/// [`read`]; without, as HF's `prediction_step` does: no loss, and the
/// logits are a lone tensor, a tuple's first element, or a dict's
/// `"logits"` (a dict's `"loss"` is still taken when present).
pub fn read_prediction(value: IValue, labels_given: bool) -> Result<Prediction> {
    if labels_given {
        let out = read(value)?;
        return Ok(Prediction {
            loss: Some(out.loss),
            logits: out.logits,
        });
    }
    let first_tensor = |items: Vec<IValue>| match items.into_iter().next() {
        Some(IValue::Tensor(t)) => Some(t),
        _ => None,
    };
    Ok(match value {
        IValue::Tensor(t) => Prediction {
            loss: None,
            logits: Some(t),
        },
        IValue::Tuple(items) | IValue::GenericList(items) => Prediction {
            loss: None,
            logits: first_tensor(items),
        },
        IValue::TensorList(items) => Prediction {
            loss: None,
            logits: items.into_iter().next(),
        },
        IValue::GenericDict(entries) => {
            let mut out = Prediction {
                loss: None,
                logits: None,
            };
            for (key, value) in entries {
                match (key, value) {
                    (IValue::String(k), IValue::Tensor(t)) if k == "loss" => out.loss = Some(t),
                    (IValue::String(k), IValue::Tensor(t)) if k == "logits" => out.logits = Some(t),
                    _ => {}
                }
            }
            out
        }
        other => bail!(
            "forward returned {}, not logits, a tuple (logits, …) or a dict with \"logits\"",
            describe(&other)
        ),
    })
}

/// What an evaluation forward gave back: the loss when the batch had labels.
#[derive(Debug)]
pub struct Prediction {
    /// The scalar loss, when the batch had labels (or the model gave one).
    pub loss: Option<Tensor>,
    /// The logits, when the model returned them.
    pub logits: Option<Tensor>,
}

fn describe(value: &IValue) -> &'static str {
    match value {
        IValue::None => "None",
        IValue::Double(_) | IValue::Int(_) | IValue::Bool(_) => "a number",
        IValue::String(_) | IValue::StringList(_) => "a string",
        _ => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_tuple_and_dict_give_the_loss_and_logits() {
        let loss = || Tensor::from(1.5f32);
        let logits = || Tensor::ones([2, 3], (tch::Kind::Float, tch::Device::Cpu));
        let out = read(IValue::Tensor(loss())).unwrap();
        assert_eq!(out.loss.double_value(&[]), 1.5);
        assert!(out.logits.is_none());
        let tuple = IValue::Tuple(vec![IValue::Tensor(loss()), IValue::Tensor(logits())]);
        assert_eq!(read(tuple).unwrap().logits.unwrap().size(), [2, 3]);
        let dict = IValue::GenericDict(vec![
            (IValue::String("logits".into()), IValue::Tensor(logits())),
            (IValue::String("loss".into()), IValue::Tensor(loss())),
        ]);
        let out = read(dict).unwrap();
        assert_eq!(out.loss.size(), Vec::<i64>::new());
        assert!(out.logits.is_some());
    }

    #[test]
    fn a_non_scalar_or_missing_loss_is_an_error() {
        let err = read(IValue::Tensor(Tensor::ones([4], tch::kind::FLOAT_CPU))).unwrap_err();
        assert!(err.to_string().contains("not a scalar"), "{err}");
        let dict = IValue::GenericDict(vec![(
            IValue::String("logits".into()),
            IValue::Tensor(Tensor::from(1.0f32)),
        )]);
        let err = read(dict).unwrap_err();
        assert!(err.to_string().contains("keys: logits"), "{err}");
        let err = read(IValue::Int(3)).unwrap_err();
        assert!(err.to_string().contains("a number"), "{err}");
        let err = read(IValue::Tensor(Tensor::from(3i64))).unwrap_err();
        assert!(err.to_string().contains("floating-point"), "{err}");
    }
}
