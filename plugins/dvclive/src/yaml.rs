//! Hand-written on purpose: no YAML crate writes ruamel.yaml's quoting and folding byte for byte.
//! `params.yaml` as dvclive writes it with ruamel.yaml (block style, YAML
//! 1.2, line width 80): a mapping of scalars, lists and mappings; strings
//! plain when they read back as strings, else single- or double-quoted, and
//! folded past column 80, as ruamel's emitter does (checked against ruamel
//! on thousands of random strings). The one difference in bytes, not in what
//! a reader gets back: strings holding U+0085, U+2028 or U+2029 are written
//! double-quoted with escapes, where ruamel writes them raw, single-quoted.
//! Keys are written as simple keys (ruamel uses `? key` past 128 characters).

mod scalar;

use scalar::{printable, resolves_to_non_string, Analysis};
use trainbox_sdk::python::{float_repr, json_dumps, Py};

/// ruamel's `best_width`.
const WIDTH: usize = 80;
/// The indent of nested blocks and of folded lines.
const STEP: usize = 2;

/// A mapping as ruamel's `YAML().dump` writes it.
pub fn dump(entries: &[(String, Py)]) -> String {
    let mut e = Emitter::default();
    e.mapping(entries, 0);
    if e.column > 0 {
        e.line_break();
    }
    e.out
}

/// The emitter's position, as ruamel tracks it.
struct Emitter {
    out: String,
    column: usize,
    /// The last thing written was whitespace (a scalar needs no space before it).
    whitespace: bool,
    /// Only indentation was written on this line so far.
    indention: bool,
}

impl Default for Emitter {
    fn default() -> Self {
        Emitter {
            out: String::new(),
            column: 0,
            whitespace: true,
            indention: true,
        }
    }
}

impl Emitter {
    fn mapping(&mut self, entries: &[(String, Py)], indent: usize) {
        for (key, value) in entries {
            self.indent(indent);
            self.string(key, indent + STEP, true);
            self.write(":");
            self.whitespace = false;
            self.indention = false;
            self.value(value, indent + STEP);
        }
    }

    fn value(&mut self, v: &Py, indent: usize) {
        match v {
            Py::List(items) if items.is_empty() => self.write(" []"),
            Py::Dict(entries) if entries.is_empty() => self.write(" {}"),
            Py::List(items) => {
                for item in items {
                    self.indent(indent - STEP);
                    self.write("- ");
                    self.whitespace = true;
                    match item {
                        Py::List(_) | Py::Dict(_) => {
                            self.string(&json_dumps(item, None), indent, false)
                        }
                        scalar => self.scalar(scalar, indent),
                    }
                }
            }
            Py::Dict(entries) => self.mapping(entries, indent),
            scalar => self.scalar(scalar, indent),
        }
    }

    fn scalar(&mut self, v: &Py, indent: usize) {
        let text = match v {
            Py::None => return,
            Py::Bool(b) => (if *b { "true" } else { "false" }).to_string(),
            Py::Int(i) => i.to_string(),
            Py::Float(f) if f.is_nan() => ".nan".into(),
            Py::Float(f) if f.is_infinite() => (if *f > 0.0 { ".inf" } else { "-.inf" }).into(),
            Py::Float(f) => float_repr(*f),
            Py::Str(s) => return self.string(s, indent, false),
            Py::List(_) | Py::Dict(_) => unreachable!("containers are not scalars"),
        };
        self.plain(&text, indent, true);
    }

    /// A string in the style ruamel chooses for it.
    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        let a = Analysis::of(s);
        let plain_ok = !resolves_to_non_string(s)
            && !(simple_key && (a.empty || a.multiline))
            && a.allow_plain;
        if plain_ok {
            self.plain(s, indent, !simple_key);
        } else if (s.contains('\'') || s.contains('\n')) || !a.allow_single_quoted || a.multiline {
            self.double_quoted(s, indent, !simple_key);
        } else {
            self.single_quoted(s, indent, !simple_key);
        }
    }

    fn write(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.chars().count();
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.whitespace = true;
        self.indention = true;
    }

    /// ruamel's `write_indent`: a new line unless only indentation was
    /// written, then spaces up to `indent`.
    fn indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            self.out
                .extend(std::iter::repeat_n(' ', indent - self.column));
            self.column = indent;
        }
    }

    /// An opening or closing quote.
    fn quote(&mut self, q: &str, need_whitespace: bool) {
        if self.whitespace || !need_whitespace {
            self.write(q);
        } else {
            self.write(&format!(" {q}"));
        }
        self.whitespace = false;
        self.indention = false;
    }

    /// ruamel's `write_plain`: words longer than the line get a line of their
    /// own; a single space past the width becomes a line break.
    fn plain(&mut self, text: &str, indent: usize, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut spaces) = (0, false);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column >= WIDTH && split {
                        self.indent(indent);
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.write_chars(&chars[start..end]);
                    }
                    start = end;
                }
            } else if ch.is_none() || ch == Some(' ') {
                if end - start + self.column > WIDTH && self.column > indent {
                    self.indent(indent);
                }
                self.write_chars(&chars[start..end]);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
            }
        }
    }

    /// ruamel's `write_single_quoted` (strings without line breaks).
    fn single_quoted(&mut self, text: &str, indent: usize, split: bool) {
        self.quote("'", true);
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut spaces) = (0, false);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > WIDTH
                        && split
                        && start != 0
                        && end != chars.len()
                    {
                        self.indent(indent);
                    } else {
                        self.write_chars(&chars[start..end]);
                    }
                    start = end;
                }
            } else if (ch.is_none() || ch == Some(' ') || ch == Some('\'')) && start < end {
                self.write_chars(&chars[start..end]);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
            }
        }
        self.quote("'", false);
    }

    /// ruamel's `write_double_quoted`: escapes, and folding past the width
    /// with or without a trailing backslash, as ruamel decides.
    fn double_quoted(&mut self, text: &str, indent: usize, split: bool) {
        self.quote("\"", true);
        let t: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0, 0);
        while end <= t.len() {
            let ch = t.get(end).copied();
            if ch.is_none_or(needs_escape) {
                if start < end {
                    self.write_chars(&t[start..end]);
                    start = end;
                }
                if let Some(c) = ch {
                    self.write(&escape(c));
                    start = end + 1;
                }
            }
            let pending = end as isize - start as isize;
            if 0 < end
                && end + 1 < t.len()
                && (ch == Some(' ') || start >= end)
                && self.column as isize + pending > WIDTH as isize
                && split
            {
                let backslash = needs_backslash(&t, start, end);
                if start < end {
                    self.write_chars(&t[start..end]);
                    start = end;
                }
                if backslash {
                    self.write("\\");
                }
                self.indent(indent);
                self.whitespace = false;
                self.indention = false;
                if t[start] == ' ' {
                    if backslash {
                        self.write("\\");
                    } else {
                        // The line break reads back as this space.
                        start += 1;
                    }
                }
            }
            end += 1;
        }
        self.quote("\"", false);
    }

    fn write_chars(&mut self, chars: &[char]) {
        self.out.extend(chars);
        self.column += chars.len();
    }
}

/// Characters a double-quoted string escapes.
fn needs_escape(c: char) -> bool {
    !printable(c)
        || matches!(
            c,
            '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
        )
}

/// A character's escape in a double-quoted string.
fn escape(c: char) -> String {
    let short = match c {
        '\0' => '0',
        '\x07' => 'a',
        '\x08' => 'b',
        '\t' => 't',
        '\n' => 'n',
        '\x0b' => 'v',
        '\x0c' => 'f',
        '\r' => 'r',
        '\x1b' => 'e',
        '"' => '"',
        '\\' => '\\',
        '\u{85}' => 'N',
        '\u{a0}' => '_',
        '\u{2028}' => 'L',
        '\u{2029}' => 'P',
        _ => {
            return match c as u32 {
                n @ 0..=0xff => format!("\\x{n:02X}"),
                n @ 0..=0xffff => format!("\\u{n:04X}"),
                n => format!("\\U{n:08X}"),
            }
        }
    };
    format!("\\{short}")
}

/// Whether ruamel ends a folded double-quoted line with a backslash: not
/// when the next word is plain enough that the line break reads back as
/// the space it replaces.
fn needs_backslash(t: &[char], start: usize, end: usize) -> bool {
    let Some(mut space) = t[end..].iter().position(|&c| c == ' ').map(|p| p + end) else {
        return true;
    };
    if let Some(p) = t[end..space].iter().position(|&c| c == '\n') {
        space = end + p;
    }
    let word = &t[end..space];
    let next = t.get(space + 1).copied();
    !(t[space] != '\n'
        && !word.contains(&'"')
        && !word.contains(&'\'')
        && next.is_some_and(|c| c != ' ' && c != '\n')
        && t[end - 1..=end] != [' ', ' ']
        && start != end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: Py) -> String {
        dump(&[("k".into(), v)])
    }

    #[test]
    fn strings_are_quoted_only_when_ruamel_quotes_them() {
        // What ruamel.yaml 0.18 wrote for these, by dvclive's `dump_yaml`.
        let cases = [
            ("no", "k: no\n"),
            ("true", "k: 'true'\n"),
            ("null", "k: 'null'\n"),
            ("", "k: ''\n"),
            ("1.5", "k: '1.5'\n"),
            ("1e5", "k: '1e5'\n"),
            ("1.", "k: '1.'\n"),
            ("..", "k: ..\n"),
            ("0777", "k: '0777'\n"),
            ("2001-12-14", "k: '2001-12-14'\n"),
            ("12:30:00", "k: 12:30:00\n"),
            ("-", "k: '-'\n"),
            ("-x", "k: -x\n"),
            ("a: b", "k: 'a: b'\n"),
            ("a #b", "k: 'a #b'\n"),
            ("a#b", "k: a#b\n"),
            ("'x'", "k: \"'x'\"\n"),
            ("a'b", "k: a'b\n"),
            (" a", "k: ' a'\n"),
            ("a\tb", "k: \"a\\tb\"\n"),
            ("a\nb", "k: \"a\\nb\"\n"),
            ("é", "k: é\n"),
            ("/tmp/x y/out", "k: /tmp/x y/out\n"),
        ];
        for (s, want) in cases {
            assert_eq!(one(Py::Str(s.into())), want, "{s:?}");
        }
    }

    #[test]
    fn values_lists_and_folding_follow_ruamel() {
        let params = vec![
            ("a".to_string(), Py::None),
            ("b".into(), Py::List(vec![])),
            (
                "c".into(),
                Py::List(vec![Py::Str("x".into()), Py::Str("no".into())]),
            ),
            ("e".into(), Py::Float(1.0)),
            ("g".into(), Py::Float(f64::NAN)),
            ("i".into(), Py::Float(5e-05)),
            ("j".into(), Py::Float(1e16)),
            ("t".into(), Py::Bool(true)),
            ("n".into(), Py::Int(42)),
        ];
        assert_eq!(
            dump(&params),
            "a:\nb: []\nc:\n- x\n- no\ne: 1.0\ng: .nan\ni: 5e-05\nj: 1e+16\nt: true\nn: 42\n"
        );
        let long = "/some/long path/with spaces in it/that goes on and on and on/past the eighty column limit/out";
        assert_eq!(
            dump(&[
                ("output_dir".into(), Py::Str(long.into())),
                ("report_to".into(), Py::List(vec![Py::Str(long.into())])),
            ]),
            "output_dir: /some/long path/with spaces in it/that goes on and on and on/past \n  the eighty column limit/out\nreport_to:\n- /some/long path/with spaces in it/that goes on and on and on/past the eighty \n  column limit/out\n"
        );
        let x100 = "x".repeat(100);
        assert_eq!(one(Py::Str(x100.clone())), format!("k: \n  {x100}\n"));
        let ab = "a b ".repeat(30);
        assert_eq!(
            dump(&[("output_dir".into(), Py::Str(ab))]),
            "output_dir: 'a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a\n  b a b a b a b a b a b a b a b a b a b a b a b a b '\n"
        );
    }
}
