//! Log entries and metrics sets: ordered named values, as HF's `logs` and
//! `metrics` dicts, and their JSON form.

use crate::pyjson::Json;

/// A value in a log entry or a metrics set.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    Text(String),
    Flag(bool),
}

impl Value {
    /// The value as a number (flags count as 0/1, as Python's bool does).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Flag(b) => Some(f64::from(u8::from(*b))),
            Value::Text(_) => None,
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Value::Float(f) => Json::Float(*f),
            Value::Int(i) => Json::Int(*i),
            Value::Text(s) => Json::Str(s.clone()),
            Value::Flag(b) => Json::Bool(*b),
        }
    }

    /// A scalar JSON value; `None` for null, arrays and objects.
    pub fn from_json(j: &Json) -> Option<Value> {
        Some(match j {
            Json::Float(f) => Value::Float(*f),
            Json::Int(i) => Value::Int(*i),
            Json::Str(s) => Value::Text(s.clone()),
            Json::Bool(b) => Value::Flag(*b),
            _ => return None,
        })
    }
}

/// An ordered set of named values: one log entry, or a metrics set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logs(pub Vec<(String, Value)>);

impl Logs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`, replacing an earlier value in place.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_json(&self) -> Json {
        Json::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }
}
