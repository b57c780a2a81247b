//! The terminal: progress bars and messages, drawn so that they do not
//! garble each other. Bars are drawn on stderr and only on a terminal;
//! plugin output and logs go through [`println`] so they appear above bars.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::Write;
use std::sync::OnceLock;

fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)))
}

/// Prints a line on stdout, above any bars.
pub fn println(line: &str) {
    multi().suspend(|| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
}

/// Prints a line on stderr, above any bars.
pub fn eprintln(line: &str) {
    multi().suspend(|| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    });
}

/// A warning that does not stop the run: `trainbox: warning: …` on stderr.
pub fn warn(msg: &str) {
    eprintln(&format!("trainbox: warning: {msg}"));
}

/// An informational message on stderr.
pub fn info(msg: &str) {
    eprintln(&format!("trainbox: {msg}"));
}

/// `mm:ss` (or `h:mm:ss`), as tqdm prints durations.
fn clock(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A new bar counting to `total`, in tqdm's default look:
/// ` 42%|████▏     | 420/1000 [00:08<00:11, 51.20it/s]`.
pub fn bar(total: u64, label: &str) -> ProgressBar {
    let bar = multi().add(ProgressBar::new(total));
    let style = ProgressStyle::with_template(
        "{prefix}{percent:>3}%|{wide_bar}| {pos}/{len} [{t_elapsed}<{t_eta}, {rate}]",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "t_elapsed",
        |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&clock(s.elapsed()));
        },
    )
    .with_key("t_eta", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = w.write_str(&clock(s.eta()));
    })
    .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.2}it/s", s.per_sec());
    })
    .progress_chars("█▉▊▋▌▍▎▏ ");
    bar.set_style(style);
    if !label.is_empty() {
        bar.set_prefix(format!("{label}: "));
    }
    bar
}

/// Removes a bar from the screen (or leaves its last state drawn).
pub fn finish_bar(bar: &ProgressBar, leave: bool) {
    if leave {
        bar.abandon();
    } else {
        bar.finish_and_clear();
        multi().remove(bar);
    }
}
