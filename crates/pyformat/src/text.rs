//! Strings as Python writes them: `repr(str)` and a JSON string literal with
//! `json.dumps`'s default `ensure_ascii=True`.

use std::fmt::Write as _;

/// Python's `repr(str)`: single quotes, or double quotes when the text holds
/// a `'` and no `"`; `\\`, `\n`, `\r`, `\t` and the quote escaped, other
/// ASCII control characters as `\xNN`; everything else as it is.
pub fn repr_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_repr_str(&mut out, s);
    out
}

/// Appends [`repr_str`] of `s`.
pub(crate) fn push_repr_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// `json.dumps(s)`: a JSON string literal with everything outside printable
/// ASCII escaped (`\n`, `\"`, `\u00e9`, surrogate pairs `\ud83d\ude00`).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

/// Appends [`json_str`] of `s`.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_python_reprs() {
        assert_eq!(repr_str("loss"), "'loss'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(repr_str("a\\b\n\u{1}\u{7f}é"), "'a\\\\b\\n\\x01\\x7fé'");
    }

    #[test]
    fn json_strings_are_ascii() {
        assert_eq!(
            json_str("é\"\u{1F600}\u{7f}\u{8}/"),
            "\"\\u00e9\\\"\\ud83d\\ude00\\u007f\\b/\""
        );
    }
}
