//! HF's hot events as C functions bound to a [`Plugins`] object, so that
//! `PluginCallback` can hold them as its `on_step_end`, … attributes and
//! HF's `CallbackHandler` calls straight into the sandbox: no Python frame,
//! no `**kwargs` dict, no keyword matching.
//!
//! HF calls every callback method as `method(args, state, control,
//! model=…, processing_class=…, optimizer=…, lr_scheduler=…,
//! train_dataloader=…, eval_dataloader=…, logs=…)`. The events here need
//! only `state`, `control` and, for `on_log`, `logs`; the others' objects
//! (the views' model, optimizer and dataloaders) are read by the events
//! that may bring new ones (`on_train_begin`, `on_evaluate`, …), which stay
//! Python methods. A function is CPython's vectorcall form
//! (`METH_FASTCALL | METH_KEYWORDS`, stable ABI since 3.10): PyO3's own
//! methods match every keyword by name, which cost a third of an event.

use crate::Plugins;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use trainbox_sandbox::Event;

/// The events bound as functions: those HF calls every step or often, and
/// whose arguments the views do not need.
pub const HOT: [Event; 9] = [
    Event::EpochBegin,
    Event::EpochEnd,
    Event::StepBegin,
    Event::SubstepEnd,
    Event::PreOptimizerStep,
    Event::OptimizerStep,
    Event::StepEnd,
    Event::Save,
    Event::Log,
];

/// The method tables CPython's function objects point to, one per event
/// in [`HOT`]; CPython only reads them.
struct Defs([ffi::PyMethodDef; HOT.len()]);

// SAFETY: the tables are never written; their pointers are to 'static
// C strings and functions.
unsafe impl Sync for Defs {}

const fn def(
    name: &'static std::ffi::CStr,
    f: ffi::PyCFunctionFastWithKeywords,
) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: f,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: c"Delivers this HF event to the trainbox plugins; returns control.".as_ptr(),
    }
}

static DEFS: Defs = Defs([
    def(c"on_epoch_begin", hook::<0>),
    def(c"on_epoch_end", hook::<1>),
    def(c"on_step_begin", hook::<2>),
    def(c"on_substep_end", hook::<3>),
    def(c"on_pre_optimizer_step", hook::<4>),
    def(c"on_optimizer_step", hook::<5>),
    def(c"on_step_end", hook::<6>),
    def(c"on_save", hook::<7>),
    def(c"on_log", hook::<8>),
]);

/// For each event of [`HOT`]: HF's method name and a function delivering
/// it to `plugins` (which it keeps alive).
pub fn bind<'py>(
    plugins: &Bound<'py, Plugins>,
) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
    let py = plugins.py();
    HOT.iter()
        .zip(&DEFS.0)
        .map(|(ev, d)| {
            // SAFETY: `d` is 'static and CPython does not write to it; the
            // new function holds a strong reference to `plugins`, its self.
            let f = unsafe {
                ffi::PyCFunction_NewEx(
                    d as *const ffi::PyMethodDef as *mut ffi::PyMethodDef,
                    plugins.as_ptr(),
                    std::ptr::null_mut(),
                )
            };
            // SAFETY: a new reference, or null with an exception set.
            let f = unsafe { Bound::from_owned_ptr_or_err(py, f) }?;
            Ok((ev.hf_name(), f))
        })
        .collect()
}

/// The function behind event `HOT[E]`: CPython calls it with the GIL held,
/// `slf` the bound `Plugins`, `args` the `nargs` positional arguments
/// followed by one value per name of the `kwnames` tuple (or null). It
/// enters through PyO3's own trampoline, as a `#[pyfunction]` does, so
/// that PyO3 knows the thread is attached (a `Py` dropped inside is
/// released at once, not deferred to a global pool) and a panic becomes
/// Python's `PanicException`.
unsafe extern "C" fn hook<const E: usize>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a C function attached, with the pointers of its
    // vectorcall protocol; `deliver_hot` reads them as such.
    unsafe {
        pyo3::impl_::trampoline::fastcall_with_keywords(slf, args, nargs, kwnames, deliver_hot::<E>)
    }
}

/// [`deliver`] for event `HOT[E]`, as a new reference to `control`.
unsafe fn deliver_hot<const E: usize>(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: as `hook` receives them.
    unsafe { deliver(py, HOT[E], slf, args, nargs, kwnames) }.map(Bound::into_ptr)
}

/// Reads `(args, state, control[, logs])` and `logs=` from the call and
/// delivers `event`; returns `control`, as an HF callback method does.
unsafe fn deliver<'py>(
    py: Python<'py>,
    event: Event,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Bound<'py, PyAny>> {
    let names = if kwnames.is_null() {
        None
    } else {
        // SAFETY: a non-null `kwnames` is a tuple of str.
        Some(unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?)
    };
    let positional = usize::try_from(nargs).unwrap_or(0);
    if positional < 3 {
        return Err(PyTypeError::new_err(format!(
            "{}() takes (args, state, control, ...) as HF's CallbackHandler passes them",
            event.hf_name()
        )));
    }
    // SAFETY: CPython passes `nargs` positional values and then one per
    // name of `kwnames`, each a borrowed, live reference.
    let at = |i: usize| unsafe { Borrowed::from_ptr(py, *args.add(i)) };
    let (state, control) = (at(1), at(2));
    let mut payload = None;
    if event == Event::Log {
        if positional > 3 {
            payload = Some(at(3));
        }
        for (i, name) in names.iter().flatten().enumerate() {
            if name.cast::<PyString>()?.to_str()? == "logs" {
                payload = Some(at(positional + i));
            }
        }
    }
    // SAFETY: `slf` is the object `bind` gave the function: a live `Plugins`.
    let plugins = unsafe { Bound::from_borrowed_ptr(py, slf) }.cast_into::<Plugins>()?;
    plugins
        .try_borrow_mut()?
        .deliver(event, &state, &control, payload.as_deref())?;
    Ok(control.to_owned())
}
