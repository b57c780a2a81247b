//! printer: prints each log entry as a line, as HF's `PrinterCallback`
//! (used instead of `progress` with `--disable_tqdm`): floats formatted
//! `{:.4g}`, `total_flos` left out. HF's prints on every machine's local
//! process zero; this one on world zero only, so that a run on several
//! machines prints each log once.

use trainbox_sdk::{export_plugin, format, Callback, Context, Event, Logs};

#[derive(Default)]
struct Printer;

impl Callback for Printer {
    const NAME: &'static str = "printer";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::Log];

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        if cx.state.is_world_process_zero {
            println!("{}", format::py_dict(logs, usize::MAX));
        }
    }
}

export_plugin!(Printer);
