//! What a plugin writes to stdout and stderr: split into lines, stripped of
//! terminal control sequences, attributed to the plugin (`[name] line`),
//! capped in size ([`OUTPUT_BUDGET`](super::OUTPUT_BUDGET) per run) and in
//! rate (a burst of [`BURST_LINES`], then [`LINES_PER_SECOND`]), and printed
//! above the progress bars.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept; the rest of a longer line is cut.
pub const MAX_LINE: usize = 4096;
/// Lines a plugin may print at once before the rate cap applies.
pub const BURST_LINES: f64 = 200.0;
/// Lines per second a plugin may print once its burst is spent.
pub const LINES_PER_SECOND: f64 = 100.0;

/// A line fit for the terminal: control sequences removed, cut at
/// [`MAX_LINE`] bytes (marked with ` …`).
pub fn clean_line(text: &str) -> String {
    let mut line = sanitize(text);
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(" …");
    }
    line
}

/// Removes terminal control sequences and control characters (tabs stay).
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in @..~
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC and friends: up to BEL or ESC \
                Some(']' | 'P' | '_' | '^') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Which host stream a plugin stream goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stdout,
    Stderr,
}

struct Sink {
    prefix: String,
    channel: Channel,
    pending: Vec<u8>,
    /// Bytes the plugin may still write in this run.
    budget: usize,
    exhausted_reported: bool,
    /// Lines that may be printed now (a token bucket).
    tokens: f64,
    refilled: Instant,
    rate_reported: bool,
}

impl Sink {
    /// Takes one line from the rate budget.
    fn may_print(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * LINES_PER_SECOND).min(BURST_LINES);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        if !self.rate_reported {
            self.rate_reported = true;
            crate::ui::warn(&format!(
                "{}prints more than {LINES_PER_SECOND} lines a second; lines over the rate are dropped",
                self.prefix
            ));
        }
        false
    }

    fn emit(&mut self, raw: &[u8]) {
        if !self.may_print() {
            return;
        }
        let line = format!(
            "{}{}",
            self.prefix,
            clean_line(&String::from_utf8_lossy(raw))
        );
        self.print(&line);
    }

    fn print(&self, line: &str) {
        match self.channel {
            Channel::Stdout => crate::ui::println(line),
            Channel::Stderr => crate::ui::eprintln(line),
        }
    }

    /// Takes `n` bytes from the budget; false (after one warning) when spent.
    fn spend(&mut self, n: usize) -> bool {
        if n <= self.budget {
            self.budget -= n;
            return true;
        }
        self.budget = 0;
        if !self.exhausted_reported {
            self.exhausted_reported = true;
            crate::ui::warn(&format!(
                "{}output limit reached; further output is dropped",
                self.prefix
            ));
        }
        false
    }

    /// One line written through `progress.write-line`: the same budget and
    /// rate, printed as is, except that a line that would pass for the
    /// host's own (`trainbox: …`) keeps the plugin's name.
    fn write_line(&mut self, text: &str) {
        if !self.spend(text.len() + 1) || !self.may_print() {
            return;
        }
        let line = clean_line(text);
        if line.trim_start().starts_with("trainbox") {
            let line = format!("{}{line}", self.prefix);
            self.print(&line);
        } else {
            self.print(&line);
        }
    }

    fn write(&mut self, mut bytes: &[u8]) {
        let allowed = bytes.len().min(self.budget);
        self.spend(bytes.len());
        bytes = &bytes[..allowed];
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.pending);
                self.emit(&line);
            } else if self.pending.len() < MAX_LINE * 4 {
                self.pending.push(b);
            }
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One plugin output stream, shared by every handle the guest opens on it.
#[derive(Clone)]
pub struct PluginOutput(Arc<Mutex<Sink>>);

impl PluginOutput {
    /// A stream for plugin `name` that may write `budget` bytes in all.
    pub fn new(name: &str, channel: Channel, budget: usize) -> Self {
        PluginOutput(Arc::new(Mutex::new(Sink {
            prefix: format!("[{name}] "),
            channel,
            pending: Vec::new(),
            budget,
            exhausted_reported: false,
            tokens: BURST_LINES,
            refilled: Instant::now(),
            rate_reported: false,
        })))
    }

    /// Prints a line for `progress.write-line`, under the same caps.
    pub fn write_line(&self, text: &str) {
        for part in text.split('\n') {
            self.sink().write_line(part);
        }
    }

    fn sink(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PluginOutput {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for PluginOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.sink().write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        // Guests flush after every write (Python's print writes its parts
        // one by one): a line is printed when it ends, not when flushed.
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for PluginOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.sink().write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_are_removed() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m plain"), "red plain");
        assert_eq!(sanitize("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(sanitize("tab\there\r\u{8}"), "tab\there");
        assert_eq!(sanitize("\u{1b}[2J\u{1b}[Hclear"), "clear");
    }
}
