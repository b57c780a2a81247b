//! The test harness: [`Run`] is one `trainbox train` in a fresh directory
//! named after the test (as ripgrep's `Dir` + `TestCommand`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use trainbox::pyjson::Json;

/// Where the built plugins are, read at run time (never baked in when
/// the tests compile, which a shared target directory would make another
/// checkout's): `$TRAINBOX_PLUGIN_DIR` (the Makefile exports this
/// checkout's `build/plugins`), else `../build/plugins` from the package
/// folder cargo runs the tests in. The binary under test gets the same.
pub fn plugin_dir() -> PathBuf {
    match std::env::var_os("TRAINBOX_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir()
            .expect("the current directory")
            .join("../build/plugins"),
    }
}

/// The binary under test, finding its built-in plugins in [`plugin_dir`].
pub fn trainbox() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainbox"));
    cmd.env("TRAINBOX_PLUGIN_DIR", plugin_dir());
    cmd
}

/// The path of a built plugin, or a failure that says how to build it.
pub fn plugin(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "plugin {name} not built: run `make plugins` ({} missing)",
        path.display()
    );
    path
}

/// A fresh, empty directory for one test.
pub fn fresh_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("spec")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One `trainbox` invocation.
#[derive(Clone)]
pub struct Run {
    pub dir: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// The open-file limit to run under (soft and hard), as `ulimit -n`.
    nofile: Option<u64>,
    /// The launcher and its arguments, when trainbox runs under one.
    launcher: Option<Vec<String>>,
}

impl Run {
    /// `trainbox train` on the regression task (HF's test set-up: 64
    /// samples, batch 8, 3 epochs) with the recorder loaded, in a fresh
    /// directory, progress bars off (printer last).
    pub fn regression(test: &str) -> Run {
        let dir = fresh_dir(test);
        let mut run = Run {
            args: vec!["train".into()],
            dir,
            envs: Vec::new(),
            nofile: None,
            launcher: None,
        };
        run = run.args(&["--task", "regression", "--disable_tqdm"]);
        let out = run.dir.join("out");
        run.arg("--output_dir")
            .arg(out.to_str().unwrap())
            .plugin("recorder")
    }

    /// A bare `trainbox` command with these arguments, run in a fresh directory.
    pub fn command(test: &str, args: &[&str]) -> Run {
        Run {
            dir: fresh_dir(test),
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: Vec::new(),
            nofile: None,
            launcher: None,
        }
    }

    pub fn arg(mut self, a: &str) -> Run {
        self.args.push(a.to_string());
        self
    }

    pub fn args(mut self, a: &[&str]) -> Run {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// Runs under an open-file limit of `n`, soft and hard (`ulimit -n n`).
    pub fn open_file_limit(mut self, n: u64) -> Run {
        self.nofile = Some(n);
        self
    }

    /// Runs under the torch environment's real `torchrun` with `nproc`
    /// processes on this machine (`--standalone`: a rendezvous on a free
    /// local port), plus `extra` launcher flags.
    pub fn torchrun(mut self, nproc: usize, extra: &[&str]) -> Run {
        let torchrun = torch_python().with_file_name("torchrun");
        let mut launcher = vec![
            torchrun.to_string_lossy().into_owned(),
            "--standalone".into(),
            "--nproc_per_node".into(),
            nproc.to_string(),
        ];
        launcher.extend(extra.iter().map(|s| s.to_string()));
        launcher.push("--no-python".into());
        self.launcher = Some(launcher);
        self
    }

    /// The command this run starts (trainbox, or the launcher of it).
    pub fn command_line(&self) -> Command {
        let mut cmd = match &self.launcher {
            Some(l) => {
                let mut cmd = Command::new(&l[0]);
                cmd.args(&l[1..]).arg(env!("CARGO_BIN_EXE_trainbox"));
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_trainbox")),
        };
        cmd.env("TRAINBOX_PLUGIN_DIR", plugin_dir());
        cmd.args(&self.args).current_dir(&self.dir);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Drops the environment variables set with `env`.
    pub fn clear_env(mut self) -> Run {
        self.envs.clear();
        self
    }

    /// Loads a built plugin.
    pub fn plugin(self, name: &str) -> Run {
        let path = plugin(name);
        self.arg("--plugin").arg(path.to_str().unwrap())
    }

    /// The output directory of a training run.
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    fn output(&self) -> Output {
        let mut cmd = self.command_line();
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            let lim = libc::rlimit {
                rlim_cur: n as libc::rlim_t,
                rlim_max: n as libc::rlim_t,
            };
            // SAFETY: setrlimit is async-signal-safe; it runs in the child
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd.output().expect("running trainbox")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self) -> Done {
        let out = self.output();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "trainbox {:?} failed with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.args,
            out.status
        );
        Done {
            stdout: stdout.into(),
            stderr: stderr.into(),
            out: self.out(),
        }
    }

    /// Runs a training that completes although a plugin faults: asserts
    /// exit status 1 and the closing warning naming the faulted plugin.
    pub fn completes_with_faults(&self, plugin: &str) -> Done {
        let out = self.output();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "trainbox {:?}: expected exit status 1\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.args
        );
        assert!(
            stderr.contains(&format!("training completed, but {plugin} faulted")),
            "{stderr}"
        );
        Done {
            stdout,
            stderr,
            out: self.out(),
        }
    }

    /// Runs and asserts success, for a run whose `--output_dir` is the fresh
    /// directory of another test name.
    pub fn ok_in(&self, out_test: &str) -> Done {
        let done = self.ok();
        Done {
            out: Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("spec")
                .join(out_test),
            ..done
        }
    }

    /// Runs and returns whatever happened: (success, stdout, stderr).
    pub fn outcome(&self) -> (bool, String, String) {
        let out = self.output();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Runs and asserts that an error stopped it (exit status 2); returns stderr.
    pub fn fails(&self) -> String {
        let out = self.output();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.code() == Some(2),
            "trainbox {:?} should have stopped with exit status 2, got {}\n--- stdout\n{}\n--- stderr\n{stderr}",
            self.args,
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }
}

/// What a finished run left.
pub struct Done {
    pub stdout: String,
    pub stderr: String,
    pub out: PathBuf,
}

impl Done {
    /// The recorder's trace.
    pub fn events(&self) -> Vec<Value> {
        read_jsonl(&self.out.join("plugins/recorder/events.jsonl"))
    }

    /// A `trainer_state.json` under the output directory (see [`read_state`]).
    pub fn state(&self, rel: &str) -> Value {
        read_state(&self.out.join(rel))
    }

    /// A `trainer_state.json` under the output directory, as trainbox's
    /// own parser reads it: `NaN` and `±Infinity` kept.
    pub fn state_json(&self, rel: &str) -> Json {
        read_pyjson(&self.out.join(rel))
    }

    /// The checkpoint folders, by step.
    pub fn checkpoints(&self) -> Vec<u64> {
        let mut steps: Vec<u64> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("checkpoint-")?
                    .parse()
                    .ok()
            })
            .collect();
        steps.sort();
        steps
    }

    /// The checkpoints are exactly `steps`, each whole.
    pub fn assert_checkpoints(&self, steps: &[u64]) {
        assert_eq!(self.checkpoints(), steps);
        for step in steps {
            assert_checkpoint_whole(&self.out.join(format!("checkpoint-{step}")));
        }
    }
}

/// `ckpt` holds the model, the trainer state and the optimizer.
pub fn assert_checkpoint_whole(ckpt: &Path) {
    for file in [
        "model.safetensors",
        "trainer_state.json",
        "optimizer.safetensors",
    ] {
        assert!(
            ckpt.join(file).is_file(),
            "{} is incomplete",
            ckpt.display()
        );
    }
}

/// A JSON file as Python's `json` writes it (`trainer_state.json`), read
/// with trainbox's own parser.
pub fn read_pyjson(path: &Path) -> Json {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Json::parse(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A `trainer_state.json` as a serde value: read with trainbox's own parser
/// of Python's JSON, ints kept apart from floats; `NaN` and `±Infinity`,
/// which a serde number cannot hold, become `null` (use [`read_pyjson`] to
/// see them).
pub fn read_state(path: &Path) -> Value {
    to_serde(&read_pyjson(path))
}

fn to_serde(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Int(i) => Value::from(*i),
        Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Json::Str(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_serde).collect()),
        Json::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), to_serde(v))).collect())
        }
    }
}

pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// Prints expected and actual side by side from the first difference.
pub fn assert_same_lines(expected: &[String], actual: &[String]) {
    if expected == actual {
        return;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e != a)
        .unwrap_or(expected.len().min(actual.len()));
    let from = first.saturating_sub(3);
    let mut msg = format!(
        "traces differ at line {first} (expected {} lines, got {})\n",
        expected.len(),
        actual.len()
    );
    for i in from..(first + 8).min(expected.len().max(actual.len())) {
        let e = expected.get(i).map(String::as_str).unwrap_or("-");
        let a = actual.get(i).map(String::as_str).unwrap_or("-");
        let mark = if e == a { " " } else { "!" };
        msg.push_str(&format!(
            "{mark} {i:4} expected {e}\n{mark}      got      {a}\n"
        ));
    }
    panic!("{msg}");
}

/// A tiny HTTP server on 127.0.0.1 that answers every request with
/// `200 {"ok": true}` and records `(method, path, body)`.
pub struct HttpRecorder {
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HttpRecorder {
    pub fn start(port: u16) -> HttpRecorder {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("binding the test HTTP server");
        listener.set_nonblocking(true).unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, flag) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let mut parts = first.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                log.lock()
                    .unwrap()
                    .push((method, path, String::from_utf8_lossy(&body).into()));
                let reply = b"{\"ok\": true}";
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    reply.len()
                );
                let _ = stream.write_all(reply);
            }
        });
        HttpRecorder { requests, stop }
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `$TRAINBOX_CACHE`, default `~/.cache/trainbox`: where `make` keeps the
/// Python environments.
fn cache_dir() -> PathBuf {
    std::env::var_os("TRAINBOX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var("HOME").unwrap()).join(".cache/trainbox"))
}

/// The Python of the torch environment (`make` exports `TRAINBOX_PYTHON`).
pub fn torch_python() -> PathBuf {
    std::env::var_os("TRAINBOX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("torch-env/bin/python3"))
}

/// Runs a Python snippet in the torch environment with `args` as
/// `argv[1..]`; returns its stdout.
pub fn run_torch_python(script: &str, args: &[&Path]) -> String {
    let py = torch_python();
    let out = std::process::Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; run `make test-env`", py.display()));
    assert!(
        out.status.success(),
        "python failed (is transformers installed? run `make test-env`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A program of the readers environment (`make test-env`): `python3`,
/// `dvc`, `wandb`, `mlflow`. Found next to `$TRAINBOX_READERS_PYTHON`, else
/// in `$TRAINBOX_CACHE` (default `~/.cache/trainbox`)`/readers-env/bin`.
pub fn readers_bin(name: &str) -> PathBuf {
    let python = std::env::var_os("TRAINBOX_READERS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("readers-env/bin/python3"));
    let path = python.with_file_name(name);
    assert!(
        path.is_file(),
        "{} not found: run `make test-env` (or set TRAINBOX_READERS_PYTHON)",
        path.display()
    );
    path
}

/// The Python of the readers environment.
pub fn readers_python() -> PathBuf {
    readers_bin("python3")
}
