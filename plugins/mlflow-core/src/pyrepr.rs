//! Python's `str()` of JSON values: HF logs each param as `str(value)` and
//! mlflow's `set_tags` does the same, so `5e-05`, `True`, `None` and
//! `['mlflow']` are what the server must hold. The formats are the SDK's
//! (`trainbox_sdk::python`, tested there and in `trainbox-pyformat`).

use serde_json::Value;
use trainbox_sdk::python::{self, Py};

/// Python's `str(value)` of a value as `json.loads` would give it.
pub fn py_str(value: &Value) -> String {
    python::str(&Py::from(value))
}
