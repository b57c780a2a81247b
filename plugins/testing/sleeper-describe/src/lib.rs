//! sleeper-describe (test plugin): sleeps for ever while it describes
//! itself (in `capabilities`, which `describe` calls), before any
//! configuration could tell it not to.

use std::time::Duration;
use trainbox_sdk::{export_plugin, Callback, Capability, Event};

#[derive(Default)]
struct SleeperDescribe;

impl Callback for SleeperDescribe {
    const NAME: &'static str = "sleeper-describe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::StepEnd];

    fn capabilities() -> Vec<Capability> {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

export_plugin!(SleeperDescribe);
