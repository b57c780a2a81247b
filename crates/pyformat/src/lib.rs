//! trainbox-pyformat: Python's text formats, byte for byte, for the trainbox
//! host (native) and its plugins (wasm32-wasip2). No dependencies.
//!
//! Hugging Face and the loggers it feeds write with Python: `trainer_state.json`
//! is `json.dumps(..., indent=2, sort_keys=True)`, MLflow params are `str(v)`,
//! the progress bar prints `f"{v:.4g}"`. Files and requests that must match
//! them byte for byte are written with this crate, and only with it.
//!
//! Map, in reading order:
//!
//! - floats: [`float_repr`] (`repr(float)`: `1e-05`, `3.0`, `nan`),
//!   [`json_float`] (the same digits, `NaN`/`Infinity`), [`general`] and [`g4`]
//!   (`format(v, '.Ng')`).
//! - strings: [`repr_str`] (`repr(str)`), [`json_str`] (a JSON string with
//!   `ensure_ascii`).
//! - values: the [`Tree`] trait over a value type, and the writers
//!   [`json_dumps`] (`indent=N` or one line), [`repr`] and [`str()`](fn@str).
//! - [`Json`]: the host's value type (ints apart from floats, objects sorted,
//!   so written as `sort_keys=True`), with [`Json::parse`], the lenient reader
//!   of Python's JSON (`NaN`, `Infinity`, at most [`MAX_DEPTH`] levels). The
//!   SDK's `Py` (dicts in insertion order) implements [`Tree`] too.
//! - [`args`]: HF's `TrainingArguments` fields that trainbox keeps, with their
//!   `to_dict()` defaults: the one list the host, the WIT and the SDK follow.
//! - [`wit`]: reads an enum's cases and a record's fields out of a `.wit`
//!   file, for the tests that keep the lists above in step with the WIT.
//!
//! What is not here: JSON without Python's quirks (serde_json does it), and
//! the host's and the SDK's own types (`TrainingArguments`, `TrainingArgs`,
//! `Py`): each side converts to and from these formats itself.

mod float;
mod json;
mod parse;
mod text;
mod tree;

pub mod args;
pub mod wit;

pub use float::{float_repr, g4, general, json_float};
pub use json::Json;
pub use parse::MAX_DEPTH;
pub use text::{json_str, repr_str};
pub use tree::{json_dumps, json_dumps_into, json_dumps_len, repr, str, Entry, Node, Tree};
