//! JSON as Python's `json` module writes and reads it.
//!
//! `trainer_state.json` must be byte-compatible with Hugging Face's
//! `json.dumps(asdict(state), indent=2, sort_keys=True) + "\n"`: keys sorted,
//! ints kept apart from floats, floats in Python's `repr` form (`1e-05`,
//! `3.0`), non-ASCII escaped, and the non-standard `NaN`/`Infinity` tokens.
//! serde_json does none of these, so this module owns a small value type, its
//! writer and a parser that accepts what Python writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A JSON value that remembers whether a number was an int or a float.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    /// Objects are written with sorted keys, as `sort_keys=True` does.
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Levels of arrays and objects (0 for a scalar).
    pub fn depth(&self) -> usize {
        match self {
            Json::Array(items) => 1 + items.iter().map(Json::depth).max().unwrap_or(0),
            Json::Object(map) => 1 + map.values().map(Json::depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// The value as a float, for ints and floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Int(i) => Some(*i as f64),
            Json::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as an int, for ints and integral floats.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Int(i) => Some(*i),
            Json::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&BTreeMap<String, Json>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// `json.dumps(value, indent=2, sort_keys=True)`.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, Some(0));
        out
    }

    /// `json.dumps(value, sort_keys=True)` on one line, with Python's default
    /// separators (`", "` and `": "`).
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, None);
        out
    }

    /// Parses a JSON text, accepting Python's `NaN`, `Infinity` and `-Infinity`.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        p.ws();
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("unexpected data after the JSON value"));
        }
        Ok(v)
    }
}

/// Formats a float as Python's `repr(float)` does.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Python's repr.
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
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
            let point = exp as usize + 1;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
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

fn write_string(out: &mut String, s: &str) {
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
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
    out.push('"');
}

fn write_scalar(out: &mut String, v: &Json) -> bool {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Json::Float(f) => out.push_str(&py_float(*f)),
        Json::Str(s) => write_string(out, s),
        Json::Array(a) if a.is_empty() => out.push_str("[]"),
        Json::Object(o) if o.is_empty() => out.push_str("{}"),
        _ => return false,
    }
    true
}

/// Writes `v`, pretty with `indent` levels of two spaces (Python's
/// `indent=2`), or on one line with `", "` and `": "` when `indent` is `None`.
fn write_value(out: &mut String, v: &Json, indent: Option<usize>) {
    if write_scalar(out, v) {
        return;
    }
    match v {
        Json::Array(items) => write_items(out, ('[', ']'), items.iter().map(|i| (None, i)), indent),
        Json::Object(map) => write_items(
            out,
            ('{', '}'),
            map.iter().map(|(k, i)| (Some(k), i)),
            indent,
        ),
        _ => unreachable!("scalars are written by write_scalar"),
    }
}

/// The items of an array (no keys) or an object, between `brackets`.
fn write_items<'a>(
    out: &mut String,
    brackets: (char, char),
    items: impl Iterator<Item = (Option<&'a String>, &'a Json)>,
    indent: Option<usize>,
) {
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', depth * 2));
    };
    out.push(brackets.0);
    let inner = indent.map(|d| d + 1);
    for (n, (key, item)) in items.enumerate() {
        if n > 0 {
            out.push_str(if indent.is_some() { "," } else { ", " });
        }
        if let Some(d) = inner {
            newline(out, d);
        }
        if let Some(k) = key {
            write_string(out, k);
            out.push_str(": ");
        }
        write_value(out, item, inner);
    }
    if let Some(d) = indent {
        newline(out, d);
    }
    out.push(brackets.1);
}

/// Deepest nesting of arrays and objects the parser accepts: deeper input
/// (a plugin's state, a crafted file) is an error, not a stack overflow.
pub const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        let line = self.s[..self.i.min(self.s.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        format!("line {line}: {what}")
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        if self.depth > MAX_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let Some(&c) = self.s.get(self.i) else {
            return Err(self.err("unexpected end of input"));
        };
        match c {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(Json::Str),
            b't' if self.eat("true") => Ok(Json::Bool(true)),
            b'f' if self.eat("false") => Ok(Json::Bool(false)),
            b'n' if self.eat("null") => Ok(Json::Null),
            b'N' if self.eat("NaN") => Ok(Json::Float(f64::NAN)),
            b'I' if self.eat("Infinity") => Ok(Json::Float(f64::INFINITY)),
            b'-' if self.eat("-Infinity") => Ok(Json::Float(f64::NEG_INFINITY)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.err(&format!("unexpected character {:?}", c as char))),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        let mut is_float = false;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => is_float = true,
                _ => break,
            }
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII digits");
        if !is_float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Json::Int(i));
            }
        }
        text.parse::<f64>()
            .map(Json::Float)
            .map_err(|_| self.err(&format!("bad number {text:?}")))
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) && self.eat("\\u") {
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                _ => {
                    // Copy a whole UTF-8 sequence.
                    let start = self.i - 1;
                    let len = match c {
                        0x00..=0x7F => 1,
                        0xC0..=0xDF => 2,
                        0xE0..=0xEF => 3,
                        _ => 4,
                    };
                    let end = (start + len).min(self.s.len());
                    let chunk = std::str::from_utf8(&self.s[start..end])
                        .map_err(|_| self.err("invalid UTF-8 in string"))?;
                    out.push_str(chunk);
                    self.i = end;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let chunk = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let text = std::str::from_utf8(chunk).map_err(|_| self.err("bad \\u escape"))?;
        self.i += 4;
        u32::from_str_radix(text, 16).map_err(|_| self.err("bad \\u escape"))
    }

    fn array(&mut self) -> Result<Json, String> {
        self.depth += 1;
        let result = self.array_items();
        self.depth -= 1;
        result
    }

    fn array_items(&mut self) -> Result<Json, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            if self.eat("]") {
                return Ok(Json::Array(items));
            }
            if !self.eat(",") {
                return Err(self.err("expected `,` or `]`"));
            }
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.depth += 1;
        let result = self.object_items();
        self.depth -= 1;
        result
    }

    fn object_items(&mut self) -> Result<Json, String> {
        self.i += 1;
        let mut map = BTreeMap::new();
        self.ws();
        if self.eat("}") {
            return Ok(Json::Object(map));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a key"));
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(":") {
                return Err(self.err("expected `:`"));
            }
            self.ws();
            map.insert(key, self.value()?);
            self.ws();
            if self.eat("}") {
                return Ok(Json::Object(map));
            }
            if !self.eat(",") {
                return Err(self.err("expected `,` or `}`"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_python_repr() {
        let cases = [
            (1e-5, "1e-05"),
            (5e-5, "5e-05"),
            (0.0001, "0.0001"),
            (3.0, "3.0"),
            (0.125, "0.125"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1e16, "1e+16"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5e-7, "-2.5e-07"),
            (4.792e-05, "4.792e-05"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (1.5e300, "1.5e+300"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float(f), want, "repr of {f:e}");
        }
    }

    #[test]
    fn pretty_output_matches_json_dumps_indent_2_sort_keys() {
        let v = Json::parse(r#"{"b": [1, 2.0, {"z": null, "a": "é"}], "a": {}, "c": []}"#).unwrap();
        let want = "{\n  \"a\": {},\n  \"b\": [\n    1,\n    2.0,\n    {\n      \"a\": \"\\u00e9\",\n      \"z\": null\n    }\n  ],\n  \"c\": []\n}";
        assert_eq!(v.to_pretty(), want);
    }

    #[test]
    fn parser_keeps_ints_apart_and_reads_python_tokens() {
        let v = Json::parse(r#"[0, 0.0, -3, 1e-05, NaN, -Infinity, "\ud83d\ude00"]"#).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a[0], Json::Int(0));
        assert_eq!(a[1], Json::Float(0.0));
        assert_eq!(a[2], Json::Int(-3));
        assert_eq!(a[3], Json::Float(1e-5));
        assert!(a[4].as_f64().unwrap().is_nan());
        assert_eq!(a[5], Json::Float(f64::NEG_INFINITY));
        assert_eq!(a[6], Json::Str("😀".into()));
        assert_eq!(
            v.to_compact(),
            r#"[0, 0.0, -3, 1e-05, NaN, -Infinity, "\ud83d\ude00"]"#
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(2_000_000);
        assert!(Json::parse(&deep)
            .unwrap_err()
            .contains("nested deeper than 128 levels"));
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(Json::parse(&ok).is_ok());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = Json::parse("{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert!(err.starts_with("line 3"), "{err}");
    }
}
