//! HF's Python objects as the sandbox's data: `TrainerState` (read by
//! attribute, no copy of the log history), `TrainerControl` (read, and
//! written back with the merged flags), and the `logs` / `metrics` dicts.

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

/// Reads HF's `TrainerState` into `state`, all but `log_history` and
/// `stateful_callbacks` (the host keeps its own history, fed by
/// [`crate::Plugins`] from the entries HF appended).
pub fn read_state<'py>(s: &Bound<'py, PyAny>, state: &mut TrainerState) -> PyResult<()> {
    let py = s.py();
    // A dataclass's fields are its `__dict__`'s: one lookup each, cheaper
    // than `getattr`; any other object is read by attribute.
    let fields = s
        .getattr(intern!(py, "__dict__"))
        .ok()
        .and_then(|d| d.cast_into::<PyDict>().ok());
    let get = |name: &Bound<'py, PyString>| -> PyResult<Bound<'py, PyAny>> {
        match &fields {
            Some(d) => d
                .get_item(name)?
                .ok_or_else(|| pyo3::exceptions::PyAttributeError::new_err(name.to_string())),
            None => s.getattr(name),
        }
    };
    let opt = |name: &Bound<'py, PyString>| -> PyResult<Option<Bound<'py, PyAny>>> {
        let v = get(name)?;
        Ok((!v.is_none()).then_some(v))
    };
    state.epoch = opt(intern!(py, "epoch"))?.map_or(Ok(0.0), |v| v.extract())?;
    state.global_step = get(intern!(py, "global_step"))?.extract()?;
    state.max_steps = get(intern!(py, "max_steps"))?.extract()?;
    state.logging_steps = number(&get(intern!(py, "logging_steps"))?)?;
    state.eval_steps = number(&get(intern!(py, "eval_steps"))?)?;
    state.save_steps = number(&get(intern!(py, "save_steps"))?)?;
    state.train_batch_size = opt(intern!(py, "train_batch_size"))?
        .map(|v| v.extract())
        .transpose()?;
    state.num_train_epochs = get(intern!(py, "num_train_epochs"))?.extract()?;
    state.num_input_tokens_seen = get(intern!(py, "num_input_tokens_seen"))?.extract()?;
    state.total_flos = get(intern!(py, "total_flos"))?.extract()?;
    state.best_metric = opt(intern!(py, "best_metric"))?
        .map(|v| v.extract())
        .transpose()?;
    state.best_global_step = opt(intern!(py, "best_global_step"))?
        .map(|v| v.extract())
        .transpose()?;
    state.best_model_checkpoint = opt(intern!(py, "best_model_checkpoint"))?
        .map(|v| v.extract())
        .transpose()?;
    state.is_local_process_zero = get(intern!(py, "is_local_process_zero"))?.extract()?;
    state.is_world_process_zero = get(intern!(py, "is_world_process_zero"))?.extract()?;
    state.is_hyper_param_search = get(intern!(py, "is_hyper_param_search"))?.extract()?;
    state.trial_name = opt(intern!(py, "trial_name"))?
        .map(|v| v.extract())
        .transpose()?;
    Ok(())
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

/// HF's `TrainerControl` as the contract's control.
pub fn read_control(c: &Bound<'_, PyAny>) -> PyResult<TrainerControl> {
    let mut flags = [false; 5];
    for (flag, name) in flags.iter_mut().zip(flag_names(c.py())) {
        *flag = c.getattr(name)?.extract()?;
    }
    let [should_training_stop, should_epoch_stop, should_save, should_evaluate, should_log] = flags;
    Ok(TrainerControl {
        should_training_stop,
        should_epoch_stop,
        should_save,
        should_evaluate,
        should_log,
    })
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
