//! [`Json`]: a JSON value that remembers whether a number was an int or a
//! float, with objects as sorted maps, so that writing it is
//! `json.dumps(value, sort_keys=True)`: what `trainer_state.json` and
//! `training_args.json` must be, byte for byte.

use crate::tree::{self, Node, Tree};
use std::collections::BTreeMap;

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
        tree::json_dumps(self, Some(2))
    }

    /// `json.dumps(value, sort_keys=True)` on one line, with Python's default
    /// separators (`", "` and `": "`).
    pub fn to_compact(&self) -> String {
        tree::json_dumps(self, None)
    }

    /// Parses a JSON text, accepting Python's `NaN`, `Infinity` and
    /// `-Infinity`; nesting deeper than [`MAX_DEPTH`](crate::MAX_DEPTH) is an
    /// error, and errors name the line (`line 3: expected `:``).
    pub fn parse(text: &str) -> Result<Json, String> {
        crate::parse::parse(text)
    }
}

impl Tree for Json {
    type Entries<'a> = std::collections::btree_map::Iter<'a, String, Json>;

    fn node(&self) -> Node<'_, Json> {
        match self {
            Json::Null => Node::Null,
            Json::Bool(b) => Node::Bool(*b),
            Json::Int(i) => Node::Int((*i).into()),
            Json::Float(f) => Node::Float(*f),
            Json::Str(s) => Node::Str(s),
            Json::Array(items) => Node::Array(items),
            Json::Object(map) => Node::Object(map.iter()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn repr_and_str_follow_python() {
        let v = Json::parse(r#"{"b": [1, null, true], "a": "it's", "n": NaN}"#).unwrap();
        assert_eq!(
            tree::repr(&v),
            "{'a': \"it's\", 'b': [1, None, True], 'n': nan}"
        );
        assert_eq!(tree::str(&Json::Str("x'".into())), "x'");
        assert_eq!(tree::str(&Json::Float(5e-5)), "5e-05");
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
