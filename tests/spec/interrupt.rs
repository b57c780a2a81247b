//! A stopped run loses nothing: SIGINT and SIGTERM sent to the real binary
//! mid-run stop it after the current step, every plugin hears
//! `finish(aborted)`, the message names the last checkpoint and the command
//! that resumes, and that command finishes the run exactly as a run in one
//! go; a second signal exits at once; `--enable_jit_checkpoint` saves on
//! SIGTERM. And one run per `output_dir`: a run from scratch over another
//! run's checkpoints is refused with the resume command, and a second run on
//! a folder in use is refused by its lock, which a killed run releases.

use crate::util::{fresh_dir, plugin, read_jsonl, Done, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Training flags of the runs here: 60 steps, each slowed to 25 ms by the
/// hostile plugin's `sleep` mode, so that a signal lands mid-run.
const FLAGS: &[&str] = &[
    "--max_steps",
    "60",
    "--learning_rate",
    "0.05",
    "--logging_steps",
    "5",
    "--plugin_config",
    "hostile.mode=sleep",
    "--plugin_config",
    "hostile.sleep_ms=25",
];

/// The arguments of [`Run::regression`] in `dir`, the hostile plugin, `FLAGS`
/// and `extra`.
pub(crate) fn argv(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = ["train", "--task", "regression", "--disable_tqdm"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (flag, value) in [
        ("--output_dir", dir.join("out")),
        ("--plugin", plugin("recorder")),
        ("--plugin", plugin("hostile")),
    ] {
        argv.push(flag.into());
        argv.push(value.to_str().unwrap().into());
    }
    argv.extend(FLAGS.iter().chain(extra).map(|s| s.to_string()));
    argv
}

/// The same run as [`argv`], through the test harness (in one go).
pub(crate) fn whole(test: &str, extra: &[&str]) -> Done {
    Run::regression(test)
        .plugin("hostile")
        .args(FLAGS)
        .args(extra)
        .ok()
}

/// A `trainbox` process running in the background, its output in files.
pub(crate) struct Spawned {
    pub dir: PathBuf,
    child: Child,
}

impl Spawned {
    /// Starts `trainbox` with `args` in `dir`, with `envs`.
    pub fn start(dir: &Path, args: &[String], envs: &[(&str, &str)]) -> Spawned {
        let child = crate::util::trainbox()
            .args(args)
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdout(std::fs::File::create(dir.join("stdout.txt")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting trainbox");
        Spawned {
            dir: dir.to_path_buf(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the recorder's trace shows `on_step_end` at `step` or later.
    pub fn wait_for_step(&mut self, step: u64) {
        let trace = self.dir.join("out/plugins/recorder/events.jsonl");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&trace).unwrap_or_default();
            let reached = text.lines().any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|e| {
                    e["event"] == "on_step_end" && e["global_step"].as_u64() >= Some(step)
                })
            });
            if reached {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "trainbox ended ({status}) before step {step}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no step {step} in 120 s:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`INT`, `TERM`, `KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {}", self.pid());
    }

    /// Waits for the process to end, at most `secs` seconds.
    pub fn wait(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("trainbox did not end within {secs} s:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The step a stopped run names in `interrupted by SIG… at step N of M`.
fn stopped_at(stderr: &str, signal: &str) -> u64 {
    let marker = format!("interrupted by {signal} at step ");
    let at = stderr
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{stderr}"));
    stderr[at + marker.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The resume command the message prints (the line after "to resume").
fn resume_line(stderr: &str) -> String {
    let mut lines = stderr.lines();
    lines
        .find(|l| l.contains("to resume from it, run:"))
        .unwrap_or_else(|| panic!("no resume command in:\n{stderr}"));
    lines.next().unwrap().trim().to_string()
}

/// Runs a shell command line in `dir`; returns (success, stderr).
fn shell(dir: &Path, line: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A state without the fields that measure time.
fn without_timing(mut state: Value) -> Value {
    for entry in state["log_history"].as_array_mut().unwrap() {
        let obj = entry.as_object_mut().unwrap();
        obj.retain(|k, _| !k.ends_with("_runtime") && !k.ends_with("_per_second"));
    }
    state
}

fn outcome(out: &Path) -> String {
    std::fs::read_to_string(out.join("plugins/recorder/outcome.txt"))
        .unwrap_or_else(|e| panic!("no outcome.txt: finish was not called ({e})"))
}

/// The same files, byte for byte, in two folders.
fn assert_same_files(a: &Path, b: &Path, files: &[&str]) {
    for file in files {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs between {a:?} and {b:?}");
    }
}

#[test]
fn sigint_stops_after_the_step_and_the_printed_command_resumes_to_the_same_result() {
    let extra = ["--save_steps", "10"];
    let dir = fresh_dir("interrupt_sigint");
    let mut run = Spawned::start(&dir, &argv(&dir, &extra), &[]);
    run.wait_for_step(12);
    run.signal("INT");
    let status = run.wait(60);
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let step = stopped_at(&stderr, "SIGINT");
    assert!((12..60).contains(&step), "{stderr}");

    // Stopped after the current step: no step began after it.
    let events = read_jsonl(&run.out().join("plugins/recorder/events.jsonl"));
    let last_end = events
        .iter()
        .rev()
        .find(|e| e["event"] == "on_step_end")
        .unwrap();
    assert_eq!(last_end["global_step"], step);
    assert!(!events
        .iter()
        .any(|e| e["event"] == "on_step_begin" && e["global_step"] == step));
    assert!(!events.iter().any(|e| e["event"] == "on_train_end"));
    assert_eq!(
        outcome(&run.out()),
        format!("aborted: interrupted by SIGINT at step {step} of 60\n")
    );

    // The message names the last checkpoint and the command that resumes.
    let last = step / 10 * 10;
    let ckpt = run.out().join(format!("checkpoint-{last}"));
    assert!(
        stderr.contains(&format!("the last checkpoint is {}", ckpt.display())),
        "{stderr}"
    );
    let line = resume_line(&stderr);
    assert!(
        line.ends_with(&format!("--resume_from_checkpoint {}", ckpt.display())),
        "{line}"
    );

    let (ok, resumed_err) = shell(&dir, &line);
    assert!(ok, "the resume command failed:\n{resumed_err}");
    assert!(
        resumed_err.contains(&format!("resuming from {}", ckpt.display())),
        "{resumed_err}"
    );
    assert_eq!(outcome(&run.out()), "completed\n");

    let whole = whole("interrupt_sigint_whole", &extra);
    let (a, b) = (
        whole.out.join("checkpoint-60"),
        run.out().join("checkpoint-60"),
    );
    assert_same_files(&a, &b, &["model.safetensors", "optimizer.safetensors"]);
    let state =
        |dir: &Path| without_timing(crate::util::read_state(&dir.join("trainer_state.json")));
    assert_eq!(state(&a), state(&b), "trainer_state.json of checkpoint-60");
}

#[test]
fn a_second_sigint_exits_at_once() {
    // Each step sleeps 2 s in the hostile plugin (deadline raised to 6 s):
    // the first SIGINT would wait for the step to end.
    let dir = fresh_dir("interrupt_twice");
    std::fs::write(
        dir.join("slow.toml"),
        "[plugins.hostile]\ndeadline_ms = 6000\n",
    )
    .unwrap();
    let mut args = argv(&dir, &["--config", "slow.toml"]);
    args.extend(["--plugin_config".into(), "hostile.sleep_ms=2000".into()]);
    let mut run = Spawned::start(&dir, &args, &[]);
    run.wait_for_step(1);
    run.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    run.signal("INT");
    let status = run.wait(30);
    let took = second.elapsed();
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(
        stderr.contains("SIGINT: stopping after the current step"),
        "{stderr}"
    );
    assert!(
        stderr.contains("second SIGINT: exiting at once"),
        "{stderr}"
    );
}

#[test]
fn sigterm_with_enable_jit_checkpoint_saves_at_the_step_it_stopped() {
    // No checkpoint by schedule before the last step: the one SIGTERM saves.
    let extra = ["--save_steps", "60", "--enable_jit_checkpoint"];
    let dir = fresh_dir("interrupt_jit");
    let mut run = Spawned::start(&dir, &argv(&dir, &extra), &[]);
    run.wait_for_step(5);
    run.signal("TERM");
    let status = run.wait(60);
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let step = stopped_at(&stderr, "SIGTERM");
    assert!(step < 60, "{stderr}");
    let ckpt = run.out().join(format!("checkpoint-{step}"));
    let state = crate::util::read_state(&ckpt.join("trainer_state.json"));
    assert_eq!(state["global_step"], step);
    assert!(
        stderr.contains("saved on SIGTERM (enable_jit_checkpoint)"),
        "{stderr}"
    );
    assert_eq!(
        outcome(&run.out()),
        format!("aborted: interrupted by SIGTERM at step {step} of 60\n")
    );
    // It resumes to what a run in one go ends with.
    let (ok, resumed_err) = shell(&dir, &resume_line(&stderr));
    assert!(ok, "{resumed_err}");
    let whole = whole("interrupt_jit_whole", &extra);
    let (a, b) = (
        whole.out.join("checkpoint-60"),
        run.out().join("checkpoint-60"),
    );
    assert_same_files(&a, &b, &["model.safetensors", "optimizer.safetensors"]);
    // `train_loss` of a resumed call averages the steps it holds the loss
    // of (trainer/resume.rs), so the summary's differs; the rest is equal.
    let state = |dir: &Path| {
        let mut state = without_timing(crate::util::read_state(&dir.join("trainer_state.json")));
        let history = state["log_history"].as_array_mut().unwrap();
        let summary = history.last_mut().unwrap().as_object_mut().unwrap();
        summary.remove("train_loss");
        state
    };
    assert_eq!(state(&whole.out), state(&run.out()));
}

#[test]
fn sigterm_without_jit_checkpoint_stops_and_says_nothing_was_saved() {
    let dir = fresh_dir("interrupt_term");
    let mut run = Spawned::start(&dir, &argv(&dir, &["--save_steps", "1000"]), &[]);
    run.wait_for_step(3);
    run.signal("TERM");
    let status = run.wait(60);
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("no checkpoint was saved before step"),
        "{stderr}"
    );
    assert!(stderr.contains("--enable_jit_checkpoint"), "{stderr}");
    assert!(outcome(&run.out()).starts_with("aborted: interrupted by SIGTERM"));
    let checkpoints = std::fs::read_dir(run.out())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
        .count();
    assert_eq!(checkpoints, 0);
}

#[test]
fn a_run_from_scratch_over_another_runs_checkpoints_is_refused_with_the_resume_command() {
    let run = Run::regression("interrupt_refuse").args(&["--save_steps", "8"]);
    let first = run.ok();
    let trace = first.events().len();
    let err = run.fails();
    let last = first.out.join("checkpoint-24");
    assert!(
        err.contains(&format!(
            "output_dir {} already holds checkpoints of an earlier run (the newest: {})",
            first.out.display(),
            last.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("--resume_from_checkpoint {}", last.display())),
        "{err}"
    );
    assert!(err.contains("pass another --output_dir"), "{err}");
    // Refused before anything was loaded or written.
    assert_eq!(first.events().len(), trace);
    // The suggested flag is accepted.
    let again = run.args(&["--resume_from_checkpoint", "true"]).ok();
    assert!(
        again.stderr.contains("nothing to train"),
        "{}",
        again.stderr
    );
}

#[test]
fn two_runs_cannot_write_one_output_dir_and_a_killed_run_releases_it() {
    let dir = fresh_dir("interrupt_lock");
    let args = argv(&dir, &["--save_steps", "1000"]);
    let mut first = Spawned::start(&dir, &args, &[]);
    first.wait_for_step(2);
    let second = crate::util::trainbox()
        .args(&args)
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("is in use by another run (pid {}: ", first.pid())),
        "{err}"
    );
    // SIGKILL: no handler runs, and the OS releases the lock.
    first.signal("KILL");
    first.wait(30);
    let third = crate::util::trainbox()
        .args(&args)
        .arg("--max_steps")
        .arg("2")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
}
