//! `pandas.DataFrame(log_history).to_html(classes="table-class", index=False)`
//! as pandas 3.x writes it: the columns are the union of the entries' keys
//! in order of first appearance, a missing cell is `NaN`, and each column is
//! formatted by its pandas dtype:
//! - int64 (only integers, none missing): `{:d}`;
//! - float64 (numbers with a float or a gap): `{:.6f}` for the whole
//!   column, trailing zeros cut while every value ends in one (one kept
//!   after the point); `{:.6e}` for the column when a non-zero value is
//!   below 1e-6, or one is above 1e6 and a value is over 12 characters;
//! - bool (only flags, none missing): `True` / `False`;
//! - object (anything else): Python's `str` of each value, `NaN` for gaps.
//!
//! Text is escaped as pandas escapes it (`&`, `<`, `>`).

use trainbox_sdk::{Entry, Value};

/// The rendered table of `rows`.
pub fn to_html(rows: &[Vec<Entry>]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for e in row {
            if !columns.contains(&e.key.as_str()) {
                columns.push(&e.key);
            }
        }
    }
    let cells: Vec<Vec<String>> = columns
        .iter()
        .map(|c| {
            let values: Vec<Option<&Value>> = rows
                .iter()
                .map(|r| r.iter().find(|e| e.key == *c).map(|e| &e.value))
                .collect();
            format_column(&values)
        })
        .collect();
    let mut out = String::from("<table border=\"1\" class=\"dataframe table-class\">\n");
    out.push_str("  <thead>\n    <tr style=\"text-align: right;\">\n");
    for c in &columns {
        out.push_str(&format!("      <th>{}</th>\n", escape(c)));
    }
    out.push_str("    </tr>\n  </thead>\n  <tbody>\n");
    for i in 0..rows.len() {
        out.push_str("    <tr>\n");
        for col in &cells {
            out.push_str(&format!("      <td>{}</td>\n", escape(&col[i])));
        }
        out.push_str("    </tr>\n");
    }
    out.push_str("  </tbody>\n</table>");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One column's cells, by the dtype pandas infers for it.
fn format_column(values: &[Option<&Value>]) -> Vec<String> {
    let present = || values.iter().flatten();
    let full = values.iter().all(Option::is_some);
    let numeric = present().all(|v| matches!(v, Value::Int(_) | Value::Float(_)));
    if numeric && full && present().all(|v| matches!(v, Value::Int(_))) {
        return values.iter().flatten().map(|v| py_str(v)).collect();
    }
    if numeric {
        let floats: Vec<Option<f64>> = values
            .iter()
            .map(|v| match v {
                Some(Value::Int(i)) => Some(*i as f64),
                Some(Value::Float(f)) if !f.is_nan() => Some(*f),
                _ => None,
            })
            .collect();
        return format_floats(&floats);
    }
    if full && present().all(|v| matches!(v, Value::Flag(_))) {
        return values.iter().flatten().map(|v| py_str(v)).collect();
    }
    values
        .iter()
        .map(|v| v.map_or_else(|| "NaN".to_string(), py_str))
        .collect()
}

/// Python's `str` of a value (floats as `repr` up to its exponent form).
fn py_str(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Flag(b) => if *b { "True" } else { "False" }.into(),
        Value::Text(s) => s.clone(),
        Value::Float(f) => format!("{f:?}"),
    }
}

/// pandas' `FloatArrayFormatter` with `display.precision` 6.
fn format_floats(values: &[Option<f64>]) -> Vec<String> {
    let fixed = trim_zeros(values.iter().map(|v| match v {
        Some(f) => fixed(*f),
        None => "NaN".into(),
    }));
    let abs = || values.iter().flatten().map(|f| f.abs());
    let too_long = fixed.iter().map(String::len).max().unwrap_or(0) > 6 + 6;
    let large = abs().any(|a| a > 1e6);
    let small = abs().any(|a| a > 0.0 && a < 1e-6);
    if small || (too_long && large) {
        return values
            .iter()
            .map(|v| v.map_or_else(|| "NaN".into(), scientific))
            .collect();
    }
    fixed
}

fn fixed(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    format!("{f:.6}")
}

/// `{:.6e}` with Python's exponent: a sign and at least two digits.
fn scientific(f: f64) -> String {
    if f.is_infinite() {
        return fixed(f);
    }
    let s = format!("{f:.6e}");
    let (mantissa, exp) = s.split_once('e').expect("an exponent");
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// pandas' `_trim_zeros_float`: cut one trailing zero from every number
/// while all of them end in zero, then put one back after a bare point.
fn trim_zeros(cells: impl Iterator<Item = String>) -> Vec<String> {
    let mut cells: Vec<String> = cells.collect();
    let is_number = |s: &str| {
        let t = s.trim_start_matches(['-', '+']);
        match t.split_once('.') {
            Some((int, frac)) => {
                !int.is_empty()
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        }
    };
    loop {
        let numbers: Vec<&String> = cells.iter().filter(|c| is_number(c)).collect();
        if numbers.is_empty() || !numbers.iter().all(|c| c.ends_with('0')) {
            break;
        }
        for c in cells.iter_mut().filter(|c| is_number(c)) {
            c.pop();
        }
    }
    for c in cells.iter_mut() {
        if is_number(c) && c.ends_with('.') {
            c.push('0');
        }
    }
    cells
}
