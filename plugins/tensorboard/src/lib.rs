//! tensorboard: HF's `report_to="tensorboard"` integration
//! (`TensorBoardCallback` of transformers 5.24), writing the event files
//! torch's `SummaryWriter` writes, with no TensorBoard library:
//! - at train begin: the run's event file, and `add_text("args", …)` with
//!   the training arguments as `args.to_json_string()` gives them;
//! - on each log: every number (bools too) as a scalar and every string as
//!   a text summary, under HF's `rewrite_logs` names (`eval_x` → `eval/x`,
//!   `test_x` → `test/x`, anything else → `train/<key>`) at `global_step`,
//!   then a flush;
//! - at train end: the file is closed; a later log opens a new one.
//!
//! Where: the host grants `/tensorboard`, which is `TENSORBOARD_LOGGING_DIR`
//! if set (the events go right there), else `<output_dir>/runs`, in which the
//! plugin makes HF's run folder `<%b%d_%H-%M-%S>_<hostname>` (the time in
//! UTC). Only world-process zero writes, as in HF.
//!
//! Config (the host sets all three for `--report_to tensorboard`):
//! `hostname` and `pid`, which name the file (defaults `localhost`, 0);
//! `logdir_is_run` (default: whether `TENSORBOARD_LOGGING_DIR` is set).

mod clock;
mod crc32c;
mod proto;
mod writer;

use proto::Body;
use std::path::PathBuf;
use trainbox_sdk::python;
use trainbox_sdk::{
    args, export_plugin, Callback, Capability, Config, Context, Event, Logs, RunOutcome,
    TrainingArgs, Value,
};
use writer::EventFile;

/// The folder the host grants.
const ROOT: &str = "/tensorboard";
const LOGGING_DIR: &str = "TENSORBOARD_LOGGING_DIR";

#[derive(Default)]
struct TensorBoard {
    hostname: String,
    pid: u32,
    /// Write into `ROOT` itself rather than a run folder under it.
    logdir_is_run: bool,
    /// `args.to_json_string()`.
    args_json: String,
    /// The log dir, chosen at the first train begin or log.
    logdir: Option<PathBuf>,
    file: Option<EventFile>,
    /// How many event files this instance made (the name's last part).
    uid: u32,
    /// Whether writing failed once (said once, then nothing is written).
    failed: bool,
}

impl TensorBoard {
    /// The open event file, opening one (and choosing the log dir) if needed.
    fn file(&mut self, wall_time: f64) -> Option<&mut EventFile> {
        if self.file.is_none() && !self.failed {
            let logdir = self.logdir.get_or_insert_with(|| {
                let root = PathBuf::from(ROOT);
                if self.logdir_is_run {
                    root
                } else {
                    let stamp = clock::run_stamp(wall_time as u64);
                    root.join(format!("{stamp}_{}", self.hostname))
                }
            });
            match EventFile::create(logdir, &self.hostname, self.pid, &mut self.uid, wall_time) {
                Ok(f) => self.file = Some(f),
                Err(e) => self.fail(&e.to_string()),
            }
        }
        self.file.as_mut()
    }

    fn flush(&mut self) {
        if let Some(Err(e)) = self.file.as_mut().map(EventFile::flush) {
            self.file = None;
            self.fail(&e.to_string());
        }
    }

    fn fail(&mut self, error: &str) {
        self.failed = true;
        eprintln!(
            "error: cannot write TensorBoard events, none will be written from now on: {error}"
        );
    }
}

impl Callback for TensorBoard {
    const NAME: &'static str = "tensorboard";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log, Event::TrainEnd];

    fn capabilities() -> Vec<Capability> {
        vec![
            Capability::WriteDir(ROOT.into()),
            Capability::Env(LOGGING_DIR.into()),
        ]
    }

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["hostname", "pid", "logdir_is_run"])?;
        self.hostname = config.get("hostname").unwrap_or("localhost").to_string();
        self.pid = config.parse("pid")?.unwrap_or(0);
        self.logdir_is_run = match config.parse("logdir_is_run")? {
            Some(fixed) => fixed,
            None => std::env::var_os(LOGGING_DIR).is_some(),
        };
        let args = serde_json::Value::Object(args::to_json(args));
        self.args_json = python::json_dumps(&(&args).into(), Some(2));
        Ok(())
    }

    fn on_train_begin(&mut self, cx: &mut Context) {
        if !cx.state.is_world_process_zero {
            return;
        }
        let now = clock::now();
        let text = self.args_json.clone();
        if let Some(file) = self.file(now) {
            file.add(
                now,
                0,
                &Body::Text {
                    tag: "args",
                    text: &text,
                },
            );
        }
        self.flush();
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        if !cx.state.is_world_process_zero {
            return;
        }
        let now = clock::now();
        let step = cx.state.global_step as i64;
        let Some(file) = self.file(now) else { return };
        for (key, value) in logs.iter() {
            let tag = args::rewrite_key(key);
            let body = match value {
                Value::Float(f) => Body::Scalar {
                    tag: &tag,
                    value: *f as f32,
                },
                Value::Int(i) => Body::Scalar {
                    tag: &tag,
                    value: *i as f32,
                },
                Value::Flag(b) => Body::Scalar {
                    tag: &tag,
                    value: f32::from(u8::from(*b)),
                },
                Value::Text(text) => Body::Text { tag: &tag, text },
            };
            file.add(now, step, &body);
        }
        self.flush();
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        self.flush();
        self.file = None;
    }

    fn finish(&mut self, _outcome: &RunOutcome) {
        self.flush();
        self.file = None;
    }
}

export_plugin!(TensorBoard);
