//! `--optim` and `--optim_args` into an optimizer's settings, as HF's
//! `Trainer.get_optimizer_cls_and_kwargs` (transformers 5.24,
//! `trainer_optimizer.py`) builds the class's keyword arguments: AdamW takes
//! `--adam_beta1/2` and `--adam_epsilon`; SGD, Adagrad and RMSprop read
//! their keys of `--optim_args` with `float()` (booleans: "true", "1",
//! "yes"); Adafactor reads none. A `weight_decay` there is overridden by
//! the parameter groups' (`--weight_decay`, 0 for biases and norms), as in
//! HF; keys an optimizer does not read are ignored by HF, and named in a
//! warning here.

use super::{AdafactorConfig, AdagradConfig, AdamWConfig, RmsPropConfig, SgdConfig};
use crate::args::{Algorithm, TrainingArguments};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;

/// The settings of one optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Settings {
    AdamW(AdamWConfig),
    Sgd(SgdConfig),
    Adagrad(AdagradConfig),
    RmsProp(RmsPropConfig),
    Adafactor(AdafactorConfig),
}

/// HF's `_parse_optim_args`: spaces removed, `k=v` pairs separated by commas.
pub fn parse_optim_args(text: Option<&str>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(out);
    };
    for mapping in text.replace(' ', "").split(',') {
        let parts: Vec<&str> = mapping.split('=').collect();
        let [key, value] = parts[..] else {
            bail!("--optim_args {text:?}: {mapping:?} is not key=value (expected \"key=value,key=value\")");
        };
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// Python's `float()` of an `--optim_args` value.
fn float(key: &str, value: &str) -> Result<f64> {
    value.trim().parse().map_err(|_| {
        anyhow!("--optim_args {key}={value}: could not convert string to float: {value:?}")
    })
}

/// HF's boolean reading: "true", "1" or "yes" (any case) is true.
fn flag(value: &str) -> bool {
    ["true", "1", "yes"].contains(&value.to_lowercase().as_str())
}

/// Reads the keys `algorithm` takes from `kv`, warning once of the others.
struct Reader<'a> {
    optim: String,
    kv: &'a BTreeMap<String, String>,
    read: Vec<&'static str>,
}

impl Reader<'_> {
    fn float(&mut self, key: &'static str, default: f64) -> Result<f64> {
        self.read.push(key);
        self.kv.get(key).map_or(Ok(default), |v| float(key, v))
    }
    fn flag(&mut self, key: &'static str) -> bool {
        self.read.push(key);
        self.kv.get(key).is_some_and(|v| flag(v))
    }
    fn warn_unread(&self) {
        let unread: Vec<&str> = self
            .kv
            .keys()
            .map(String::as_str)
            .filter(|k| !self.read.contains(k))
            .collect();
        if !unread.is_empty() {
            let takes = if self.read.is_empty() {
                "none".to_string()
            } else {
                self.read.join(", ")
            };
            crate::ui::warn(&format!(
                "--optim_args {} not read by --optim {} (it reads {takes}), ignored as HF does",
                unread.join(", "),
                self.optim
            ));
        }
        if self.kv.contains_key("weight_decay") && self.read.contains(&"weight_decay") {
            crate::ui::warn(
                "--optim_args weight_decay is overridden by the parameter groups' weight decay (--weight_decay, 0 for biases and norms), as in HF",
            );
        }
    }
}

/// torch's constructor check of a setting that must not be negative.
fn non_negative(what: &str, v: f64) -> Result<()> {
    if v < 0.0 || v.is_nan() {
        bail!("--optim_args: Invalid {what} value: {v}");
    }
    Ok(())
}

impl Settings {
    /// The settings `--optim` and `--optim_args` name; a name trainbox
    /// does not run is an error naming what it needs.
    pub fn from_args(args: &TrainingArguments) -> Result<Settings> {
        let algorithm = args.optim.algorithm().map_err(|e| anyhow!(e))?;
        let kv = parse_optim_args(args.optim_args.as_deref())?;
        let mut r = Reader {
            optim: args.optim.to_string(),
            kv: &kv,
            read: Vec::new(),
        };
        let settings = match algorithm {
            Algorithm::AdamW => Settings::AdamW(AdamWConfig {
                beta1: args.adam_beta1,
                beta2: args.adam_beta2,
                eps: args.adam_epsilon,
                fused: args.optim == crate::args::OptimizerName::AdamwTorchFused,
            }),
            Algorithm::Sgd => {
                let momentum = r.float("momentum", 0.0)?;
                let dampening = r.float("dampening", 0.0)?;
                r.float("weight_decay", 0.0)?;
                let nesterov = r.flag("nesterov");
                non_negative("momentum", momentum)?;
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    bail!("--optim_args: Nesterov momentum requires a momentum and zero dampening");
                }
                Settings::Sgd(SgdConfig {
                    momentum,
                    dampening,
                    nesterov,
                })
            }
            Algorithm::Adagrad => {
                let lr_decay = r.float("lr_decay", 0.0)?;
                r.float("weight_decay", 0.0)?;
                let eps = r.float("eps", 1e-10)?;
                non_negative("lr_decay", lr_decay)?;
                non_negative("epsilon", eps)?;
                Settings::Adagrad(AdagradConfig { lr_decay, eps })
            }
            Algorithm::RmsProp => {
                let momentum = r.float("momentum", 0.0)?;
                let alpha = r.float("alpha", 0.99)?;
                let eps = r.float("eps", 1e-8)?;
                r.float("weight_decay", 0.0)?;
                let centered = r.flag("centered");
                non_negative("epsilon", eps)?;
                non_negative("momentum", momentum)?;
                non_negative("alpha", alpha)?;
                Settings::RmsProp(RmsPropConfig {
                    alpha,
                    eps,
                    momentum,
                    centered,
                })
            }
            Algorithm::Adafactor => Settings::Adafactor(AdafactorConfig::default()),
        };
        r.warn_unread();
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OptimizerName;

    fn settings(optim: OptimizerName, optim_args: &str) -> Result<Settings> {
        let args = TrainingArguments {
            optim,
            optim_args: Some(optim_args.into()),
            ..Default::default()
        };
        Settings::from_args(&args)
    }

    #[test]
    fn optim_args_are_read_as_hf_reads_them() {
        assert_eq!(
            settings(OptimizerName::Sgd, "momentum=0.9, nesterov=True").unwrap(),
            Settings::Sgd(SgdConfig {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true
            })
        );
        assert_eq!(
            settings(OptimizerName::Rmsprop, "alpha=0.9,centered=1").unwrap(),
            Settings::RmsProp(RmsPropConfig {
                alpha: 0.9,
                eps: 1e-8,
                momentum: 0.0,
                centered: true
            })
        );
        let err = settings(OptimizerName::Sgd, "momentum").unwrap_err();
        assert!(err.to_string().contains("is not key=value"), "{err}");
        let err = settings(OptimizerName::Adagrad, "eps=tiny").unwrap_err();
        assert!(
            err.to_string()
                .contains("could not convert string to float"),
            "{err}"
        );
        let err = settings(OptimizerName::Sgd, "nesterov=true").unwrap_err();
        assert!(
            err.to_string().contains("Nesterov momentum requires"),
            "{err}"
        );
        let err = settings(OptimizerName::Lion8bit, "").unwrap_err();
        assert!(err.to_string().contains("needs bitsandbytes"), "{err}");
    }
}
