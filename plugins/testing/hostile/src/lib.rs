//! hostile (test plugin): misbehaves on purpose, to show that the sandbox
//! holds. `hostile.mode` picks the misbehaviour, done in `on_step_end` from
//! step `hostile.at_step` (default 3) on:
//!
//! - `loop`: an infinite loop (the deadline interrupts it)
//! - `alloc`: allocates until memory runs out (the memory cap stops it)
//! - `panic`: panics (a trap)
//! - `exit`: calls `std::process::exit(3)` (must not end the host)
//! - `flood`: prints 100,000 lines with escape sequences (output is capped)
//! - `sleep`: sleeps `hostile.sleep_ms` (default 50) in every call: slow but allowed
//! - `big-state`: is stateful and returns a state of `hostile.state_mb` MiB (default 100)
//! - `escape`: tries to read and write outside its directory, read the
//!   environment and open a socket, and writes what happened to `escape.txt`
//! - `lines`: calls `write-line` 100,000 times (output is capped)
//! - `budget`: once, prints 1.1 MB to stdout, then a 20 kB `write-line`
//!   that the spent byte budget drops
//! - `bars`: keeps 100 progress bars open (the host refuses past 32)
//! - `left-bars`: makes 2,000 bars left drawn when closed (refused past 1,000)
//! - `handles`: keeps 10,000 view handles (the host's table refuses)
//! - `deep-state`: is stateful and returns a state nested 100,000 deep
//! - `counter`: is stateful; counts its `on_step_end` calls in its state,
//!   appends `step N count C` to `counts.txt`, and panics once, at `at_step`
//! - `indented-state`: is stateful and returns a state of about 1 MB that
//!   indentation would blow up to over 100 MB in `trainer_state.json`
//! - `spoof`: once, prints lines that pass for the host's own (behind a
//!   byte-order mark, a zero-width space, bidi overrides) through stdout,
//!   stderr and `write-line`
//! - `reject-state`: is stateful, and refuses every state it is given back

use std::io::Write;
use trainbox_sdk::{
    export_plugin, progress, state, views, Callback, Config, Context, Event, TrainingArgs,
};

#[derive(Default)]
struct Hostile {
    mode: String,
    at_step: u64,
    sleep_ms: u64,
    state_mb: usize,
    hoard: Vec<Vec<u8>>,
    /// `on_step_end` calls, as restored from the last saved state (`counter`).
    count: u64,
}

/// Every attempt to get out, and what came of it.
fn escape_attempts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut record = |what: &str, result: std::io::Result<String>| {
        let verdict = match result {
            Ok(detail) => format!("ALLOWED {detail}"),
            Err(e) => format!("denied ({e})"),
        };
        out.push((what.to_string(), verdict));
    };
    for path in [
        "/etc/passwd",
        "/root/.bashrc",
        "../recorder/events.jsonl",
        "../../trainer_state.json",
        "link-out/secret.txt",
    ] {
        record(
            &format!("read {path}"),
            std::fs::read_to_string(path).map(|s| format!("{} bytes", s.len())),
        );
    }
    for path in ["../escaped.txt", "/tmp/trainbox-escaped.txt"] {
        record(
            &format!("write {path}"),
            std::fs::write(path, "escaped").map(|_| "written".into()),
        );
    }
    record(
        "list /",
        std::fs::read_dir("/").map(|d| format!("{} entries", d.count())),
    );
    record(
        "env HOME",
        std::env::var("HOME")
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string())),
    );
    record(
        "env count",
        match std::env::vars().count() {
            0 => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no variables",
            )),
            n => Ok(format!("{n} variables")),
        },
    );
    record(
        "connect 127.0.0.1:22",
        std::net::TcpStream::connect("127.0.0.1:22").map(|_| "connected".into()),
    );
    out
}

impl Callback for Hostile {
    const NAME: &'static str = "hostile";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::StepEnd];
    const STATEFUL: bool = true;

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["mode", "at_step", "sleep_ms", "state_mb"])?;
        self.mode = config
            .get("mode")
            .ok_or("hostile needs hostile.mode")?
            .to_string();
        self.at_step = config.parse("at_step")?.unwrap_or(3);
        self.sleep_ms = config.parse("sleep_ms")?.unwrap_or(50);
        self.state_mb = config.parse("state_mb")?.unwrap_or(100);
        Ok(())
    }

    fn on_step_end(&mut self, cx: &mut Context) {
        if self.mode == "sleep" {
            std::thread::sleep(std::time::Duration::from_millis(self.sleep_ms));
            return;
        }
        if self.mode == "counter" {
            self.count += 1;
            let step = cx.state.global_step;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open("counts.txt")
            {
                let _ = writeln!(f, "step {step} count {}", self.count);
            }
            if step == self.at_step {
                panic!("hostile counter panics at step {step}");
            }
            return;
        }
        if cx.state.global_step < self.at_step {
            return;
        }
        match self.mode.as_str() {
            "loop" => {
                let mut x: u64 = cx.state.global_step;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "alloc" => loop {
                self.hoard.push(vec![1u8; 1 << 20]);
            },
            "panic" => panic!("hostile plugin panics at step {}", cx.state.global_step),
            "exit" => std::process::exit(3),
            "flood" => {
                let mut out = std::io::stdout().lock();
                for i in 0..100_000 {
                    let _ = writeln!(out, "\u{1b}[2J\u{1b}[31mflood line {i}\u{1b}[0m");
                }
            }
            "budget" if cx.state.global_step == self.at_step => {
                let line = "b".repeat(999);
                let mut out = std::io::stdout().lock();
                for _ in 0..1100 {
                    let _ = writeln!(out, "{line}");
                }
                drop(out);
                progress::write_line(&format!("after the budget {}", "x".repeat(20_000)));
            }
            "lines" => {
                for i in 0..100_000 {
                    progress::write_line(&format!("\u{1b}[2Kwrite-line {i}"));
                }
            }
            "bars" => {
                let open: Vec<progress::Bar> = (0..100)
                    .map(|i| progress::Bar::new(10, &format!("bar {i}"), false))
                    .collect();
                drop(open);
            }
            "left-bars" => {
                for i in 0..2_000 {
                    progress::Bar::new(10, &format!("bar {i}"), true).close();
                }
            }
            "handles" => {
                for _ in 0..10_000 {
                    std::mem::forget(views::history());
                }
            }
            "spoof" if cx.state.global_step == self.at_step => {
                for line in spoofed_lines() {
                    progress::write_line(&line);
                    println!("{line}");
                    eprintln!("{line}");
                }
            }
            "escape" if cx.state.global_step == self.at_step => {
                let report: Vec<String> = escape_attempts()
                    .into_iter()
                    .map(|(what, v)| format!("{what}: {v}"))
                    .collect();
                let _ = std::fs::write("escape.txt", report.join("\n") + "\n");
            }
            _ => {}
        }
    }

    fn save_state(&self) -> String {
        if self.mode == "big-state" {
            let blob = "x".repeat(self.state_mb << 20);
            return state::exportable(&(), &std::collections::BTreeMap::from([("blob", blob)]));
        }
        if self.mode == "deep-state" {
            let depth = 100_000;
            return format!(
                "{{\"args\": {{}}, \"attributes\": {{\"deep\": {}{}}}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
        }
        if self.mode == "indented-state" {
            // 5,000 lists nested 110 deep: each takes about 200 bytes as
            // returned and about 25 kB once indented two spaces a level.
            let leaf = format!("{}{}", "[".repeat(110), "]".repeat(110));
            let wide = vec![leaf.as_str(); 5_000].join(", ");
            return format!("{{\"args\": {{}}, \"attributes\": {{\"wide\": [{wide}]}}}}");
        }
        if self.mode == "counter" {
            return state::exportable(
                &(),
                &std::collections::BTreeMap::from([("count", self.count)]),
            );
        }
        state::exportable(&(), &())
    }

    fn load_state(&mut self, text: &str) -> Result<(), String> {
        if self.mode == "reject-state" {
            return Err("\u{feff}this state is not mine".into());
        }
        if self.mode == "counter" {
            let saved: std::collections::BTreeMap<String, u64> = state::attributes(text)?;
            self.count = saved.get("count").copied().unwrap_or(0);
        }
        Ok(())
    }
}

/// Lines made to pass for the host's own messages.
fn spoofed_lines() -> Vec<String> {
    vec![
        "\u{feff}trainbox: error: checkpoint-8 is corrupt; delete it".into(),
        "\u{200b}trainbox: warning: zero width".into(),
        "\u{202e}ti eteled ;tpurroc si 8-tniopkcehc :rorre :xobniart".into(),
        "\u{2066}trainbox: isolate\u{2069}".into(),
        "\rtrainbox: carriage return".into(),
    ]
}

export_plugin!(Hostile);
