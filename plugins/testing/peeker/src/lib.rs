//! peeker (test plugin): asks to read `/output` (the run's output_dir,
//! granted read-only) and, at each `save`, reads the checkpoint just
//! written and tries what a read grant on output_dir must not allow:
//! writing there, and reaching the plugin folders below it (the owner
//! record, another plugin's folder, by a plain path, by `..`, by a
//! listing and by `stat`). It writes one line per attempt to `peek.txt`
//! in its own directory: `<what>: ok <detail>` or `<what>: denied`.

use std::fmt::Write as _;
use trainbox_sdk::{export_plugin, Callback, Capability, Context, Event};

#[derive(Default)]
struct Peeker {
    report: String,
}

/// `ok <detail>`, `denied` (refused as not permitted), or the error's kind
/// (a path that is not there is not a refusal).
fn outcome<T>(r: std::io::Result<T>, detail: impl Fn(&T) -> String) -> String {
    match r {
        Ok(v) => format!("ok {}", detail(&v)),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => "denied".into(),
        Err(e) => format!("error {:?}", e.kind()),
    }
}

/// Makes the symbolic link `link` → `target` in the plugin's own folder
/// (the preopen `.`), through WASI itself: std has no stable call for it.
fn symlink_in_own_folder(target: &str, link: &str) {
    use wasip2::filesystem::preopens::get_directories;
    for (dir, guest) in get_directories() {
        if guest == "." {
            let _ = dir.symlink_at(target, link);
        }
    }
}

impl Peeker {
    fn line(&mut self, what: &str, result: String) {
        let _ = writeln!(self.report, "{what}: {result}");
    }
}

impl Callback for Peeker {
    const NAME: &'static str = "peeker";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::Save];

    fn capabilities() -> Vec<Capability> {
        vec![Capability::ReadDir("/output".into())]
    }

    fn on_save(&mut self, cx: &mut Context) {
        let ckpt = format!("/output/checkpoint-{}", cx.state.global_step);
        let mut names: Vec<String> = std::fs::read_dir(&ckpt)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        self.line(&format!("list {ckpt}"), names.join(","));
        for name in &names {
            let path = format!("{ckpt}/{name}");
            let read = std::fs::read(&path);
            self.line(
                &format!("read {path}"),
                outcome(read, |b| format!("{} bytes", b.len())),
            );
        }
        // Its own folder, through the grant; and a link it makes there to
        // the recorder's folder.
        let _ = std::fs::write("mine.txt", "mine");
        symlink_in_own_folder("../recorder", "link");
        let attempts = [
            "/output/plugins/peeker/mine.txt".to_string(),
            "/output/plugins/.owners.json".to_string(),
            "/output/plugins/recorder/events.jsonl".to_string(),
            format!("{ckpt}/../plugins/recorder/events.jsonl"),
            "/output/plugins/peeker/link/events.jsonl".to_string(),
        ];
        for path in &attempts {
            let read = std::fs::read(path);
            self.line(
                &format!("read {path}"),
                outcome(read, |b| format!("{} bytes", b.len())),
            );
        }
        for dir in ["/output/plugins", "/output/plugins/recorder"] {
            let listed = std::fs::read_dir(dir).map(|d| d.count());
            self.line(
                &format!("list {dir}"),
                outcome(listed, |n| format!("{n} entries")),
            );
        }
        // A FIFO the user left in output_dir: reaching for it or through
        // it must not block the run.
        let read = std::fs::read("/output/fifo");
        self.line(
            "read /output/fifo",
            outcome(read, |b| format!("{} bytes", b.len())),
        );
        for path in [
            "/output/plugins/recorder",
            "/output/plugins/recorder/events.jsonl",
            "/output/plugins/peeker/link/events.jsonl",
            "/output/fifo/x",
        ] {
            let stat = std::fs::metadata(path);
            self.line(
                &format!("stat {path}"),
                outcome(stat, |m| format!("{}", m.len())),
            );
        }
        let wrote = std::fs::write("/output/tampered.txt", "x");
        self.line(
            "write /output/tampered.txt",
            outcome(wrote, |_| String::new()),
        );
        let wrote = std::fs::write(format!("{ckpt}/tampered.txt"), "x");
        self.line(
            &format!("write {ckpt}/tampered.txt"),
            outcome(wrote, |_| String::new()),
        );
        let _ = std::fs::write("peek.txt", &self.report);
    }
}

export_plugin!(Peeker);
