//! The writers over any value tree: `json.dumps(v, indent=N)`, `repr(v)` and
//! `str(v)`. A value type implements [`Tree`] by saying what each of its
//! values is ([`Node`]); the layout is written here once, for [`Json`]
//! (objects sorted) and for the SDK's `Py` (dicts in insertion order) alike.
//!
//! [`Json`]: crate::Json

use crate::float::{push_float, NonFinite};
use crate::text::{push_json_str, push_repr_str};
use std::fmt::Write as _;

/// A value tree that the writers can walk.
pub trait Tree: Sized {
    /// The entries of an object, in the order they are written: a type whose
    /// objects are sorted maps writes as `sort_keys=True` does, one that keeps
    /// insertion order writes as a plain `dict` does.
    /// `btree_map::Iter<'a, String, Self>` and `slice::Iter<'a, (String,
    /// Self)>` serve as they are.
    type Entries<'a>: Iterator<Item: Entry<'a, Self>>
    where
        Self: 'a;

    /// What this value is.
    fn node(&self) -> Node<'_, Self>;
}

/// One item of [`Tree::Entries`]: a key and its value.
pub trait Entry<'a, T> {
    fn parts(self) -> (&'a str, &'a T);
}

impl<'a, T> Entry<'a, T> for (&'a String, &'a T) {
    fn parts(self) -> (&'a str, &'a T) {
        (self.0, self.1)
    }
}

impl<'a, T> Entry<'a, T> for &'a (String, T) {
    fn parts(self) -> (&'a str, &'a T) {
        (&self.0, &self.1)
    }
}

/// One value of a [`Tree`], as Python sees it.
pub enum Node<'a, T: Tree + 'a> {
    /// `None` / `null`.
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
    /// A list.
    Array(&'a [T]),
    /// A dict.
    Object(T::Entries<'a>),
}

/// Python's `json.dumps(v, indent=indent)` with its defaults (`ensure_ascii`,
/// `allow_nan`): with `Some(n)`, one item per line indented by `n` spaces per
/// level and `","` / `": "` separators; with `None`, one line with `", "` /
/// `": "`. Empty lists and dicts are `[]` and `{}`; keys come in the order of
/// [`Tree::Entries`].
pub fn json_dumps<T: Tree>(v: &T, indent: Option<usize>) -> String {
    let mut out = String::new();
    push_json(&mut out, v, indent, 0);
    out
}

/// Appends [`json_dumps`]`(v, indent)` to `out` as written `level` levels
/// deep in a larger document (its inner lines indented `level` more
/// times): a writer that streams a long list item by item.
pub fn json_dumps_into<T: Tree>(out: &mut String, v: &T, indent: Option<usize>, level: usize) {
    push_json(out, v, indent, level);
}

fn push_json<T: Tree>(out: &mut String, v: &T, indent: Option<usize>, level: usize) {
    match v.node() {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Node::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Node::Float(f) => push_float(out, f, NonFinite::Json),
        Node::Str(s) => push_json_str(out, s),
        Node::Array(items) => {
            push_items(out, ('[', ']'), items.iter(), indent, level, |o, v, l| {
                push_json(o, v, indent, l)
            })
        }
        Node::Object(entries) => push_items(out, ('{', '}'), entries, indent, level, |o, e, l| {
            let (k, v) = e.parts();
            push_json_str(o, k);
            o.push_str(": ");
            push_json(o, v, indent, l);
        }),
    }
}

/// The length in bytes of [`json_dumps`]`(v, indent)` were `v` written
/// `level` levels deep in a larger document (each of its lines indented
/// `level` more times), or `None` as soon as it passes `limit`: the size a
/// value takes on disk, found without writing it (a small deeply nested
/// value can grow a thousandfold when indented).
pub fn json_dumps_len<T: Tree>(
    v: &T,
    indent: Option<usize>,
    level: usize,
    limit: usize,
) -> Option<usize> {
    let mut len = 0;
    add_json_len(&mut len, v, indent, level, limit)?;
    Some(len)
}

fn add_json_len<T: Tree>(
    len: &mut usize,
    v: &T,
    indent: Option<usize>,
    level: usize,
    limit: usize,
) -> Option<()> {
    let add = |n: usize, len: &mut usize| {
        *len = len.saturating_add(n);
        (*len <= limit).then_some(())
    };
    // A newline and the indentation of `level`.
    let newline = |level: usize| indent.map_or(0, |n| 1 + n * level);
    let separator = if indent.is_some() { 1 } else { 2 };
    let mut scalar = String::new();
    match v.node() {
        Node::Array(items) => {
            add(1, len)?;
            for (i, x) in items.iter().enumerate() {
                add(if i > 0 { separator } else { 0 } + newline(level + 1), len)?;
                add_json_len(len, x, indent, level + 1, limit)?;
            }
            add(if items.is_empty() { 0 } else { newline(level) } + 1, len)
        }
        Node::Object(entries) => {
            add(1, len)?;
            let mut empty = true;
            for e in entries {
                let (k, x) = e.parts();
                scalar.clear();
                push_json_str(&mut scalar, k);
                add(if empty { 0 } else { separator } + newline(level + 1), len)?;
                add(scalar.len() + 2, len)?;
                add_json_len(len, x, indent, level + 1, limit)?;
                empty = false;
            }
            add(if empty { 0 } else { newline(level) } + 1, len)
        }
        _ => {
            push_json(&mut scalar, v, indent, level);
            add(scalar.len(), len)
        }
    }
}

/// The items of a list or dict between `brackets`, as json.dumps lays them out.
fn push_items<I>(
    out: &mut String,
    brackets: (char, char),
    items: impl Iterator<Item = I>,
    indent: Option<usize>,
    level: usize,
    mut item: impl FnMut(&mut String, I, usize),
) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * level));
        }
    };
    out.push(brackets.0);
    let mut empty = true;
    for x in items {
        if !empty {
            out.push_str(if indent.is_some() { "," } else { ", " });
        }
        empty = false;
        newline(out, level + 1);
        item(out, x, level + 1);
    }
    if !empty {
        newline(out, level);
    }
    out.push(brackets.1);
}

/// Python's `repr(v)`: `None`, `True`, `3`, `5e-05`, `nan`, `'text'`,
/// `['a', 1]`, `{'k': 1.0}`.
pub fn repr<T: Tree>(v: &T) -> String {
    let mut out = String::new();
    push_repr(&mut out, v);
    out
}

fn push_repr<T: Tree>(out: &mut String, v: &T) {
    match v.node() {
        Node::Null => out.push_str("None"),
        Node::Bool(b) => out.push_str(if b { "True" } else { "False" }),
        Node::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Node::Float(f) => push_float(out, f, NonFinite::Repr),
        Node::Str(s) => push_repr_str(out, s),
        Node::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                push_repr(out, item);
            }
            out.push(']');
        }
        Node::Object(entries) => {
            out.push('{');
            for (n, e) in entries.enumerate() {
                let (k, item) = e.parts();
                if n > 0 {
                    out.push_str(", ");
                }
                push_repr_str(out, k);
                out.push_str(": ");
                push_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// Python's `str(v)`: a string as it is, anything else as its [`repr`].
pub fn str<T: Tree>(v: &T) -> String {
    match v.node() {
        Node::Str(s) => s.to_string(),
        _ => repr(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dict that keeps insertion order, as the SDK's `Py`.
    enum Ordered {
        Null,
        Int(i128),
        Float(f64),
        Str(&'static str),
        List(Vec<Ordered>),
        Dict(Vec<(String, Ordered)>),
    }

    impl Tree for Ordered {
        type Entries<'a> = std::slice::Iter<'a, (String, Ordered)>;
        fn node(&self) -> Node<'_, Ordered> {
            match self {
                Ordered::Null => Node::Null,
                Ordered::Int(i) => Node::Int(*i),
                Ordered::Float(f) => Node::Float(*f),
                Ordered::Str(s) => Node::Str(s),
                Ordered::List(items) => Node::Array(items),
                Ordered::Dict(entries) => Node::Object(entries.iter()),
            }
        }
    }

    #[test]
    fn json_dumps_len_is_the_written_length_at_any_depth() {
        use Ordered::*;
        let values = [
            Null,
            Str("é\"x"),
            List(vec![]),
            Dict(vec![]),
            List(vec![Int(1), Float(0.5), List(vec![List(vec![Null])])]),
            Dict(vec![
                (
                    "a".into(),
                    List(vec![Int(1), Dict(vec![("b".into(), Str("c"))])]),
                ),
                ("d".into(), Dict(vec![])),
            ]),
        ];
        for v in &values {
            for indent in [None, Some(2), Some(4)] {
                for level in [0, 1, 5] {
                    let mut out = String::new();
                    push_json(&mut out, v, indent, level);
                    assert_eq!(
                        json_dumps_len(v, indent, level, usize::MAX),
                        Some(out.len()),
                        "{out}"
                    );
                    assert_eq!(json_dumps_len(v, indent, level, out.len()), Some(out.len()));
                    assert_eq!(json_dumps_len(v, indent, level, out.len() - 1), None);
                }
            }
        }
    }

    #[test]
    fn json_dumps_matches_python_indent_and_ascii_in_insertion_order() {
        use Ordered::*;
        let dict = |items: Vec<(&str, Ordered)>| {
            Dict(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        let v = dict(vec![
            ("loss", Float(1.5)),
            ("step", Int(3)),
            ("empty", dict(vec![])),
            ("eval", dict(vec![("loss", Float(2.0))])),
            (
                "l",
                List(vec![Str("é\"\u{1F600}\u{7f}"), Null, Float(f64::NAN)]),
            ),
        ]);
        assert_eq!(
            json_dumps(&v, Some(4)),
            "{\n    \"loss\": 1.5,\n    \"step\": 3,\n    \"empty\": {},\n    \"eval\": {\n        \"loss\": 2.0\n    },\n    \"l\": [\n        \"\\u00e9\\\"\\ud83d\\ude00\\u007f\",\n        null,\n        NaN\n    ]\n}"
        );
        assert_eq!(
            json_dumps(&v, None),
            "{\"loss\": 1.5, \"step\": 3, \"empty\": {}, \"eval\": {\"loss\": 2.0}, \"l\": [\"\\u00e9\\\"\\ud83d\\ude00\\u007f\", null, NaN]}"
        );
        assert_eq!(
            repr(&v),
            "{'loss': 1.5, 'step': 3, 'empty': {}, 'eval': {'loss': 2.0}, 'l': ['é\"\u{1F600}\\x7f', None, nan]}"
        );
    }
}
