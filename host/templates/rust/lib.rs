//! {{name}}: a trainbox plugin. It prints the loss of every log entry;
//! change it to do what you need (see the `Callback` trait's methods).

use trainbox_sdk::{export_plugin, Callback, Context, Event, Logs};

#[derive(Default)]
struct Plugin;

impl Callback for Plugin {
    const NAME: &'static str = "{{name}}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    /// The events to receive: the host calls no other.
    const EVENTS: &'static [Event] = &[Event::Log];

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        if let Some(loss) = logs.float("loss") {
            println!("step {}: loss {loss:.4}", cx.state.global_step);
        }
    }
}

export_plugin!(Plugin);
