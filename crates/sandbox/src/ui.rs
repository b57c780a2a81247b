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
    bar.set_style(style());
    if !label.is_empty() {
        bar.set_prefix(format!("{label}: "));
    }
    bar
}

/// tqdm's default look.
fn style() -> ProgressStyle {
    ProgressStyle::with_template(
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
    .progress_chars("█▉▊▋▌▍▎▏ ")
}

/// Removes a bar from the screen, or, with `leave` (tqdm's `leave=True`),
/// turns its last state into a line that stays: what is printed after it
/// comes below it. (A bar left among the live ones would be wiped by the
/// next line printed once its handle is dropped.)
pub fn finish_bar(bar: &ProgressBar, leave: bool) {
    if !leave {
        bar.finish_and_clear();
        multi().remove(bar);
        return;
    }
    let drawn = !multi().is_hidden();
    multi().remove(bar);
    let line = final_line(bar, terminal_width());
    if drawn && !line.is_empty() {
        eprintln(&line);
    }
}

/// The bar's last state as one line of `width` columns (its own draw
/// target is replaced: the bar is not drawn anywhere after).
fn final_line(bar: &ProgressBar, width: u16) -> String {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    bar.set_draw_target(ProgressDrawTarget::term_like(Box::new(Capture {
        width,
        text: text.clone(),
    })));
    bar.abandon();
    let line = text.lock().map(|t| t.clone()).unwrap_or_default();
    line.trim_end().to_string()
}

/// The width of the terminal on stderr (80 when it says nothing).
fn terminal_width() -> u16 {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct passed; on a
    // descriptor that is not a terminal it fails and writes nothing.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        size.ws_col
    } else {
        80
    }
}

/// A terminal that keeps what is written to it, without cursor movement.
struct Capture {
    width: u16,
    text: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Capture {
    fn push(&self, s: &str) {
        if let Ok(mut t) = self.text.lock() {
            t.extend(s.chars().filter(|c| *c != '\r'));
        }
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("width", &self.width)
            .finish()
    }
}

impl indicatif::TermLike for Capture {
    fn width(&self) -> u16 {
        self.width
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.push(s);
        self.push("\n");
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.push(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_bar_leaves_its_full_line_in_tqdms_look() {
        let bar = ProgressBar::hidden();
        bar.set_length(24);
        bar.set_style(style());
        bar.inc(24);
        let line = final_line(&bar, 100);
        assert!(line.starts_with("100%|████"), "{line:?}");
        assert!(line.contains("| 24/24 ["), "{line:?}");
        assert!(line.chars().count() <= 100, "{line:?}");
        let half = ProgressBar::hidden();
        half.set_length(24);
        half.set_style(style());
        half.inc(12);
        let line = final_line(&half, 100);
        assert!(
            line.starts_with(" 50%|"),
            "a bar stopped early says so: {line:?}"
        );
    }
}
