//! HF's Python objects as the sandbox's data: `TrainerState` (read by
//! attribute, no copy of the log history), `TrainerControl` (read, and
//! written back with the merged flags), and the `logs` / `metrics` dicts.

use pyo3::exceptions::PyAttributeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use trainbox_sandbox::state::{Logs, Number, TrainerControl, TrainerState, Value};

/// A scalar of a log dict (`None` for what the contract does not carry:
/// lists, tensors, None).
pub fn value(v: &Bound<'_, PyAny>) -> Option<Value> {
    if v.is_instance_of::<PyBool>() {
        return v.extract().ok().map(Value::Flag);
    }
    if v.is_instance_of::<PyInt>() {
        return match v.extract::<i64>() {
            Ok(i) => Some(Value::Int(i)),
            Err(_) => v.extract().ok().map(Value::Float),
        };
    }
    if v.is_instance_of::<PyFloat>() {
        return v.extract().ok().map(Value::Float);
    }
    if v.is_instance_of::<PyString>() {
        return v.extract().ok().map(Value::Text);
    }
    // numpy scalars and 0-d tensors convert through `__float__`.
    if v.hasattr(intern!(v.py(), "__float__")).unwrap_or(false)
        && !v.hasattr(intern!(v.py(), "__len__")).unwrap_or(true)
    {
        return v.extract().ok().map(Value::Float);
    }
    None
}

/// A `logs` / `metrics` dict as a log entry, in its order; values the
/// contract does not carry are left out.
pub fn logs(d: &Bound<'_, PyAny>) -> PyResult<Logs> {
    let mut out = Logs::new();
    let Ok(d) = d.cast::<PyDict>() else {
        return Ok(out);
    };
    for (k, v) in d.iter() {
        let Ok(k) = k.extract::<String>() else {
            continue;
        };
        if let Some(v) = value(&v) {
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn number(v: &Bound<'_, PyAny>) -> PyResult<Number> {
    if v.is_instance_of::<PyInt>() {
        Ok(Number::Int(v.extract()?))
    } else {
        Ok(Number::Float(v.extract()?))
    }
}

/// The fields of HF's `TrainerState` the contract carries (all but
/// `log_history`, which the host keeps itself, fed by [`crate::Plugins`]
/// from the entries HF appended, and `stateful_callbacks`).
const STATE_FIELDS: [&str; 17] = [
    "epoch",
    "global_step",
    "max_steps",
    "logging_steps",
    "eval_steps",
    "save_steps",
    "train_batch_size",
    "num_train_epochs",
    "num_input_tokens_seen",
    "total_flos",
    "best_metric",
    "best_global_step",
    "best_model_checkpoint",
    "is_local_process_zero",
    "is_world_process_zero",
    "is_hyper_param_search",
    "trial_name",
];

/// Sets the field HF calls `name` from HF's value `v`; a name the
/// contract does not carry is left alone.
fn set_field(state: &mut TrainerState, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
    fn opt<'a, 'py, T: FromPyObjectOwned<'py>>(v: &'a Bound<'py, PyAny>) -> PyResult<Option<T>> {
        if v.is_none() {
            Ok(None)
        } else {
            v.extract().map(Some).map_err(Into::into)
        }
    }
    match name {
        "epoch" => state.epoch = opt(v)?.unwrap_or(0.0),
        "global_step" => state.global_step = v.extract()?,
        "max_steps" => state.max_steps = v.extract()?,
        "logging_steps" => state.logging_steps = number(v)?,
        "eval_steps" => state.eval_steps = number(v)?,
        "save_steps" => state.save_steps = number(v)?,
        "train_batch_size" => state.train_batch_size = opt(v)?,
        "num_train_epochs" => state.num_train_epochs = v.extract()?,
        "num_input_tokens_seen" => state.num_input_tokens_seen = v.extract()?,
        "total_flos" => state.total_flos = v.extract()?,
        "best_metric" => state.best_metric = opt(v)?,
        "best_global_step" => state.best_global_step = opt(v)?,
        "best_model_checkpoint" => state.best_model_checkpoint = opt(v)?,
        "is_local_process_zero" => state.is_local_process_zero = v.extract()?,
        "is_world_process_zero" => state.is_world_process_zero = v.extract()?,
        "is_hyper_param_search" => state.is_hyper_param_search = v.extract()?,
        "trial_name" => state.trial_name = opt(v)?,
        _ => {}
    }
    Ok(())
}

/// An object's `__dict__` (a dataclass's fields), if it has one. Read as
/// `object.__dict__` reads it, without the attribute lookup through the
/// type that `getattr(o, "__dict__")` makes on every event.
fn fields_of<'py>(o: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    let py = o.py();
    // SAFETY: the GIL is held and `o` is live; the result is a new
    // reference, or null with an exception set (no `__dict__`).
    let d = unsafe { ffi::PyObject_GenericGetDict(o.as_ptr(), std::ptr::null_mut()) };
    // SAFETY: as just said.
    match unsafe { Bound::from_owned_ptr_or_err(py, d) } {
        Ok(d) => d.cast_into::<PyDict>().ok(),
        Err(_) => None,
    }
}

/// A dataclass's `__dict__` as last read: its keys and values, in order,
/// kept alive so that finding the very same value object again means the
/// field was not reassigned (the values HF keeps there, numbers, strings,
/// None, are immutable). HF assigns its `TrainerState` and
/// `TrainerControl` fields in place, a few per event: comparing pointers
/// in one pass over the dict finds those few without a lookup or a
/// conversion per field.
#[derive(Default)]
struct Snapshot {
    items: Vec<(Py<PyAny>, Py<PyAny>)>,
}

impl Snapshot {
    /// The positions whose value is another object than last time, as a
    /// bit set; None when the keys are not the same ones in the same order
    /// (the first read, or a field added), and then nothing can be reused.
    fn changed(&self, d: &Bound<'_, PyDict>) -> Option<u64> {
        if self.items.is_empty() || self.items.len() > 64 || d.len() != self.items.len() {
            return None;
        }
        let mut mask = 0u64;
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key = std::ptr::null_mut();
        let mut value = std::ptr::null_mut();
        for (i, (k, v)) in self.items.iter().enumerate() {
            // SAFETY: `d` is a live dict and the GIL is held; the borrowed
            // pointers are only compared, and no Python code runs during
            // the pass, so the dict cannot change under it.
            if unsafe { ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut key, &mut value) } == 0
                || key != k.as_ptr()
            {
                return None;
            }
            if value != v.as_ptr() {
                mask |= 1 << i;
            }
        }
        Some(mask)
    }

    /// Remembers every item of `d`.
    fn take(&mut self, d: &Bound<'_, PyDict>) {
        self.items = d.iter().map(|(k, v)| (k.unbind(), v.unbind())).collect();
    }

    /// Remembers nothing: the next read converts every field.
    fn forget(&mut self) {
        self.items.clear();
    }

    /// Calls `apply` with each changed item in `mask` (HF's field name and
    /// its value), read again from `d` by key, and remembers it.
    fn refresh<'py>(
        &mut self,
        d: &Bound<'py, PyDict>,
        mask: u64,
        mut apply: impl FnMut(&str, &Bound<'py, PyAny>) -> PyResult<()>,
    ) -> PyResult<()> {
        let py = d.py();
        for (i, (k, v)) in self.items.iter_mut().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            let key = k.bind(py).cast::<PyString>()?;
            let Some(now) = d.get_item(key)? else {
                continue;
            };
            apply(key.to_str()?, &now)?;
            *v = now.unbind();
        }
        Ok(())
    }
}

/// Reads HF's `TrainerState` into the contract's, converting only the
/// fields HF reassigned since the last read ([`Snapshot`]).
#[derive(Default)]
pub struct StateReader {
    seen: Snapshot,
}

impl StateReader {
    /// Brings `state` up to date with HF's `s`; returns HF's
    /// `s.log_history` (the list itself, not a copy).
    pub fn read<'py>(
        &mut self,
        s: &Bound<'py, PyAny>,
        state: &mut TrainerState,
    ) -> PyResult<Bound<'py, PyAny>> {
        let history = intern!(s.py(), "log_history");
        let Some(d) = fields_of(s) else {
            // Not a dataclass: read every field by attribute.
            for name in STATE_FIELDS {
                set_field(state, name, &s.getattr(name)?)?;
            }
            return s.getattr(history);
        };
        let read = match self.seen.changed(&d) {
            Some(mask) => self
                .seen
                .refresh(&d, mask, |name, v| set_field(state, name, v)),
            None => STATE_FIELDS
                .iter()
                .try_for_each(|name| {
                    let v = d
                        .get_item(name)?
                        .ok_or_else(|| PyAttributeError::new_err(*name))?;
                    set_field(state, name, &v)
                })
                .map(|()| self.seen.take(&d)),
        };
        if read.is_err() {
            // Some fields were not converted: the next read converts all.
            self.seen.forget();
        }
        read?;
        match d.get_item(history)? {
            Some(h) => Ok(h),
            None => s.getattr(history),
        }
    }
}

/// The five flags of HF's `TrainerControl`, in the contract's order.
fn flag_names<'py>(py: Python<'py>) -> [&'py Bound<'py, PyString>; 5] {
    [
        intern!(py, "should_training_stop"),
        intern!(py, "should_epoch_stop"),
        intern!(py, "should_save"),
        intern!(py, "should_evaluate"),
        intern!(py, "should_log"),
    ]
}

/// Sets the flag HF calls `name` to `v`; other names (attributes someone
/// added to HF's object) are left alone, unread.
fn set_flag(c: &mut TrainerControl, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
    let flag = match name {
        "should_training_stop" => &mut c.should_training_stop,
        "should_epoch_stop" => &mut c.should_epoch_stop,
        "should_save" => &mut c.should_save,
        "should_evaluate" => &mut c.should_evaluate,
        "should_log" => &mut c.should_log,
        _ => return Ok(()),
    };
    *flag = v.extract()?;
    Ok(())
}

/// Reads HF's `TrainerControl`, converting only the flags reassigned
/// since the last read ([`Snapshot`]).
#[derive(Default)]
pub struct ControlReader {
    seen: Snapshot,
    flags: TrainerControl,
}

impl ControlReader {
    /// HF's `c` as the contract's control.
    pub fn read(&mut self, c: &Bound<'_, PyAny>) -> PyResult<TrainerControl> {
        let Some(d) = fields_of(c) else {
            let mut flags = TrainerControl::default();
            for name in flag_names(c.py()) {
                set_flag(&mut flags, name.to_str()?, &c.getattr(name)?)?;
            }
            return Ok(flags);
        };
        let flags = &mut self.flags;
        let read = match self.seen.changed(&d) {
            Some(mask) => self
                .seen
                .refresh(&d, mask, |name, v| set_flag(flags, name, v)),
            None => flag_names(c.py())
                .into_iter()
                .try_for_each(|name| {
                    let v = d
                        .get_item(name)?
                        .ok_or_else(|| PyAttributeError::new_err(name.to_string()))?;
                    set_flag(flags, name.to_str()?, &v)
                })
                .map(|()| self.seen.take(&d)),
        };
        if read.is_err() {
            // Some flags were not converted: the next read converts all.
            self.seen.forget();
        }
        read.map(|()| self.flags)
    }
}

/// Writes the flags of `control` that differ from `before` into HF's object.
pub fn write_control(
    c: &Bound<'_, PyAny>,
    before: TrainerControl,
    control: TrainerControl,
) -> PyResult<()> {
    let old = before.named();
    for ((name, (_, now)), (_, was)) in flag_names(c.py()).into_iter().zip(control.named()).zip(old)
    {
        if now != was {
            c.setattr(name, now)?;
        }
    }
    Ok(())
}
