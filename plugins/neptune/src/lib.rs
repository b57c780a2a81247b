//! neptune: HF's `NeptuneCallback` (`--report_to neptune`) in neptune 1.14's
//! offline mode. It writes the run directory `init_run(mode="offline")`
//! writes, `<data dir>/offline/run__<uuid>__<pid>__<key>/` (the data dir is
//! `NEPTUNE_DATA_DIRECTORY`, else `./.neptune`, granted as `/neptune`),
//! which `neptune sync` sends to a Neptune project.
//!
//! As HF (transformers 5.24), on world-process zero: at train begin the run
//! starts (neptune's `sys/name` `Untitled`, `sys/description`,
//! `sys/hostname`, `sys/failed` and the `monitoring/<hash>` hostname, pid
//! and tid), then `source_code/integrations/transformers` and
//! `finetuning/trainer_parameters` (`args.to_sanitized_dict()`); each log
//! goes under `finetuning/` with `rewrite_logs` names, numbers only,
//! `.log(value, step=global_step)`, except `train/epoch`, assigned. A run
//! that ends aborted gets `sys/failed = True` and the reason in
//! `monitoring/<hash>/traceback`, as neptune's traceback job does.
//!
//! HF's own callback fails in offline mode: `run["sys/id"].fetch()` raises
//! `MissingFieldException` right after `init_run`. This plugin does what
//! the callback means to do instead: it logs everything.
//!
//! Not done: `finetuning/model_parameters` (trainbox's models have no HF
//! config, so HF would log none either), checkpoint uploads
//! (`log_checkpoints` is not reachable through `--report_to`), the
//! captured stdout/stderr, hardware metrics and source files, which the
//! sandbox cannot see.
//!
//! Modules: `settings` (NEPTUNE_MODE), `run` (the offline run directory).

mod run;
mod settings;

use run::{parse_path, Atom, Machine, OfflineRun};
use settings::Mode;
use sha2::{Digest, Sha256};
use trainbox_sdk::python::{self, Py};
use trainbox_sdk::{
    args, export_plugin, Callback, Capability, Config, Context, Event, Logs, RunOutcome,
    TrainingArgs, Value,
};

/// Where `--report_to neptune` mounts neptune's data directory.
const ROOT: &str = "/neptune";

/// The transformers version HF's callback records.
const TRANSFORMERS_VERSION: &str = "5.24.0";

/// HF's `base_namespace`.
const BASE: &str = "finetuning";

/// The variables read (granted by `--report_to neptune`, which reads
/// `NEPTUNE_DATA_DIRECTORY` itself to mount `/neptune`).
const ENV: &[&str] = &[
    settings::MODE,
    "NEPTUNE_PROJECT",
    "NEPTUNE_MONITORING_NAMESPACE",
];

/// A warning on stderr.
pub(crate) fn warn(msg: &str) {
    eprintln!("warning: {msg}");
}

#[derive(Default)]
struct Neptune {
    mode: Option<Mode>,
    /// `args.to_sanitized_dict()`, in HF's order.
    params: Vec<(String, Atom)>,
    hostname: String,
    pid: String,
    os: String,
    /// The data directory as the user sees it (for the closing message).
    host_dir: String,
    started: bool,
    run: Option<OfflineRun>,
    /// `monitoring/<hash>`.
    monitoring: Vec<String>,
    /// Whether a write failed (reported once).
    write_failed: bool,
}

/// One sanitized value: bool, int, float and str as they are, anything
/// else as `str(value)` (None is `"None"`, a list `"['neptune']"`).
fn sanitized(v: &serde_json::Value) -> Atom {
    use serde_json::Value as J;
    match v {
        J::Bool(b) => Atom::Bool(*b),
        J::String(s) => Atom::Str(s.clone()),
        J::Number(n) => match n.as_i64() {
            Some(i) => Atom::Int(i),
            None => Atom::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => Atom::Str(python::str(&Py::from(other))),
    }
}

/// HF's `args.to_sanitized_dict()` of the arguments plugins see (HF's own,
/// not trainbox's `warmup_ratio`): `to_dict()` in field order, then
/// `train_batch_size` and `eval_batch_size` (the per-device sizes: trainbox
/// trains on one device).
fn sanitized_dict(a: &TrainingArgs) -> Vec<(String, Atom)> {
    let map = args::to_json(a);
    let mut out: Vec<(String, Atom)> = trainbox_pyformat::args::TRAINING_ARGS
        .iter()
        .filter(|f| f.in_hf)
        .filter_map(|f| map.get(f.name).map(|v| (f.name.to_string(), sanitized(v))))
        .collect();
    out.push((
        "train_batch_size".into(),
        Atom::Int(a.per_device_train_batch_size.into()),
    ));
    out.push((
        "eval_batch_size".into(),
        Atom::Int(a.per_device_eval_batch_size.into()),
    ));
    out
}

/// neptune's `monitoring/<hash>`: the last 8 hex digits of the SHA-256 of
/// hostname, pid and thread id, unless `NEPTUNE_MONITORING_NAMESPACE`.
fn monitoring_namespace(hostname: &str, pid: &str, tid: &str) -> String {
    if let Some(ns) = std::env::var("NEPTUNE_MONITORING_NAMESPACE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return ns;
    }
    let mut h = Sha256::new();
    for part in [hostname, pid, tid] {
        h.update(part.as_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("monitoring/{}", &hex[hex.len() - 8..])
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().flat_map(|p| parse_path(p)).collect()
}

impl Neptune {
    /// `init_run()`: the folder and neptune's initial attributes.
    fn start(&mut self) {
        self.started = true;
        if self.mode != Some(Mode::Offline) {
            return;
        }
        let machine = Machine {
            pid: &self.pid,
            os: &self.os,
        };
        let mut r = match OfflineRun::create(&std::path::Path::new(ROOT).join("offline"), &machine)
        {
            Ok(r) => r,
            Err(e) => {
                warn(&format!(
                    "cannot create the offline run in {}/offline: {e}",
                    self.host_dir
                ));
                return;
            }
        };
        // The main thread's id: trainbox's pid (a plugin has no thread).
        let tid = self.pid.clone();
        let ns = monitoring_namespace(&self.hostname, &self.pid, &tid);
        self.monitoring = parse_path(&ns);
        let mon = |leaf: &str| path(&[&ns, leaf]);
        r.assign(&path(&["sys/name"]), Atom::Str("Untitled".into()));
        r.assign(&path(&["sys/description"]), Atom::Str(String::new()));
        r.assign(&mon("hostname"), Atom::Str(self.hostname.clone()));
        r.assign(&path(&["sys/hostname"]), Atom::Str(self.hostname.clone()));
        r.assign(&mon("pid"), Atom::Str(self.pid.clone()));
        r.assign(&mon("tid"), Atom::Str(tid));
        r.assign(&path(&["sys/failed"]), Atom::Bool(false));
        println!("Neptune initialized (offline run {})", r.id);
        self.run = Some(r);
    }

    /// Writes what is queued; a failure is reported once.
    fn flush(&mut self) {
        if let Some(r) = self.run.as_mut() {
            if let Err(e) = r.flush() {
                if !self.write_failed {
                    warn(&format!(
                        "the offline run {} is incomplete: writing to {}/offline failed: {e}",
                        r.name, self.host_dir
                    ));
                }
                self.write_failed = true;
            }
        }
    }
}

impl Callback for Neptune {
    const NAME: &'static str = "neptune";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log];

    fn capabilities() -> Vec<Capability> {
        let mut caps = vec![Capability::WriteDir(ROOT.into())];
        caps.extend(ENV.iter().map(|v| Capability::Env(v.to_string())));
        caps
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["hostname", "pid", "os", "data_dir"])?;
        let mode = settings::mode(|k| std::env::var(k).ok())?;
        if mode == Mode::Debug {
            println!("NEPTUNE_MODE=debug: the run is kept in memory, nothing is written");
        }
        self.mode = Some(mode);
        self.hostname = config.get("hostname").unwrap_or("localhost").into();
        self.pid = config.get("pid").unwrap_or("0").into();
        self.os = config.get("os").unwrap_or("Linux").into();
        self.host_dir = config.get("data_dir").unwrap_or(".neptune").into();
        self.params = sanitized_dict(args);
        Ok(())
    }

    fn on_train_begin(&mut self, cx: &mut Context) {
        if !cx.state.is_world_process_zero {
            return;
        }
        if !self.started {
            self.start();
        }
        let Some(r) = self.run.as_mut() else { return };
        r.assign(
            &path(&["source_code/integrations/transformers"]),
            Atom::Str(TRANSFORMERS_VERSION.into()),
        );
        for (k, v) in &self.params {
            r.assign(&path(&[BASE, "trainer_parameters", k]), v.clone());
        }
        if cx.state.is_hyper_param_search {
            if let Some(trial) = &cx.state.trial_name {
                r.assign(&path(&[BASE, "trial"]), Atom::Str(trial.clone()));
            }
        }
        self.flush();
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        if !cx.state.is_world_process_zero {
            return;
        }
        if !self.started {
            self.start();
        }
        let Some(r) = self.run.as_mut() else { return };
        let step = cx.state.global_step;
        for (k, v) in logs.iter() {
            let name = args::rewrite_key(k);
            let p = path(&[BASE, &name]);
            // HF: numbers only (a bool is an int in Python).
            let (atom, number) = match v {
                Value::Float(f) => (Atom::Float(*f), *f),
                Value::Int(i) => (Atom::Int(*i), *i as f64),
                Value::Flag(b) => (Atom::Bool(*b), f64::from(u8::from(*b))),
                Value::Text(_) => continue,
            };
            if name == "train/epoch" {
                r.assign(&p, atom);
            } else {
                r.log_float(&p, number, step);
            }
        }
        self.flush();
    }

    fn finish(&mut self, outcome: &RunOutcome) {
        if let (Some(r), RunOutcome::Aborted(why)) = (self.run.as_mut(), outcome) {
            let mut p = self.monitoring.clone();
            p.push("traceback".into());
            let lines: Vec<String> = why.lines().map(|l| format!("{l}\n")).collect();
            r.log_strings(&p, &lines);
            r.assign(&path(&["sys/failed"]), Atom::Bool(true));
        }
        self.flush();
        if let Some(r) = self.run.take() {
            let project = std::env::var("NEPTUNE_PROJECT")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "<workspace>/<project>".into());
            println!(
                "offline run {} written to {}/offline/{}; send it with `neptune sync --path {} --project {project}`",
                r.id, self.host_dir, r.name, self.host_dir
            );
        }
    }
}

export_plugin!(Neptune);

#[cfg(test)]
mod tests {
    #[test]
    fn monitoring_namespace_is_neptunes_hash() {
        // hashlib.sha256(b"vm" b"10977" b"10977").hexdigest()[-8:]
        assert_eq!(
            super::monitoring_namespace("vm", "10977", "10977"),
            "monitoring/7862cfc2"
        );
    }
}
