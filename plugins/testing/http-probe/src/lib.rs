//! http-probe (test plugin): asks for the origin `http://127.0.0.1:18765`;
//! at every log POSTs the entry as JSON to `http-probe.url`, and at train
//! begin tries `http-probe.denied_url`. What happened goes to `http.txt` in
//! its directory.

use std::fmt::Write as _;
use trainbox_sdk::{
    export_plugin, http, Callback, Capability, Config, Context, Event, Logs, TrainingArgs,
};

/// The one origin the probe asks for.
const ORIGIN: &str = "http://127.0.0.1:18765";

#[derive(Default)]
struct HttpProbe {
    url: String,
    denied_url: Option<String>,
    seen: String,
}

impl HttpProbe {
    fn record(&mut self, line: String) {
        self.seen.push_str(&line);
        self.seen.push('\n');
        let _ = std::fs::write("http.txt", &self.seen);
    }
}

impl Callback for HttpProbe {
    const NAME: &'static str = "http-probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Log];

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Http(ORIGIN.into())]
    }

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["url", "denied_url"])?;
        self.url = config
            .get("url")
            .ok_or("http-probe needs http-probe.url")?
            .to_string();
        self.denied_url = config.get("denied_url").map(String::from);
        Ok(())
    }

    fn on_train_begin(&mut self, _cx: &mut Context) {
        if let Some(url) = self.denied_url.clone() {
            let line = match http::post_json(&url, "{}") {
                Ok(r) => format!("denied_url: ALLOWED status {}", r.status),
                Err(e) => format!("denied_url: refused: {e}"),
            };
            self.record(line);
        }
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        let mut body = format!("{{\"step\": {}", cx.state.global_step);
        for (k, v) in logs.iter() {
            if let trainbox_sdk::Value::Float(f) = v {
                if f.is_finite() {
                    let _ = write!(body, ", \"{k}\": {f}");
                }
            }
        }
        body.push('}');
        let url = self.url.clone();
        let line = match http::post_json(&url, &body) {
            Ok(r) => format!(
                "step {}: status {} {}",
                cx.state.global_step,
                r.status,
                r.text().trim()
            ),
            Err(e) => format!("step {}: failed: {e}", cx.state.global_step),
        };
        self.record(line);
    }
}

export_plugin!(HttpProbe);
