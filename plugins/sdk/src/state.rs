//! Serde helpers for stateful plugins. A state is HF's `ExportableState`:
//! `{"args": <constructor arguments>, "attributes": <what changes>}`.
//!
//! ```no_run
//! # use trainbox_sdk::state;
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Counter { count: u32 }
//! let text = state::exportable(&serde_json::json!({"patience": 3}), &Counter { count: 1 });
//! let back: Counter = state::attributes(&text).unwrap();
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

/// `{"args": args, "attributes": attributes}` as JSON text. Values that
/// do not serialize to JSON objects (such as `()`) are stored as `{}`.
pub fn exportable<A: Serialize, T: Serialize>(args: &A, attributes: &T) -> String {
    fn object(v: serde_json::Result<serde_json::Value>) -> serde_json::Value {
        match v {
            Ok(serde_json::Value::Object(o)) => serde_json::Value::Object(o),
            _ => serde_json::Value::Object(Default::default()),
        }
    }
    serde_json::json!({
        "args": object(serde_json::to_value(args)),
        "attributes": object(serde_json::to_value(attributes)),
    })
    .to_string()
}

/// The `attributes` of a saved state.
pub fn attributes<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    part(text, "attributes")
}

/// The `args` of a saved state.
pub fn args<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    part(text, "args")
}

fn part<T: DeserializeOwned>(text: &str, key: &str) -> Result<T, String> {
    let mut v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid state: {e}"))?;
    let part = v
        .get_mut(key)
        .map(serde_json::Value::take)
        .ok_or_else(|| format!("invalid state: no {key:?}"))?;
    serde_json::from_value(part).map_err(|e| format!("invalid state {key}: {e}"))
}
