//! The terminal: progress bars and messages, drawn so that they do not
//! garble each other. Bars are drawn on stderr and only on a terminal;
//! plugin output and logs go through [`println`] so they appear above bars.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
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

/// A new bar counting to `total`, as tqdm's default look.
pub fn bar(total: u64, label: &str) -> ProgressBar {
    let bar = multi().add(ProgressBar::new(total));
    bar.set_style(
        ProgressStyle::with_template("{prefix}{percent:>3}%|{wide_bar}| {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
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
