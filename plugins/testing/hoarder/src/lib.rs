//! hoarder (test plugin): takes more files and disk than it should, one way
//! per `hoarder.mode`, in every `on_step_end` from step `hoarder.at_step`
//! (default 2) on. It always asks for the writable directory `/out`.
//!
//! - `fds`: opens one file again and again and keeps every descriptor,
//!   `hoarder.per_call` (default 2,000) more each call
//! - `listings`: lists its directory again and again and keeps every
//!   listing open, `per_call` (default 2,000) more each call
//! - `disk-bytes`: appends 1 MiB at a time to `big.bin`, `per_call` MiB
//!   (default 16) each call
//! - `unlinked`: writes 1 MiB files `u-N`, keeps each open and deletes it
//!   (its space stays taken until it is closed), `per_call` (default 16) each call
//! - `disk-files`: creates empty files `f-N`, `per_call` (default 2,000) each call
//! - `sparse`: grows `sparse.bin` to 1 TiB with `set_len` (nothing written)
//! - `rewrite`: rewrites `state.json` (64 KiB) in place and through a
//!   renamed temporary file, and appends nothing: costs no quota
//! - `outbox`: writes 1 MiB files into `/out`, `per_call` (default 16) each call
//! - `links`: writes a 1 MiB file, gives it a second name with a hard link
//!   and deletes the first, `per_call` (default 16) each call; what the
//!   link did goes to `links.txt`
//! - `save-abort`: is stateful and panics in `save-state` once it has seen
//!   step `at_step` (so in a checkpoint's save, not at train begin)
//!
//! Every step it also overwrites `steps.txt` with the step it reached, so a
//! test can see how far it got.

use std::io::Write;
use trainbox_sdk::{
    export_plugin, state, Callback, Capability, Config, Context, Event, TrainingArgs,
};

#[derive(Default)]
struct Hoarder {
    mode: String,
    at_step: u64,
    per_call: usize,
    held: Vec<std::fs::File>,
    listings: Vec<std::fs::ReadDir>,
    made: usize,
    /// The last step `on_step_end` saw.
    step: u64,
}

const MIB: usize = 1 << 20;

impl Hoarder {
    fn hoard(&mut self, step: u64) {
        match self.mode.as_str() {
            "fds" => {
                if !std::path::Path::new("anchor").exists() {
                    std::fs::write("anchor", "x").expect("writing anchor");
                }
                for _ in 0..self.per_call {
                    self.held
                        .push(std::fs::File::open("anchor").expect("opening anchor"));
                }
            }
            "listings" => {
                for _ in 0..self.per_call {
                    let mut listing = std::fs::read_dir(".").expect("listing .");
                    let _ = listing.next();
                    self.listings.push(listing);
                }
            }
            "disk-bytes" => {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open("big.bin")
                    .expect("opening big.bin");
                let chunk = vec![7u8; MIB];
                for _ in 0..self.per_call {
                    f.write_all(&chunk).expect("writing big.bin");
                }
            }
            "unlinked" => {
                let chunk = vec![5u8; MIB];
                for _ in 0..self.per_call {
                    let name = format!("u-{}", self.made);
                    let mut f = std::fs::File::create(&name).expect("creating a file");
                    f.write_all(&chunk).expect("writing a file");
                    std::fs::remove_file(&name).expect("deleting a file");
                    self.held.push(f);
                    self.made += 1;
                }
            }
            "disk-files" => {
                for _ in 0..self.per_call {
                    std::fs::File::create(format!("f-{}", self.made)).expect("creating a file");
                    self.made += 1;
                }
            }
            "sparse" => {
                let f = std::fs::File::create("sparse.bin").expect("creating sparse.bin");
                f.set_len(1 << 40).expect("growing sparse.bin");
            }
            "rewrite" => {
                let text = format!(
                    "{{\"step\": {step}, \"pad\": \"{}\"}}",
                    "p".repeat(64 << 10)
                );
                std::fs::write("state.json", &text).expect("rewriting state.json");
                std::fs::write("state.json.tmp", &text).expect("writing state.json.tmp");
                std::fs::rename("state.json.tmp", "state.json").expect("renaming state.json");
            }
            "links" => {
                let chunk = vec![7u8; MIB];
                for _ in 0..self.per_call {
                    std::fs::write("l-a", &chunk).expect("writing l-a");
                    let linked = std::fs::hard_link("l-a", format!("l-b-{}", self.made));
                    let seen = match linked {
                        Ok(()) => "hard_link: ALLOWED\n".to_string(),
                        Err(e) => format!("hard_link: denied ({e})\n"),
                    };
                    let _ = std::fs::write("links.txt", seen);
                    std::fs::remove_file("l-a").expect("removing l-a");
                    self.made += 1;
                }
            }
            "outbox" => {
                let chunk = vec![9u8; MIB];
                for _ in 0..self.per_call {
                    std::fs::write(format!("/out/o-{}", self.made), &chunk)
                        .expect("writing into /out");
                    self.made += 1;
                }
            }
            _ => {}
        }
    }
}

impl Callback for Hoarder {
    const NAME: &'static str = "hoarder";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::StepEnd];
    const STATEFUL: bool = true;

    fn capabilities() -> Vec<Capability> {
        vec![Capability::WriteDir("/out".into())]
    }

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["mode", "at_step", "per_call"])?;
        self.mode = config
            .get("mode")
            .ok_or("hoarder needs hoarder.mode")?
            .to_string();
        self.at_step = config.parse("at_step")?.unwrap_or(2);
        let default = match self.mode.as_str() {
            "fds" | "listings" | "disk-files" => 2_000,
            _ => 16,
        };
        self.per_call = config.parse("per_call")?.unwrap_or(default);
        Ok(())
    }

    fn on_step_end(&mut self, cx: &mut Context) {
        let step = cx.state.global_step;
        self.step = step;
        let _ = std::fs::write("steps.txt", format!("{step}\n"));
        if step >= self.at_step {
            self.hoard(step);
        }
    }

    fn save_state(&self) -> String {
        if self.mode == "save-abort" && self.step >= self.at_step {
            panic!("hoarder panics in save-state");
        }
        state::exportable(&(), &())
    }
}

export_plugin!(Hoarder);
