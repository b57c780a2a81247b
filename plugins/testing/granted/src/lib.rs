//! granted (test plugin): asks for a read-only directory (`/data`), a
//! writable one (`/out`) and the variable `TRAINBOX_TEST_SECRET`, and uses
//! them at train begin: copies `/data/input.txt` to `/out/copy.txt`, tries
//! to write into `/data` (must fail), and writes what it saw to `granted.txt`
//! in its own directory.

use trainbox_sdk::{export_plugin, Callback, Capability, Context, Event};

#[derive(Default)]
struct Granted;

impl Callback for Granted {
    const NAME: &'static str = "granted";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin];

    fn capabilities() -> Vec<Capability> {
        vec![
            Capability::ReadDir("/data".into()),
            Capability::WriteDir("/out".into()),
            Capability::Env("TRAINBOX_TEST_SECRET".into()),
        ]
    }

    fn on_train_begin(&mut self, _cx: &mut Context) {
        let mut seen = Vec::new();
        match std::fs::read_to_string("/data/input.txt") {
            Ok(text) => {
                seen.push(format!("read /data/input.txt: {}", text.trim()));
                let copied = std::fs::write("/out/copy.txt", &text).map(|_| "ok".to_string());
                seen.push(format!(
                    "write /out/copy.txt: {}",
                    copied.unwrap_or_else(|e| e.to_string())
                ));
            }
            Err(e) => seen.push(format!("read /data/input.txt: failed ({e})")),
        }
        let write_ro = std::fs::write("/data/tampered.txt", "x");
        seen.push(format!(
            "write /data/tampered.txt: {}",
            if write_ro.is_ok() {
                "ALLOWED"
            } else {
                "denied"
            }
        ));
        seen.push(format!(
            "env TRAINBOX_TEST_SECRET: {}",
            std::env::var("TRAINBOX_TEST_SECRET").unwrap_or_default()
        ));
        seen.push(format!(
            "env HOME: {}",
            std::env::var("HOME").unwrap_or_else(|_| "unset".into())
        ));
        let _ = std::fs::write("granted.txt", seen.join("\n") + "\n");
    }
}

export_plugin!(Granted);
