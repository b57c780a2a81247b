//! trackio: HF's `report_to="trackio"` integration (`TrackioCallback` of
//! transformers 5.24) writing where trackio 0.43 keeps a local run: the
//! project's SQLite database `<TRACKIO_DIR>/<project>.db` (`TRACKIO_DIR`,
//! else `$HF_HOME/trackio`; the host grants that folder as `/trackio`), in
//! trackio's schema (see `schema`), so that `trackio show` and trackio's
//! `SQLiteStorage` read the run as one of their own.
//!
//! As HF: `trackio.init(project, name=run_name, resume="allow")` (a run of
//! that name in the project is continued: same run id, steps after its
//! last), the config `args.to_dict()` plus `model/num_parameters` (and the
//! `allow_val_change: true` that HF's `config.update(…, allow_val_change=True)`
//! leaves in it, and trackio's `_Username`, `_Created`, `_Group`), written
//! with the first log; each log under `rewrite_logs` names with
//! `train/global_step`, without HF's single-value scalars
//! (`train_runtime`, …, `total_flos`), at trackio's own step counter (0, 1,
//! …), as `trackio.log(metrics)` without a step; prediction metrics too.
//!
//! Differences: the project is HF's `--project NAME` (default
//! `huggingface`), which the host passes as `trackio.project` (a
//! `--plugin_config trackio.project=NAME` wins); an unnamed
//! run is `trackio-run-<8 hex>` (trackio's fallback name, not its word
//! list); no Space, server, bucket or dataset: `TRACKIO_SPACE_ID` and
//! `TRACKIO_SERVER_URL` are refused (nothing leaves the machine); no
//! system metrics; no model config (trainbox models have none).
//!
//! Config: `project`; `hostname`, `pid` and `trackio_dir` (the folder as
//! the user sees it, for messages) are added by the host.

mod schema;
mod store;

use store::{MetricRow, Store};
use trainbox_sdk::{
    args, export_plugin, time, views, Callback, Capability, Config, Context, Event, Logs,
    TrainingArgs, Value,
};

/// Where `--report_to trackio` mounts `TRACKIO_DIR`.
const ROOT: &str = "/trackio";

/// HF's `single_value_scalars`, which `TrackioCallback.on_log` drops.
const SINGLE_VALUE_SCALARS: &[&str] = &[
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
];

/// The variables read: only to refuse what would leave the machine.
const REMOTE_ENV: &[&str] = &["TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL"];

/// The run being written.
struct RunLog {
    store: Store,
    project: String,
    id: String,
    name: String,
    next_step: i64,
    /// The config's pairs in order, until written with the first log.
    config: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Default)]
struct Trackio {
    /// None before configure and after a write failed.
    run: Option<RunLog>,
}

/// `datetime.now(timezone.utc).isoformat()`.
fn iso_now() -> String {
    let micros = (time::unix_now() * 1e6) as i64;
    let t = time::Utc::from_unix(micros.div_euclid(1_000_000));
    let frac = micros.rem_euclid(1_000_000);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
    if frac == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{frac:06}+00:00")
    }
}

/// `uuid.uuid4().hex`.
fn uuid4_hex() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&time::random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&time::random_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .simple()
        .to_string()
}

/// A value as trackio's `serialize_values` leaves it for JSON: non-finite
/// floats as `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Float(f) if f.is_nan() => "NaN".into(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
        }
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Int(i) => (*i).into(),
        Value::Text(s) => s.as_str().into(),
        Value::Flag(b) => (*b).into(),
    }
}

impl Trackio {
    /// `trackio.log(metrics)`: one row at the next step; the config with
    /// the first. A failure is reported once and ends the logging.
    fn log(&mut self, metrics: serde_json::Map<String, serde_json::Value>) {
        let Some(run) = self.run.as_mut() else { return };
        let row = MetricRow {
            timestamp: iso_now(),
            step: run.next_step,
            metrics: serde_json::Value::Object(metrics).to_string(),
            log_id: uuid4_hex(),
        };
        let config = run
            .config
            .as_ref()
            .map(|c| serde_json::Value::Object(c.clone()).to_string());
        let created = iso_now();
        match run.store.write(
            &run.id,
            &run.name,
            &row,
            config.as_deref().map(|c| (c, created.as_str())),
        ) {
            Ok(()) => {
                run.next_step += 1;
                run.config = None;
            }
            Err(e) => {
                eprintln!("trackio: {e}; nothing more is logged to trackio");
                self.run = None;
            }
        }
    }
}

impl Callback for Trackio {
    const NAME: &'static str = "trackio";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[
        Event::TrainBegin,
        Event::Log,
        Event::Predict,
        Event::TrainEnd,
    ];

    fn capabilities() -> Vec<Capability> {
        let mut caps = vec![Capability::WriteDir(ROOT.into())];
        caps.extend(REMOTE_ENV.iter().map(|v| Capability::Env(v.to_string())));
        caps
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["project", "hostname", "pid", "trackio_dir"])?;
        let project = config.get("project").unwrap_or("huggingface").to_string();
        for var in REMOTE_ENV {
            if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                return Err(format!(
                    "{var}={v}: trainbox's trackio writes the local project database only (no Space or server: \
                     a plugin reaches no address but 127.0.0.1); unset {var}, and after the run upload the \
                     project with `trackio sync --project {project} --space-id <space>`"
                ));
            }
        }
        store::validate_project_name(&project)?;
        let shown = config.get("trackio_dir").unwrap_or(ROOT);
        let store = Store::open(ROOT, shown, &project)?;
        let (id, name, next_step) = match &args.run_name {
            Some(name) => match store.resume(name)? {
                Some((id, next)) => (id, name.clone(), next),
                None => (uuid4_hex(), name.clone(), 0),
            },
            None => {
                let id = uuid4_hex();
                let name = format!("trackio-run-{}", &id[..8]);
                (id, name, 0)
            }
        };
        // trackio's own keys, then HF's `config.update(args, allow_val_change=True)`.
        let mut cfg = serde_json::Map::new();
        cfg.insert("_Username".into(), serde_json::Value::Null);
        cfg.insert("_Created".into(), iso_now().into());
        cfg.insert("_Group".into(), serde_json::Value::Null);
        cfg.extend(args::to_json(args));
        cfg.insert("allow_val_change".into(), true.into());
        self.run = Some(RunLog {
            store,
            project,
            id,
            name,
            next_step,
            config: Some(cfg),
        });
        Ok(())
    }

    fn on_train_begin(&mut self, cx: &mut Context) {
        if !cx.state.is_world_process_zero {
            return;
        }
        let count = views::model().parameter_count();
        if let Some(cfg) = self.run.as_mut().and_then(|r| r.config.as_mut()) {
            cfg.insert("model/num_parameters".into(), count.into());
        }
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        if !cx.state.is_world_process_zero {
            return;
        }
        let mut metrics: serde_json::Map<String, serde_json::Value> = logs
            .iter()
            .filter(|(k, _)| !SINGLE_VALUE_SCALARS.contains(k))
            .map(|(k, v)| (args::rewrite_key(k), json_value(v)))
            .collect();
        metrics.insert("train/global_step".into(), cx.state.global_step.into());
        self.log(metrics);
    }

    fn on_predict(&mut self, cx: &mut Context, metrics: &Logs) {
        if !cx.state.is_world_process_zero {
            return;
        }
        let metrics = metrics
            .iter()
            .map(|(k, v)| (args::rewrite_key(k), json_value(v)))
            .collect();
        self.log(metrics);
    }

    fn on_train_end(&mut self, cx: &mut Context) {
        if !cx.state.is_world_process_zero {
            return;
        }
        if let Some(run) = &self.run {
            println!(
                "* trackio: run {} of project {} in {} (trackio show --project \"{}\")",
                run.name, run.project, run.store.shown, run.project
            );
        }
    }
}

export_plugin!(Trackio);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_trackio_serializes_them() {
        assert_eq!(json_value(&Value::Float(f64::NAN)), "NaN");
        assert_eq!(json_value(&Value::Float(f64::INFINITY)), "Infinity");
        assert_eq!(json_value(&Value::Float(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(json_value(&Value::Float(0.25)), 0.25);
        assert_eq!(json_value(&Value::Int(-3)), -3);
        assert_eq!(json_value(&Value::Flag(true)), true);
        assert_eq!(json_value(&Value::Text("a".into())), "a");
    }

    #[test]
    fn timestamps_and_ids_as_python_writes_them() {
        // datetime.now(timezone.utc).isoformat(): 2026-12-02T06:04:19.530388+00:00
        let t = iso_now();
        assert!(t.ends_with("+00:00") && t.as_bytes()[10] == b'T', "{t}");
        assert!(t.len() == 32 || t.len() == 25, "{t}");
        let id = uuid4_hex();
        assert_eq!(id.len(), 32);
        assert_eq!(id.as_bytes()[12], b'4', "{id}: uuid4's version nibble");
        assert_ne!(id, uuid4_hex());
    }
}
