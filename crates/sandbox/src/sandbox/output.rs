//! What a plugin writes to stdout and stderr: split into lines, stripped of
//! terminal control sequences, attributed to the plugin (`[name] line`),
//! capped in bytes (a burst of [`OUTPUT_BUDGET`](super::OUTPUT_BUDGET), then
//! [`BYTES_PER_SECOND`]) and in lines (a burst of [`BURST_LINES`], then
//! [`LINES_PER_SECOND`]), and printed above the progress bars.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// Bytes per second a stream may write once its byte budget is spent.
pub const BYTES_PER_SECOND: f64 = 64.0 * 1024.0;

/// A line fit for the terminal: control sequences removed, cut at
/// [`MAX_LINE`] bytes (marked with ` …`).
pub fn clean_line(text: &str) -> String {
    // Bounded work: a longer input is cut before it is cleaned.
    let input = &text[..floor_char_boundary(text, MAX_LINE * 4)];
    let mut line = sanitize(input);
    if line.len() > MAX_LINE || input.len() < text.len() {
        line.truncate(floor_char_boundary(&line, MAX_LINE));
        line.push_str(" …");
    }
    line
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut cut = at.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// Whether `c` is an invisible Unicode format character (category Cf, and
/// the line and paragraph separators): a byte-order mark, a zero-width
/// space or joiner, a bidirectional override or isolate, a tag. Such
/// characters let a line render as something it is not (a host message
/// behind a BOM, text reordered by U+202E), so plugin text never keeps them.
pub fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891
        | 0x08E2 | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE007F)
}

/// Removes terminal control sequences, control characters (tabs stay) and
/// invisible format characters ([`is_format_char`]).
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
            c if c.is_control() || is_format_char(c) => {}
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
    /// The line being written, up to `MAX_LINE * 4` bytes of it.
    pending: Vec<u8>,
    /// Bytes of that line written so far, kept or not.
    pending_len: usize,
    /// Bytes that may be written now (a token bucket of `budget` bytes).
    bytes: f64,
    budget: f64,
    /// The refill rate of `bytes` ([`BYTES_PER_SECOND`]).
    bytes_per_second: f64,
    exhausted_reported: bool,
    /// Lines that may be printed now (a token bucket).
    tokens: f64,
    refilled: Instant,
    rate_reported: bool,
    /// The last lines written since the current call began (cleaned,
    /// printed or not), for the fault line of a call that panics.
    recent: std::collections::VecDeque<String>,
}

/// Lines of a panicking call's stderr that its fault line quotes.
const RECENT_LINES: usize = 12;

impl Sink {
    /// Refills both buckets for the time since the last refill.
    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * LINES_PER_SECOND).min(BURST_LINES);
        self.bytes = (self.bytes + elapsed * self.bytes_per_second).min(self.budget);
        self.refilled = now;
    }

    /// Takes one line from the rate budget.
    fn may_print(&mut self) -> bool {
        self.refill();
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

    /// Ends the pending line: it is charged to the byte budget whole (with
    /// its newline) and printed whole or not at all, so that a line over
    /// the budget never leaves a fragment for the next one to run into.
    fn end_line(&mut self) {
        let raw = std::mem::take(&mut self.pending);
        let len = std::mem::take(&mut self.pending_len);
        let affordable = self.spend(len + 1);
        let mut text = clean_line(&String::from_utf8_lossy(&raw));
        if len > raw.len() && !text.ends_with(" …") {
            text.push_str(" …");
        }
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(text.clone());
        if !affordable || !self.may_print() {
            return;
        }
        let line = format!("{}{}", self.prefix, text);
        self.print(&line);
    }

    fn print(&self, line: &str) {
        match self.channel {
            Channel::Stdout => crate::ui::println(line),
            Channel::Stderr => crate::ui::eprintln(line),
        }
    }

    /// Takes `n` bytes from the budget if it holds them (all or nothing);
    /// one warning the first time it does not.
    fn spend(&mut self, n: usize) -> bool {
        self.refill();
        if n as f64 <= self.bytes {
            self.bytes -= n as f64;
            return true;
        }
        if !self.exhausted_reported {
            self.exhausted_reported = true;
            crate::ui::warn(&format!(
                "{}output limit reached ({} KiB at once, then {} KiB a second); output over it is dropped",
                self.prefix,
                self.budget as usize / 1024,
                BYTES_PER_SECOND as usize / 1024
            ));
        }
        false
    }

    /// Lines written through `progress.write-line` (the text may hold
    /// several): the same budget and rate as stdout, charged once for the
    /// whole text, cleaned and attributed like stdout lines, so that no
    /// plugin line can pass for the host's own.
    fn write_lines(&mut self, text: &str) {
        if !self.spend(text.len() + 1) {
            return;
        }
        for part in text.split('\n') {
            if !self.may_print() {
                return; // the rest would be dropped too
            }
            let line = format!("{}{}", self.prefix, clean_line(part));
            self.print(&line);
        }
    }

    fn write(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.add_to_line(&bytes[..end]);
            self.end_line();
            bytes = &bytes[end + 1..];
        }
        self.add_to_line(bytes);
    }

    /// Adds `part` to the pending line, keeping at most `MAX_LINE * 4` bytes.
    fn add_to_line(&mut self, part: &[u8]) {
        self.pending_len += part.len();
        let room = (MAX_LINE * 4).saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&part[..part.len().min(room)]);
    }

    fn flush(&mut self) {
        if self.pending_len > 0 {
            self.end_line();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.flush();
    }
}

/// What the handles on one stream share.
struct Shared {
    sink: Mutex<Sink>,
    /// Whether `recent` may hold lines: a call begins without taking the
    /// lock when the last one wrote nothing (the common case: each event
    /// call begins one).
    has_recent: AtomicBool,
}

/// One plugin output stream, shared by every handle the guest opens on it.
#[derive(Clone)]
pub struct PluginOutput(Arc<Shared>);

impl PluginOutput {
    /// A stream for plugin `name` that may write `budget` bytes in all.
    pub fn new(name: &str, channel: Channel, budget: usize) -> Self {
        let sink = Mutex::new(Sink {
            prefix: format!("[{name}] "),
            channel,
            pending: Vec::new(),
            pending_len: 0,
            bytes: budget as f64,
            budget: budget as f64,
            bytes_per_second: BYTES_PER_SECOND,
            exhausted_reported: false,
            tokens: BURST_LINES,
            refilled: Instant::now(),
            rate_reported: false,
            recent: std::collections::VecDeque::new(),
        });
        PluginOutput(Arc::new(Shared {
            sink,
            has_recent: AtomicBool::new(false),
        }))
    }

    /// Forgets the lines of earlier calls: a call begins.
    pub fn begin_call(&self) {
        if self.0.has_recent.load(Ordering::Acquire) {
            let mut sink = self.sink();
            self.0.has_recent.store(false, Ordering::Release);
            sink.recent.clear();
        }
    }

    /// Writes `bytes` (stdout or stderr as the guest writes them).
    fn write_bytes(&self, bytes: &[u8]) {
        let mut sink = self.sink();
        sink.write(bytes);
        if !sink.recent.is_empty() {
            self.0.has_recent.store(true, Ordering::Release);
        }
    }

    /// The last lines written since the call began (a line still without
    /// its newline included), oldest first.
    pub fn recent_lines(&self) -> Vec<String> {
        let mut sink = self.sink();
        sink.flush();
        if !sink.recent.is_empty() {
            self.0.has_recent.store(true, Ordering::Release);
        }
        sink.recent.iter().cloned().collect()
    }

    /// Prints the line(s) of `progress.write-line`, under the same caps.
    pub fn write_line(&self, text: &str) {
        self.sink().write_lines(text);
    }

    fn sink(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.0.sink.lock().unwrap_or_else(|e| e.into_inner())
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
        self.write_bytes(&bytes);
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
        self.write_bytes(buf);
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

    #[test]
    fn invisible_format_characters_are_removed() {
        let disguised = "\u{feff}trainbox: error: checkpoint-8 is corrupt; delete it";
        assert_eq!(
            sanitize(disguised),
            "trainbox: error: checkpoint-8 is corrupt; delete it"
        );
        for c in [
            '\u{200b}',
            '\u{200d}',
            '\u{202a}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{2028}',
            '\u{e0041}',
        ] {
            assert_eq!(sanitize(&format!("a{c}b")), "ab", "U+{:04X}", c as u32);
        }
        // Visible text of every script stays.
        assert_eq!(sanitize("é 日本 🙂 Ω"), "é 日本 🙂 Ω");
    }

    #[test]
    fn long_lines_are_cut_at_a_char_boundary() {
        assert_eq!(clean_line("short"), "short");
        let long = "é".repeat(MAX_LINE);
        let cut = clean_line(&long);
        assert!(
            cut.ends_with(" …") && cut.len() <= MAX_LINE + 4,
            "{}",
            cut.len()
        );
        // Escapes that shrink to nothing still end in a cut mark.
        let escapes = "\u{1b}[0m".repeat(MAX_LINE * 2);
        assert_eq!(clean_line(&escapes), " …");
    }

    #[test]
    fn a_call_quotes_only_the_lines_written_since_it_began() {
        let mut out = PluginOutput::new("t", Channel::Stderr, 1 << 20);
        out.begin_call();
        OutputStream::write(&mut out, Bytes::from_static(b"first\n")).unwrap();
        assert_eq!(out.recent_lines(), ["first"]);
        // A call that writes nothing quotes nothing, the one after it
        // only its own lines, a line without its newline included.
        out.begin_call();
        assert!(out.recent_lines().is_empty());
        out.begin_call();
        OutputStream::write(&mut out, Bytes::from_static(b"second\nthi")).unwrap();
        assert_eq!(out.recent_lines(), ["second", "thi"]);
        out.begin_call();
        assert!(out.recent_lines().is_empty());
    }

    #[test]
    fn the_byte_budget_is_a_burst_then_a_rate() {
        let out = PluginOutput::new("t", Channel::Stderr, 100);
        let mut sink = out.sink();
        assert!(sink.spend(60));
        assert!(!sink.spend(60), "only 40 of the burst are left");
        assert!(sink.spend(40), "the rest of the burst");
        sink.refilled -= std::time::Duration::from_millis(10);
        assert!(!sink.spend(101), "capped at the burst");
        assert!(sink.spend(90), "refilled at 64 KiB/s");
    }

    #[test]
    fn a_line_over_the_budget_is_dropped_whole_and_the_next_line_starts_clean() {
        let out = PluginOutput::new("t", Channel::Stdout, 25);
        let mut sink = out.sink();
        sink.bytes_per_second = 0.0;
        // 9 bytes with the newline: two fit, the third line (11) does not,
        // and none of it may run into the line after it.
        sink.write(b"line one\nline two\nline thr");
        sink.write(b"ee\n");
        assert!(sink.exhausted_reported, "the third line is over the budget");
        assert_eq!(sink.bytes, 7.0, "two lines charged, not the third");
        sink.write(b"ab\n");
        assert_eq!(
            sink.bytes, 4.0,
            "a later line that fits is charged and printed"
        );
        let recent: Vec<&str> = sink.recent.iter().map(String::as_str).collect();
        assert_eq!(recent, ["line one", "line two", "line three", "ab"]);
    }

    #[test]
    fn a_line_longer_than_kept_is_marked_cut() {
        let out = PluginOutput::new("t", Channel::Stdout, 1 << 20);
        let mut sink = out.sink();
        let long = vec![b'x'; MAX_LINE * 5];
        sink.write(&long);
        sink.write(b"\nnext\n");
        assert!(sink.recent[0].ends_with(" …"));
        assert_eq!(sink.recent[1], "next");
        assert!(sink.pending.is_empty() && sink.pending_len == 0);
    }
}
