//! progress: HF's `ProgressCallback`: a bar over the training steps, a bar
//! over each evaluation's batches, and each log entry printed above the bars
//! (floats `{:.4g}`, `total_flos` left out). The host draws the bars.

use trainbox_sdk::progress::{write_line, Bar};
use trainbox_sdk::{export_plugin, format, views, Callback, Context, Event, Logs};

/// Strings longer than this are replaced by a notice (HF's `max_str_len`).
const MAX_STR_LEN: usize = 100;

#[derive(Default)]
struct Progress {
    training_bar: Option<Bar>,
    prediction_bar: Option<Bar>,
    current_step: u64,
}

impl Callback for Progress {
    const NAME: &'static str = "progress";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[
        Event::TrainBegin,
        Event::StepEnd,
        Event::PredictionStep,
        Event::Evaluate,
        Event::Predict,
        Event::Log,
        Event::TrainEnd,
    ];

    fn on_train_begin(&mut self, cx: &mut Context) {
        if cx.state.is_world_process_zero {
            self.training_bar = Some(Bar::new(cx.state.max_steps, "", true));
        }
        self.current_step = 0;
    }

    fn on_step_end(&mut self, cx: &mut Context) {
        if let Some(bar) = &self.training_bar {
            bar.advance(cx.state.global_step.saturating_sub(self.current_step));
            self.current_step = cx.state.global_step;
        }
    }

    fn on_prediction_step(&mut self, cx: &mut Context) {
        if !cx.state.is_world_process_zero {
            return;
        }
        if self.prediction_bar.is_none() {
            if let Some(total) = views::dataloaders().eval {
                self.prediction_bar =
                    Some(Bar::new(u64::from(total), "", self.training_bar.is_none()));
            }
        }
        if let Some(bar) = &self.prediction_bar {
            bar.advance(1);
        }
    }

    fn on_evaluate(&mut self, _cx: &mut Context, _metrics: &Logs) {
        self.close_prediction_bar();
    }

    fn on_predict(&mut self, _cx: &mut Context, _metrics: &Logs) {
        self.close_prediction_bar();
    }

    fn on_log(&mut self, cx: &mut Context, logs: &Logs) {
        if cx.state.is_world_process_zero && self.training_bar.is_some() {
            write_line(&format::py_dict(logs, MAX_STR_LEN));
        }
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        if let Some(bar) = self.training_bar.take() {
            bar.close();
        }
    }
}

impl Progress {
    fn close_prediction_bar(&mut self) {
        if let Some(bar) = self.prediction_bar.take() {
            bar.close();
        }
    }
}

export_plugin!(Progress);
