//! Python's text forms, byte for byte, over [`Py`], an ordered Python value:
//! `repr(float)`, `repr(value)`, `str(value)` and `json.dumps(value,
//! indent=N)` (with its default `ensure_ascii`): what loggers that mirror a
//! Python library must write.

use std::fmt::Write;

/// A Python value as loggers see it: dicts keep their insertion order.
#[derive(Clone, Debug, PartialEq)]
pub enum Py {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    Dict(Vec<(String, Py)>),
}

impl From<&serde_json::Value> for Py {
    fn from(v: &serde_json::Value) -> Py {
        use serde_json::Value as J;
        match v {
            J::Null => Py::None,
            J::Bool(b) => Py::Bool(*b),
            J::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Py::Int(i.into()),
                (None, Some(u)) => Py::Int(u.into()),
                _ => Py::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Py::Str(s.clone()),
            J::Array(a) => Py::List(a.iter().map(Py::from).collect()),
            J::Object(o) => Py::Dict(o.iter().map(|(k, v)| (k.clone(), Py::from(v))).collect()),
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed
/// notation for exponents -4 to 15 and scientific (`1e-05`, `1e+16`)
/// otherwise; `nan`, `inf`, `-inf`.
pub fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "4e0".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` has an integer exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// Python's `repr(value)`: `None`, `True`, `5e-05`, `'text'`, `['a', 1]`,
/// `{'k': 1.0}`.
pub fn repr(v: &Py) -> String {
    match v {
        Py::None => "None".into(),
        Py::Bool(b) => if *b { "True" } else { "False" }.into(),
        Py::Int(i) => i.to_string(),
        Py::Float(f) => float_repr(*f),
        Py::Str(s) => crate::format::py_str(s),
        Py::List(items) => format!(
            "[{}]",
            items.iter().map(repr).collect::<Vec<_>>().join(", ")
        ),
        Py::Dict(entries) => {
            let items: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", crate::format::py_str(k), repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's `str(value)`: a string as it is, anything else as its `repr`.
pub fn str(v: &Py) -> String {
    match v {
        Py::Str(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `json.dumps(v, indent=indent)`; `None` is the one-line form.
pub fn json_dumps(v: &Py, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_json(&mut out, v, indent, 0);
    out
}

fn write_json(out: &mut String, v: &Py, indent: Option<usize>, level: usize) {
    match v {
        Py::None => out.push_str("null"),
        Py::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Py::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Py::Float(f) if f.is_nan() => out.push_str("NaN"),
        Py::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Py::Float(f) => out.push_str(&float_repr(*f)),
        Py::Str(s) => json_string(out, s),
        Py::List(items) => write_container(
            out,
            '[',
            ']',
            items.iter(),
            indent,
            level,
            |out, item, l| write_json(out, item, indent, l),
        ),
        Py::Dict(entries) => write_container(
            out,
            '{',
            '}',
            entries.iter(),
            indent,
            level,
            |out, (k, v), l| {
                json_string(out, k);
                out.push_str(": ");
                write_json(out, v, indent, l);
            },
        ),
    }
}

/// `[…]` or `{…}` as json.dumps lays them out: empty ones as `[]`/`{}`.
fn write_container<T>(
    out: &mut String,
    open: char,
    close: char,
    items: impl ExactSizeIterator<Item = T>,
    indent: Option<usize>,
    level: usize,
    mut item: impl FnMut(&mut String, T, usize),
) {
    out.push(open);
    if items.len() == 0 {
        out.push(close);
        return;
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * level));
        }
    };
    for (i, x) in items.enumerate() {
        if i > 0 {
            out.push_str(if indent.is_some() { "," } else { ", " });
        }
        newline(out, level + 1);
        item(out, x, level + 1);
    }
    newline(out, level);
    out.push(close);
}

/// A JSON string with `ensure_ascii`: everything outside ' '..='~' escaped.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_python_reprs() {
        let cases = [
            (4e-05, "4e-05"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (2.0, "2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456.789, "123456.789"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-2.5e-7, "-2.5e-07"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(float_repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn json_dumps_matches_python_indent_and_ascii() {
        let v = Py::Dict(vec![
            ("loss".into(), Py::Float(1.5)),
            ("step".into(), Py::Int(3)),
            ("empty".into(), Py::Dict(vec![])),
            (
                "eval".into(),
                Py::Dict(vec![("loss".into(), Py::Float(2.0))]),
            ),
            (
                "l".into(),
                Py::List(vec![Py::Str("é\"\u{1F600}\u{7f}".into()), Py::None]),
            ),
        ]);
        assert_eq!(
            json_dumps(&v, Some(4)),
            "{\n    \"loss\": 1.5,\n    \"step\": 3,\n    \"empty\": {},\n    \"eval\": {\n        \"loss\": 2.0\n    },\n    \"l\": [\n        \"\\u00e9\\\"\\ud83d\\ude00\\u007f\",\n        null\n    ]\n}"
        );
        assert_eq!(
            json_dumps(&v, None),
            "{\"loss\": 1.5, \"step\": 3, \"empty\": {}, \"eval\": {\"loss\": 2.0}, \"l\": [\"\\u00e9\\\"\\ud83d\\ude00\\u007f\", null]}"
        );
    }
}
