//! codecarbon: HF's `report_to="codecarbon"` integration (skeleton, being written).

use trainbox_sdk::{export_plugin, Callback, Event};

#[derive(Default)]
struct Plugin;

impl Callback for Plugin {
    const NAME: &'static str = "codecarbon";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[];
}

export_plugin!(Plugin);
