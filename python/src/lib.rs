//! `trainbox._native`: trainbox's plugin sandbox inside a Python process
//! (issue 16). [`Plugins`] loads `.wasm` plugins through the same
//! `trainbox-sandbox` crate as the `trainbox` binary (compile, describe,
//! grants, limits, fault policy, compile cache, plugin folders, states,
//! reports) and delivers HF's events to them in order, merging the control
//! flags as the native host does (a stop, once requested, stays
//! requested). `trainbox.hf.PluginCallback` drives it from
//! `transformers.Trainer`.
//!
//! Map: `args` (HF's arguments as the contract's), `grants`, `hf` (HF's
//! state, control and logs read from the Python objects, no JSON per
//! event), `hooks` (HF's frequent events as C functions HF's handler
//! calls straight into the sandbox), `views` (parameter statistics and
//! learning rates read from Python when a plugin asks), `load` (files, the
//! `report_to` integrations, settings, instances).

mod args;
mod grants;
mod hf;
mod hooks;
mod load;
mod views;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use trainbox_sandbox::builtin_dir::builtin_plugin_dir;
use trainbox_sandbox::integrations;
use trainbox_sandbox::pyjson::Json;
use trainbox_sandbox::sandbox::{default_cache_dir, CallReport, EventRecords, Sandbox, WasmPlugin};
use trainbox_sandbox::state::{callback_states, LogHistory, TrainerState};
use trainbox_sandbox::{Event, EventSet, RunView};

/// A Python `RuntimeError` with the message (a sandbox or plugin failure).
pub(crate) fn err(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// A Python `ValueError` with the message (bad input from the caller).
pub(crate) fn invalid(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// `text` as JSON, or a `ValueError` naming `what`.
pub(crate) fn parse(text: &str, what: &str) -> PyResult<Json> {
    Json::parse(text).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Sandboxed trainbox plugins, loaded and configured for one run, that
/// receive HF's events in file order.
#[pyclass(module = "trainbox._native", unsendable)]
struct Plugins {
    plugins: Vec<WasmPlugin>,
    /// The events any plugin subscribed to: others return at once.
    events: EventSet,
    view: RunView,
    /// The state the plugins see; its log history is the view's.
    state: TrainerState,
    /// Read HF's state into `state`, and its control, converting only
    /// what changed.
    state_reader: hf::StateReader,
    control_reader: hf::ControlReader,
    /// Entries of HF's `state.log_history` already in that history.
    history_seen: usize,
    /// Plugins already warned for clearing a stop.
    warned: Vec<bool>,
    /// Between on_train_begin and on_train_end: a run HF has not ended.
    in_training: bool,
    finished: bool,
    // Dropped last: the plugins' stores live on its engine.
    _sandbox: Sandbox,
}

#[pymethods]
impl Plugins {
    /// Loads the plugin files and folders `paths` (a folder: its `.wasm`
    /// files sorted by name) for the run whose arguments are `args_json`
    /// (HF's `TrainingArguments.to_dict()` as JSON). `config_json`:
    /// `{"name.key": "value"}`; `grants_json`: `{"name": {...}}`;
    /// `on_error`: restart, disable or abort. `report_to`: the integrations
    /// to load first, from `builtin_dir` (by default the built-in folder
    /// `trainbox train` uses), each granted what `--report_to` grants it.
    #[new]
    #[pyo3(signature = (paths, args_json, config_json="{}", grants_json="{}", on_error="restart", memory_mb=None, deadline_ms=None, report_to=Vec::new(), builtin_dir=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        paths: Vec<String>,
        args_json: &str,
        config_json: &str,
        grants_json: &str,
        on_error: &str,
        memory_mb: Option<u64>,
        deadline_ms: Option<u64>,
        report_to: Vec<String>,
        builtin_dir: Option<String>,
    ) -> PyResult<Plugins> {
        let (args, integration_args) = args::from_json(args_json)?;
        let report_to: Vec<String> = report_to.into_iter().filter(|n| n != "none").collect();
        let request = load::Request {
            paths,
            args,
            integration_args,
            report_to: integrations::selected(&report_to).map_err(invalid)?,
            builtin_dir: builtin_dir.map_or_else(builtin_plugin_dir, PathBuf::from),
            config: load::config_of(&parse(config_json, "config")?)?,
            grants: grants::from_json(grants_json)?,
            on_error: on_error.parse().map_err(invalid)?,
            memory_mb,
            deadline_ms,
        };
        let view = RunView::default();
        let sandbox =
            Sandbox::new(view.clone(), default_cache_dir()).map_err(|e| err(format!("{e:#}")))?;
        let plugins = load::start(&sandbox, &request).map_err(|e| err(format!("{e:#}")))?;
        let events: EventSet = plugins
            .iter()
            .flat_map(|p| p.info().events.iter())
            .collect();
        let state = TrainerState {
            log_history: view.lock().log_history.share(),
            ..TrainerState::default()
        };
        Ok(Plugins {
            warned: vec![false; plugins.len()],
            plugins,
            events,
            view,
            state,
            state_reader: hf::StateReader::default(),
            control_reader: hf::ControlReader::default(),
            history_seen: 0,
            in_training: false,
            finished: false,
            _sandbox: sandbox,
        })
    }

    /// The loaded plugins' labels (`recorder`, `recorder#2`, …), in
    /// dispatch order.
    fn names(&self) -> Vec<String> {
        self.plugins
            .iter()
            .map(|p| p.report().label.clone())
            .collect()
    }

    /// Whether any loaded plugin keeps state in checkpoints.
    fn stateful(&self) -> bool {
        self.plugins.iter().any(|p| p.info().stateful)
    }

    /// Delivers HF's event `event` (`on_step_end`, …) with HF's `state`,
    /// `control` and the `logs` / `metrics` dict to every plugin
    /// subscribed to it, in order, and writes the merged flags into
    /// `control`. The log history is read from `state.log_history`: only
    /// the entries appended since the last event are converted. A plugin
    /// fault raises only under `on_error="abort"`.
    #[pyo3(signature = (event, state, control, payload=None))]
    fn event(
        &mut self,
        event: &str,
        state: &Bound<'_, PyAny>,
        control: &Bound<'_, PyAny>,
        payload: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.deliver(event_of(event)?, state, control, payload)
    }

    /// HF's frequent events (`on_step_end`, `on_log`, …) as functions
    /// bound to these plugins, by HF's method name: set as a callback's
    /// attributes, HF's `CallbackHandler` calls them as the callback's
    /// methods (`f(args, state, control, model=…, …, logs=…)`), and an
    /// event costs no Python frame.
    fn hooks<'py>(slf: &Bound<'py, Self>) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
        hooks::bind(slf)
    }

    /// Sets what the views read: `parameters` (an object with `names()`,
    /// `count()`, `stats(name, grad)`, `histogram(name, grad, bins)`),
    /// `optimizer` (HF's, for the learning rates), the dataloaders'
    /// lengths in batches, and `grad_norm` (an object whose `value()` is
    /// the last update's norm before clipping, or None). None leaves a
    /// value as it was.
    #[pyo3(signature = (parameters=None, optimizer=None, train_batches=None, eval_batches=None, grad_norm=None))]
    fn set_view(
        &self,
        parameters: Option<Py<PyAny>>,
        optimizer: Option<Py<PyAny>>,
        train_batches: Option<u32>,
        eval_batches: Option<u32>,
        grad_norm: Option<Py<PyAny>>,
    ) {
        let mut view = self.view.lock();
        if let Some(g) = grad_norm {
            view.grad_norm_source = Some(Box::new(views::PyGradNorm(g)));
        }
        if let Some(p) = parameters {
            view.parameters = Box::new(views::PyParameters(p));
        }
        if let Some(o) = optimizer {
            view.learning_rates_source = Some(Box::new(views::PyLearningRates(o)));
        }
        if train_batches.is_some() {
            view.train_batches = train_batches;
        }
        if eval_batches.is_some() {
            view.eval_batches = eval_batches;
        }
    }

    /// The stateful plugins' states as JSON, in `stateful_callbacks`' shape
    /// (`{name: state}`, a list for several instances of one name): the
    /// same JSON the native host writes into `trainer_state.json`.
    fn save_states(&mut self) -> PyResult<String> {
        let mut states = Vec::new();
        for p in &mut self.plugins {
            if let Some(state) = p.save_state().map_err(|e| err(format!("{e:#}")))? {
                states.push((p.info().name.clone(), state));
            }
        }
        Ok(Json::Object(callback_states::collect(states)).to_compact())
    }

    /// Restores states made by [`save_states`](Self::save_states), each
    /// stateful plugin its own by name and instance; a plugin without one
    /// starts fresh, with a warning, as in the native host.
    fn load_states(&mut self, states_json: &str) -> PyResult<()> {
        let stored = match parse(states_json, "plugin states")? {
            Json::Object(o) => o,
            _ => return Err(invalid("plugin states: expected a JSON object")),
        };
        let mut used: BTreeMap<String, usize> = BTreeMap::new();
        for p in &mut self.plugins {
            if !p.info().stateful {
                continue;
            }
            let name = p.info().name.clone();
            let n = used.entry(name.clone()).or_default();
            let entry = callback_states::instance(&stored, &name, *n);
            *n += 1;
            match entry {
                Some(state) => p.load_state(state).map_err(|e| err(format!("{e:#}")))?,
                None => trainbox_sandbox::ui::warn(&format!(
                    "plugin {name} (instance {n}) has no state in the checkpoint; it starts fresh"
                )),
            }
        }
        Ok(())
    }

    /// Tells every plugin that the run is over (`error`: why it failed, or
    /// None when it completed). Later calls do nothing.
    #[pyo3(signature = (error=None))]
    fn finish(&mut self, error: Option<String>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let outcome = error.map_or(Ok(()), Err);
        for p in &mut self.plugins {
            p.finish(&outcome);
        }
    }

    /// Whether HF began a training run these plugins heard and has not
    /// ended it.
    #[getter]
    fn in_training(&self) -> bool {
        self.in_training
    }

    /// Finishes the plugins as the run left them: aborted when HF began
    /// training and never ended it (its loop raised, or the process is
    /// exiting), else completed. Later calls do nothing.
    fn abandon(&mut self) {
        let why = self.in_training.then(|| ABANDONED.to_string());
        self.finish(why);
    }

    /// Per plugin: `label`, `calls`, `time_s`, `faults` (their messages),
    /// `restarts`, `disabled`, `slow`.
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.plugins
            .iter()
            .map(|p| {
                let r = p.report();
                let d = PyDict::new(py);
                d.set_item("label", &r.label)?;
                // The event calls, as the table's `calls` column.
                d.set_item("calls", r.exports[0].calls)?;
                d.set_item(
                    "time_s",
                    r.exports.iter().map(|e| e.total.as_secs_f64()).sum::<f64>(),
                )?;
                d.set_item("faults", r.faults.clone())?;
                d.set_item("restarts", r.restarts)?;
                d.set_item("disabled", r.disabled)?;
                d.set_item("slow", r.is_slow())?;
                Ok(d)
            })
            .collect()
    }

    /// The end-of-run table of calls, time and faults, as `trainbox train`
    /// prints it: one line when nothing was slow or faulted.
    fn report_table(&self) -> Vec<String> {
        let reports: Vec<CallReport> = self.plugins.iter().map(|p| p.report().clone()).collect();
        CallReport::table(&reports)
    }
}

impl Plugins {
    /// [`event`](Self::event) for the contract's event `ev` (also what
    /// [`hooks`] call).
    pub(crate) fn deliver(
        &mut self,
        ev: Event,
        state: &Bound<'_, PyAny>,
        control: &Bound<'_, PyAny>,
        payload: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        match ev {
            Event::TrainBegin => self.in_training = true,
            Event::TrainEnd => self.in_training = false,
            _ => {}
        }
        if !self.events.contains(ev) {
            return Ok(());
        }
        let history = self.state_reader.read(state, &mut self.state)?;
        self.sync_history(&history)?;
        let payload = match payload {
            Some(p) if !p.is_none() => hf::logs(p)?,
            _ => Default::default(),
        };
        let before = self.control_reader.read(control)?;
        let mut merged = before;
        let records = EventRecords::new(&self.state, &payload);
        for (i, p) in self.plugins.iter_mut().enumerate() {
            if !p.info().events.contains(ev) {
                continue;
            }
            let returned = p
                .handle_records(ev, &records, merged)
                .map_err(|e| err(format!("{e:#}")))?;
            if merged.merge(returned) && !self.warned[i] {
                self.warned[i] = true;
                trainbox_sandbox::ui::warn(&format!(
                    "{} tried to clear a stop flag in {}; a stop, once requested, stays requested",
                    p.report().label,
                    ev.hf_name()
                ));
            }
        }
        hf::write_control(control, before, merged)
    }

    /// Appends to the plugins' history the entries HF added to `history`
    /// since the last event; starts over when HF's is shorter (a resume
    /// replaced it).
    fn sync_history(&mut self, history: &Bound<'_, PyAny>) -> PyResult<()> {
        let len = history.len()?;
        let mine = &self.state.log_history;
        if len < self.history_seen {
            mine.replace_with(&LogHistory::new());
            self.history_seen = 0;
        }
        for i in self.history_seen..len {
            mine.push(&hf::logs(&history.get_item(i)?)?);
        }
        self.history_seen = len;
        Ok(())
    }
}

/// What plugins hear when HF's run ends without `on_train_end`.
const ABANDONED: &str =
    "HF's training loop stopped before on_train_end (it raised, or the process exited)";

impl Drop for Plugins {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// HF's event name (`on_step_end`) as the contract's event.
fn event_of(name: &str) -> PyResult<Event> {
    name.strip_prefix("on_")
        .and_then(Event::from_name)
        .ok_or_else(|| invalid(format!("unknown event {name:?}")))
}

/// What the plugin file `path` says of itself, as `trainbox plugins
/// inspect` prints it.
#[pyfunction]
fn describe(path: &str) -> PyResult<String> {
    let sandbox =
        Sandbox::new(RunView::default(), default_cache_dir()).map_err(|e| err(format!("{e:#}")))?;
    let c = sandbox
        .compile(Path::new(path))
        .map_err(|e| err(format!("{e:#}")))?;
    Ok(c.summary())
}

/// trainbox's plugin sandbox, for `trainbox.hf`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Plugins>()?;
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    Ok(())
}
