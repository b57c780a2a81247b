//! Python's formatting, for plugins that print logs as HF does:
//! `format(v, '.Ng')` and `repr(str)` (from `trainbox-pyformat`, shared with
//! the host) and HF's `str()` of a log entry.

pub use trainbox_pyformat::{g4, general, repr_str as py_str};

use crate::{Logs, Value};

/// A log entry as HF's progress and printer callbacks print it: `str()` of a
/// dict whose floats are formatted `{:.4g}`, strings longer than
/// `max_str_len` replaced by a notice, and `total_flos` left out.
pub fn py_dict(logs: &Logs, max_str_len: usize) -> String {
    let mut parts = Vec::new();
    for (k, v) in logs.iter() {
        if k == "total_flos" {
            continue;
        }
        let value = match v {
            Value::Float(f) => py_str(&g4(*f)),
            Value::Int(i) => i.to_string(),
            Value::Flag(b) => if *b { "True" } else { "False" }.to_string(),
            Value::Text(s) if s.chars().count() > max_str_len => py_str(&format!(
                "[String too long to display, length: {} > {max_str_len}. Consider increasing `max_str_len` if needed.]",
                s.chars().count()
            )),
            Value::Text(s) => py_str(s),
        };
        parts.push(format!("{}: {value}", py_str(k)));
    }
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entry;

    #[test]
    fn log_entries_print_as_hfs_str_of_a_dict() {
        let entry = |key: &str, value| Entry {
            key: key.into(),
            value,
        };
        let logs = [
            entry("loss", Value::Float(0.4567891)),
            entry("total_flos", Value::Float(1e9)),
            entry("step", Value::Int(5)),
            entry("it's", Value::Flag(true)),
            entry("note", Value::Text("abcdef".into())),
        ];
        assert_eq!(
            py_dict(&Logs(&logs), 100),
            "{'loss': '0.4568', 'step': 5, \"it's\": True, 'note': 'abcdef'}"
        );
        assert_eq!(
            py_dict(&Logs(&logs[4..]), 3),
            "{'note': '[String too long to display, length: 6 > 3. Consider increasing `max_str_len` if needed.]'}"
        );
    }
}
