//! JSON as Python's `json` module writes and reads it.
//!
//! `trainer_state.json` must be byte-compatible with Hugging Face's
//! `json.dumps(asdict(state), indent=2, sort_keys=True) + "\n"`: keys sorted,
//! ints kept apart from floats, floats in Python's `repr` form (`1e-05`,
//! `3.0`), non-ASCII escaped, and the non-standard `NaN`/`Infinity` tokens.
//! The value type, its writer and the lenient parser live in
//! `trainbox-pyformat`, which the plugin SDK shares; this module names them
//! for the host.

pub use trainbox_pyformat::{
    json_dumps_into, json_dumps_len, json_float as py_float, Json, MAX_DEPTH,
};
