//! Python's formatting, for plugins that print logs as HF does.

use crate::{Logs, Value};

/// Python's `f"{v:.4g}"`.
pub fn g4(v: f64) -> String {
    general(v, 4)
}

/// Python's `format(v, f".{precision}g")`.
pub fn general(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    if exp < -4 || exp >= p as i32 {
        let m = strip_zeros(mantissa);
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Python's `repr(str)`.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

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

    #[test]
    fn g4_matches_python() {
        let cases = [
            (0.693147, "0.6931"),
            (4.792e-05, "4.792e-05"),
            (1.0, "1"),
            (0.125, "0.125"),
            (12345.6, "1.235e+04"),
            (1234.0, "1234"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (99999.0, "1e+05"),
            (-2.5, "-2.5"),
        ];
        for (v, want) in cases {
            assert_eq!(g4(v), want, "{v}");
        }
    }

    #[test]
    fn strings_are_python_reprs() {
        assert_eq!(py_str("loss"), "'loss'");
        assert_eq!(py_str("it's"), "\"it's\"");
    }
}
