//! Python's text forms, byte for byte, over [`Py`], an ordered Python value:
//! `repr(float)`, `repr(value)`, `str(value)` and `json.dumps(value,
//! indent=N)` (with its default `ensure_ascii`): what loggers that mirror a
//! Python library must write. The writers are `trainbox-pyformat`'s, shared
//! with the host; this module adds the value type plugins build.

pub use trainbox_pyformat::float_repr;
use trainbox_pyformat::{Node, Tree};

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

impl Tree for Py {
    type Entries<'a> = std::slice::Iter<'a, (String, Py)>;

    fn node(&self) -> Node<'_, Py> {
        match self {
            Py::None => Node::Null,
            Py::Bool(b) => Node::Bool(*b),
            Py::Int(i) => Node::Int(*i),
            Py::Float(f) => Node::Float(*f),
            Py::Str(s) => Node::Str(s),
            Py::List(items) => Node::Array(items),
            Py::Dict(entries) => Node::Object(entries.iter()),
        }
    }
}

/// Python's `repr(value)`: `None`, `True`, `5e-05`, `'text'`, `['a', 1]`,
/// `{'k': 1.0}`.
pub fn repr(v: &Py) -> String {
    trainbox_pyformat::repr(v)
}

/// Python's `str(value)`: a string as it is, anything else as its `repr`.
pub fn str(v: &Py) -> String {
    trainbox_pyformat::str(v)
}

/// Python's `json.dumps(v, indent=indent)`; `None` is the one-line form.
/// Dicts keep their order; floats are `repr`'s, with `NaN`/`Infinity`.
pub fn json_dumps(v: &Py, indent: Option<usize>) -> String {
    trainbox_pyformat::json_dumps(v, indent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_dumps_keeps_insertion_order() {
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

    #[test]
    fn json_values_as_python_str() {
        let s = |v: serde_json::Value| str(&Py::from(&v));
        assert_eq!(s(json!("a'b")), "a'b");
        assert_eq!(s(json!(null)), "None");
        assert_eq!(s(json!(true)), "True");
        assert_eq!(s(json!(false)), "False");
        assert_eq!(s(json!(3)), "3");
        assert_eq!(s(json!(-3)), "-3");
        assert_eq!(s(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(s(json!(3.0)), "3.0");
        assert_eq!(s(json!(5e-05)), "5e-05");
        assert_eq!(
            s(json!(["mlflow", "tensorboard"])),
            "['mlflow', 'tensorboard']"
        );
        assert_eq!(s(json!([])), "[]");
        assert_eq!(
            s(json!({"a": [1, null], "b": "it's"})),
            "{'a': [1, None], 'b': \"it's\"}"
        );
    }
}
