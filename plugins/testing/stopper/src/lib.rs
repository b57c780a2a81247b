//! stopper (test plugin): sets `should_training_stop` in `on_step_end` once
//! `global_step` reaches `at_step` (config `stopper.at_step`, default 1).
//! With `stopper.mode=clear` it instead tries to clear a stop already
//! requested, to show that a stop, once requested, stays requested; with
//! `stopper.mode=epoch` it sets `should_epoch_stop` instead. With
//! `stopper.mode=panic` it panics (a trap) instead. With
//! `stopper.on=others` it acts only on the ranks that are not world zero
//! of a multi-process run (to show that the ranks agree on a stop).

use trainbox_sdk::{export_plugin, Callback, Config, Context, Event, TrainingArgs};

#[derive(Default)]
struct Stopper {
    at_step: u64,
    mode: String,
    others_only: bool,
}

impl Callback for Stopper {
    const NAME: &'static str = "stopper";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::StepEnd];

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["at_step", "mode", "on"])?;
        self.others_only = match config.get("on").unwrap_or("all") {
            "all" => false,
            "others" => true,
            other => return Err(format!("on={other}: expected all or others")),
        };
        self.at_step = config.parse("at_step")?.unwrap_or(1);
        self.mode = config.get("mode").unwrap_or("stop").to_string();
        match self.mode.as_str() {
            "stop" | "clear" | "epoch" | "panic" => Ok(()),
            other => Err(format!(
                "mode={other}: expected stop, clear, epoch or panic"
            )),
        }
    }

    fn on_step_end(&mut self, cx: &mut Context) {
        if cx.state.global_step < self.at_step
            || (self.others_only && cx.state.is_world_process_zero)
        {
            return;
        }
        match self.mode.as_str() {
            "clear" => cx.control.should_training_stop = false,
            "epoch" if cx.state.global_step == self.at_step => cx.control.should_epoch_stop = true,
            "epoch" => {}
            "panic" => panic!("stopper panics at step {}", cx.state.global_step),
            _ => cx.control.should_training_stop = true,
        }
    }
}

export_plugin!(Stopper);
