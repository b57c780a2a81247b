//! A log entry as HF's `MLflowCallback.on_log` turns it into metrics:
//! numbers only (ints, floats, and bools, which Python counts as ints),
//! HF's raw keys sanitized with mlflow's rule, `step = global_step`.

use trainbox_sdk::Value;

/// mlflow's longest entity key (`MAX_ENTITY_KEY_LENGTH`).
pub const MAX_KEY_LENGTH: usize = 250;

/// One metric point, as `runs/log-batch` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub step: u64,
}

/// HF's name sanitizing: every character outside `[0-9A-Za-z_\-. :/]`
/// becomes `_` (mlflow refuses any other).
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What one log entry gives.
#[derive(Debug, Default, PartialEq)]
pub struct Converted {
    pub metrics: Vec<Metric>,
    /// Keys whose values are not numbers (HF drops them with a warning).
    pub not_numbers: Vec<String>,
    /// Keys longer than mlflow accepts: these points cannot be sent.
    pub too_long: Vec<String>,
}

/// The metrics of a log entry, logged at `step` and `timestamp`.
pub fn from_logs<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a Value)>,
    step: u64,
    timestamp: u64,
) -> Converted {
    let mut out = Converted::default();
    for (key, value) in entries {
        let value = match value {
            Value::Float(f) => *f,
            Value::Int(i) => *i as f64,
            Value::Flag(b) => f64::from(u8::from(*b)),
            Value::Text(_) => {
                out.not_numbers.push(key.to_string());
                continue;
            }
        };
        let name = sanitize(key);
        if name.chars().count() > MAX_KEY_LENGTH {
            out.too_long.push(key.to_string());
            continue;
        }
        out.metrics.push(Metric {
            key: name,
            value,
            timestamp,
            step,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_follows_hf_regex() {
        assert_eq!(sanitize("eval_loss"), "eval_loss");
        assert_eq!(sanitize("train/loss rate:1.0-x"), "train/loss rate:1.0-x");
        assert_eq!(sanitize("loss(x)"), "loss_x_");
        assert_eq!(sanitize("acc@1%"), "acc_1_");
        assert_eq!(sanitize("é"), "_", "one underscore per character");
    }

    #[test]
    fn numbers_become_metrics_text_is_dropped() {
        let entries = [
            ("loss".to_string(), Value::Float(0.5)),
            ("step_count".to_string(), Value::Int(3)),
            ("flag".to_string(), Value::Flag(true)),
            ("note".to_string(), Value::Text("hi".into())),
            ("m(1)".to_string(), Value::Float(f64::NAN)),
            ("k".repeat(251), Value::Float(1.0)),
        ];
        let c = from_logs(entries.iter().map(|(k, v)| (k.as_str(), v)), 7, 1000);
        let got: Vec<(&str, f64)> = c
            .metrics
            .iter()
            .map(|m| (m.key.as_str(), m.value))
            .collect();
        assert_eq!(
            got[..3],
            [("loss", 0.5), ("step_count", 3.0), ("flag", 1.0)]
        );
        assert_eq!(got[3].0, "m_1_");
        assert!(got[3].1.is_nan());
        assert!(c.metrics.iter().all(|m| m.step == 7 && m.timestamp == 1000));
        assert_eq!(c.not_numbers, ["note"]);
        assert_eq!(c.too_long, ["k".repeat(251)]);
    }
}
