//! Python's `str()` of JSON values: HF logs each param as `str(value)` and
//! mlflow's `set_tags` does the same, so `5e-05`, `True`, `None` and
//! `['mlflow']` are what the server must hold.

use serde_json::Value;
use trainbox_sdk::python::{self, Py};

/// Python's `str(value)` of a value as `json.loads` would give it.
pub fn py_str(value: &Value) -> String {
    python::str(&Py::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_as_python_repr() {
        for (v, expected) in [
            (5e-05, "5e-05"),
            (0.0001, "0.0001"),
            (1e-05, "1e-05"),
            (2.0, "2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.9, "0.9"),
            (0.999, "0.999"),
            (1e-08, "1e-08"),
            (1.5e-7, "1.5e-07"),
            (123456789012345.0, "123456789012345.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-2.5, "-2.5"),
            (2.675, "2.675"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python::float_repr(v), expected, "{v:e}");
        }
    }

    #[test]
    fn values_as_python_str() {
        assert_eq!(py_str(&json!("a'b")), "a'b");
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(py_str(&json!(true)), "True");
        assert_eq!(py_str(&json!(false)), "False");
        assert_eq!(py_str(&json!(3)), "3");
        assert_eq!(py_str(&json!(-3)), "-3");
        assert_eq!(py_str(&json!(3.0)), "3.0");
        assert_eq!(
            py_str(&json!(["mlflow", "tensorboard"])),
            "['mlflow', 'tensorboard']"
        );
        assert_eq!(py_str(&json!([])), "[]");
        assert_eq!(
            py_str(&json!({"a": [1, null], "b": "it's"})),
            "{'a': [1, None], 'b': \"it's\"}"
        );
    }
}
