//! impostor (test plugin): calls itself by another plugin's name, to take
//! what that name is given. The name it declares is not a constant: it is
//! read from [`NAME_SLOT`], which a test sets in a copy of the built file
//! (the bytes after `trainbox-impostor-name:`, up to the first NUL), so
//! that one build poses as `granted`, `recorder`, `recorder-2`, … It asks
//! for no capability, and at train begin and train end it tries everything
//! the real plugin of that name might hold (`granted`'s `/data` and `/out`
//! and `TRAINBOX_TEST_SECRET`, a `recorder`'s `events.jsonl` in its
//! directory) and writes what it got to `impostor.txt` in its directory.

use std::cell::RefCell;
use trainbox_sdk::__private as p;
use trainbox_sdk::{Callback, Context, Entry, Event, RunOutcome, TrainerControl, TrainingArgs};

/// What comes before the name in the file.
const PREFIX: &[u8] = b"trainbox-impostor-name:";
const SLOT_LEN: usize = PREFIX.len() + 64;

/// The name it declares, as the prefix, the name and NULs.
static NAME_SLOT: [u8; SLOT_LEN] = slot(b"impostor");

const fn slot(name: &[u8]) -> [u8; SLOT_LEN] {
    let mut out = [0u8; SLOT_LEN];
    let mut i = 0;
    while i < PREFIX.len() {
        out[i] = PREFIX[i];
        i += 1;
    }
    let mut j = 0;
    while j < name.len() {
        out[PREFIX.len() + j] = name[j];
        j += 1;
    }
    out
}

/// The declared name, read from the file's bytes (not folded at build time).
fn declared_name() -> String {
    let slot: &[u8; SLOT_LEN] = std::hint::black_box(&NAME_SLOT);
    let tail = &slot[PREFIX.len()..];
    let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
    String::from_utf8_lossy(&tail[..end]).into_owned()
}

#[derive(Default)]
struct Impostor {
    seen: Vec<String>,
}

impl Impostor {
    fn look(&mut self, when: &str) {
        let mut seen = vec![format!("{when}: name {}", declared_name())];
        let read = |path: &str| match std::fs::read_to_string(path) {
            Ok(text) => format!("GOT {} bytes", text.len()),
            Err(e) => format!("denied ({e})"),
        };
        seen.push(format!("read /data/input.txt: {}", read("/data/input.txt")));
        seen.push(format!(
            "write /out/loot.txt: {}",
            match std::fs::write("/out/loot.txt", "taken") {
                Ok(()) => "GOT".to_string(),
                Err(e) => format!("denied ({e})"),
            }
        ));
        seen.push(format!(
            "env TRAINBOX_TEST_SECRET: {}",
            std::env::var("TRAINBOX_TEST_SECRET")
                .map(|v| format!("GOT {v}"))
                .unwrap_or_else(|_| "unset".into())
        ));
        seen.push(format!("read events.jsonl: {}", read("events.jsonl")));
        let mut files: Vec<String> = std::fs::read_dir(".")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "impostor.txt")
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        seen.push(format!("files in .: [{}]", files.join(", ")));
        self.seen.extend(seen);
        let _ = std::fs::write("impostor.txt", self.seen.join("\n") + "\n");
    }
}

impl Callback for Impostor {
    /// Only the SDK's fallback: `describe` below declares [`declared_name`].
    const NAME: &'static str = "impostor";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::TrainEnd];

    fn on_train_begin(&mut self, _cx: &mut Context) {
        self.look("train begin");
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        self.look("train end");
    }
}

thread_local! {
    static SLOT: RefCell<p::Slot<Impostor>> = const { RefCell::new(p::Slot::new()) };
}

/// `export_plugin!`'s exports, but for the name in `describe`.
struct Export;

impl p::Guest for Export {
    fn describe() -> p::PluginInfo {
        p::PluginInfo {
            name: declared_name(),
            ..p::describe::<Impostor>()
        }
    }
    fn configure(args: TrainingArgs, config: Vec<(String, String)>) -> Result<(), String> {
        SLOT.with(|s| p::configure::<Impostor>(s, args, config))
    }
    fn on_event(
        event: Event,
        state: trainbox_sdk::TrainerState,
        control: TrainerControl,
        payload: Vec<Entry>,
    ) -> TrainerControl {
        SLOT.with(|s| p::on_event::<Impostor>(s, event, state, control, payload))
    }
    fn save_state() -> String {
        SLOT.with(p::save_state::<Impostor>)
    }
    fn load_state(state: String) -> Result<(), String> {
        SLOT.with(|s| p::load_state::<Impostor>(s, state))
    }
    fn finish(outcome: RunOutcome) {
        SLOT.with(|s| p::finish::<Impostor>(s, outcome))
    }
}

trainbox_sdk::wit::__export_callback_world!(Export with_types_in trainbox_sdk::wit);
