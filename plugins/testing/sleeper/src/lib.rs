//! sleeper (test plugin): waits inside a host call, where epoch
//! interruption cannot reach it, to show that every wait still ends at the
//! call's deadline.
//!
//! `sleeper.where` picks the export that waits:
//! - `on-event` (default): `on_step_end` at step `sleeper.at_step` (default
//!   3), once per instance
//! - `configure`, `load-state`, `finish`: every call
//! - `save-state`: every call (every checkpoint)
//! - `restart`: panics in `on_step_end` at `at_step`, then waits in the
//!   `configure` of the instance that restarts it
//! - `none`: never (to make checkpoints to resume from)
//!
//! `sleeper.how` picks the wait, `sleeper.ms` long (default: one that never
//! ends):
//! - `sleep` (default): `std::thread::sleep` (a monotonic-clock
//!   `subscribe-duration`, then `pollable.block`)
//! - `poll`: `wasi:io/poll.poll` on a list of two clock subscriptions
//! - `instant`: `subscribe-instant` at `ms` from now (else the last instant
//!   there is), then `pollable.block`
//! - `short-sleeps`: 1 ms sleeps in a loop until `ms` have passed
//! - `body`: writes to the body of an HTTP request that is never sent
//!   (no grant needed), so nobody reads it: once its buffer is full,
//!   `blocking-write-and-flush` waits for room that never comes
//! - `count`: no wait: counts loop iterations over 20 ticks of the 1 ms
//!   clock and notes `count N ns` (the finer timer a counting loop makes)
//!
//! Each `configure` appends `configure` to `calls.txt` in its directory,
//! each `on_step_end` that returns appends `step N`.

use std::io::Write;
use std::time::{Duration, Instant};
use trainbox_sdk::{export_plugin, state, Callback, Config, Context, Event, TrainingArgs};
use wasip2::clocks::monotonic_clock;

#[derive(Default)]
struct Sleeper {
    at: String,
    how: String,
    ms: Option<u64>,
    at_step: u64,
    waited: bool,
}

/// Appends a line to `calls.txt`.
fn note(line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open("calls.txt")
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Waits as `how` says, for `ms` (`None`: for ever).
fn wait(how: &str, ms: Option<u64>) {
    let ns = ms.map(|ms| ms.saturating_mul(1_000_000));
    match how {
        "poll" => {
            let d = ns.unwrap_or(u64::MAX);
            let first = monotonic_clock::subscribe_duration(d);
            let second = monotonic_clock::subscribe_duration(d.saturating_mul(2));
            wasip2::io::poll::poll(&[&first, &second]);
        }
        "instant" => {
            let when = ns.map_or(u64::MAX, |ns| monotonic_clock::now().saturating_add(ns));
            monotonic_clock::subscribe_instant(when).block();
        }
        "body" => {
            use wasip2::http::types::{Fields, OutgoingRequest};
            let request = OutgoingRequest::new(Fields::new());
            let body = request.body().expect("the request's body");
            let stream = body.write().expect("the body's stream");
            let chunk = [b'x'; 4096];
            while stream.blocking_write_and_flush(&chunk).is_ok() {}
        }
        "count" => {
            // Wait for a tick, then count iterations over 20 more.
            let tick = |from: u64| {
                let mut n = 0u64;
                while monotonic_clock::now() == from {
                    n = std::hint::black_box(n + 1);
                }
                (n, monotonic_clock::now())
            };
            let (_, mut at) = tick(monotonic_clock::now());
            let mut total = 0;
            for _ in 0..20 {
                let (n, next) = tick(at);
                total += n;
                at = next;
            }
            note(&format!("count {} ns", 20_000_000 / total.max(1)));
        }
        "short-sleeps" => {
            let start = Instant::now();
            while ms.is_none_or(|ms| start.elapsed() < Duration::from_millis(ms)) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        _ => match ms {
            Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
            None => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        },
    }
}

impl Sleeper {
    fn wait_in(&self, export: &str) {
        if self.at == export {
            wait(&self.how, self.ms);
        }
    }
}

impl Callback for Sleeper {
    const NAME: &'static str = "sleeper";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::StepEnd];
    const STATEFUL: bool = true;

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["where", "how", "ms", "at_step"])?;
        self.at = config.get("where").unwrap_or("on-event").to_string();
        let known = [
            "on-event",
            "configure",
            "save-state",
            "load-state",
            "finish",
            "restart",
            "none",
        ];
        if !known.contains(&self.at.as_str()) {
            return Err(format!("sleeper.where must be one of {known:?}"));
        }
        self.how = config.get("how").unwrap_or("sleep").to_string();
        let hows = ["sleep", "poll", "instant", "short-sleeps", "body", "count"];
        if !hows.contains(&self.how.as_str()) {
            return Err(format!("sleeper.how must be one of {hows:?}"));
        }
        self.ms = config.parse("ms")?;
        self.at_step = config.parse("at_step")?.unwrap_or(3);
        let restarted = std::fs::read_to_string("calls.txt").is_ok_and(|t| t.contains("configure"));
        note("configure");
        self.wait_in("configure");
        if self.at == "restart" && restarted {
            wait(&self.how, self.ms);
        }
        Ok(())
    }

    fn on_step_end(&mut self, cx: &mut Context) {
        let step = cx.state.global_step;
        if step == self.at_step && !self.waited {
            self.waited = true;
            if self.at == "restart" {
                panic!("sleeper panics at step {step}");
            }
            self.wait_in("on-event");
        }
        note(&format!("step {step}"));
    }

    fn save_state(&self) -> String {
        self.wait_in("save-state");
        state::exportable(&(), &())
    }

    fn load_state(&mut self, _state: &str) -> Result<(), String> {
        self.wait_in("load-state");
        Ok(())
    }

    fn finish(&mut self, _outcome: &trainbox_sdk::RunOutcome) {
        self.wait_in("finish");
    }
}

export_plugin!(Sleeper);
