//! JSON lines and CSV: one object (or row) per sample; numbers, booleans,
//! lists of them (in CSV a cell such as `[1, 2, 3]`), and text, which is
//! recorded so that asking for it names the fix.

use super::builder::{Builder, Scalar};
use super::column::Column;
use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::io::BufRead;

/// A column of the file that was not read, and why: the error given
/// when it is asked for (text, a type trainbox does not batch, or not
/// among the columns asked for).
#[derive(Debug, Clone)]
pub(super) struct Unread {
    pub name: String,
    pub why: String,
}

/// The columns read, in the file's order, and those not read.
pub(super) type Read = (Vec<Column>, Vec<Unread>);

/// Which columns a reader decodes: all, or those named.
pub(super) type Keep<'a> = Option<&'a [String]>;

/// Whether column `name` is to be decoded.
pub(super) fn kept(keep: Keep, name: &str) -> bool {
    keep.is_none_or(|k| k.iter().any(|n| n == name))
}

/// The reason of a column left out by [`Keep`].
pub(super) fn not_asked(name: &str) -> String {
    format!("column '{name}' was not read (it is not among the columns asked for)")
}

/// Columns under construction, in the order first seen.
struct Table {
    names: Vec<String>,
    builders: Vec<Builder>,
    /// Why a column is not read, once known.
    unread: Vec<Option<String>>,
}

impl Table {
    fn new(names: Vec<String>, unit: &'static str, keep: Keep) -> Table {
        Table {
            builders: names.iter().map(|n| Builder::new(n, unit)).collect(),
            unread: names
                .iter()
                .map(|n| (!kept(keep, n)).then(|| not_asked(n)))
                .collect(),
            names,
        }
    }

    /// One cell of column `c`. A value trainbox does not batch (text, an
    /// object, a list of text or of lists) leaves the column unread: an
    /// error only if the column is asked for.
    fn cell(&mut self, c: usize, v: &Value) -> Result<()> {
        if self.unread[c].is_some() {
            return Ok(());
        }
        if let Some(why) = unreadable(&self.names[c], v) {
            self.unread[c] = Some(why);
            return Ok(());
        }
        match v {
            Value::Array(items) => {
                let vals = items
                    .iter()
                    .map(|x| self.scalar(c, x))
                    .collect::<Result<Vec<_>>>()?;
                self.builders[c].push_list(vals)?
            }
            v => {
                let s = self.scalar(c, v)?;
                self.builders[c].push(s)?
            }
        }
        Ok(())
    }

    fn scalar(&self, c: usize, v: &Value) -> Result<Scalar> {
        Ok(match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(_) => bail!("{}", text_error(&self.names[c])),
            _ => bail!(
                "column '{}' holds nested lists or objects; trainbox reads numbers, booleans and \
                 lists of them",
                self.names[c]
            ),
        })
    }

    fn finish(self) -> Result<Read> {
        let mut columns = Vec::new();
        let mut unread = Vec::new();
        for ((name, b), why) in self.names.into_iter().zip(self.builders).zip(self.unread) {
            match why {
                Some(why) => unread.push(Unread { name, why }),
                None => columns.push(b.finish()?),
            }
        }
        Ok((columns, unread))
    }
}

/// Why a JSON value cannot go into a batch, if it cannot.
fn unreadable(name: &str, v: &Value) -> Option<String> {
    let nested = || {
        format!(
            "column '{name}' holds nested lists or objects; trainbox reads numbers, booleans and \
             lists of them"
        )
    };
    match v {
        Value::String(_) => Some(text_error(name)),
        Value::Object(_) => Some(nested()),
        Value::Array(items) if items.iter().any(Value::is_string) => Some(text_error(name)),
        Value::Array(items) if items.iter().any(|x| x.is_array() || x.is_object()) => {
            Some(nested())
        }
        _ => None,
    }
}

/// The error for a column of strings.
pub(super) fn text_error(name: &str) -> String {
    format!(
        "column '{name}' holds text; trainbox needs token ids, not text: tokenize it in Python \
         first (e.g. `dataset.map(lambda b: tokenizer(b[\"{name}\"]), batched=True)`) and write \
         the `input_ids` column"
    )
}

/// JSON lines: one object per line, the same keys on every line.
pub(super) fn read_jsonl(file: std::fs::File, keep: Keep) -> Result<Read> {
    let mut reader = std::io::BufReader::new(file);
    if starts_with_bracket(&mut reader)? {
        return read_json_array(reader, keep);
    }
    let mut table: Option<Table> = None;
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|e| {
            anyhow!(
                "line {} is not valid JSON ({e}); write one JSON object per line \
                 (e.g. `dataset.to_json(path)`), or one JSON array of objects",
                n + 1
            )
        })?;
        add_object(&mut table, &value, n + 1, "line", keep)?;
    }
    table
        .map(Table::finish)
        .unwrap_or(Ok((Vec::new(), Vec::new())))
}

/// Sample `n` (1-based; a `unit` of the file: line or item), one JSON
/// object whose keys are the columns, the same keys as the first.
fn add_object(
    table: &mut Option<Table>,
    value: &Value,
    n: usize,
    unit: &'static str,
    keep: Keep,
) -> Result<()> {
    let Value::Object(obj) = value else {
        bail!("{unit} {n} is not a JSON object; write one object per sample, keys = column names");
    };
    let t = table.get_or_insert_with(|| Table::new(obj.keys().cloned().collect(), unit, keep));
    if obj.len() != t.names.len() || !t.names.iter().all(|k| obj.contains_key(k)) {
        let keys: Vec<&String> = obj.keys().collect();
        bail!(
            "{unit} {n} has keys {keys:?}, {unit} 1 has {:?}; every {unit} needs the same columns \
             (mismatched lengths)",
            t.names
        );
    }
    for c in 0..t.names.len() {
        t.cell(c, &obj[&t.names[c]])
            .map_err(|e| anyhow!("{unit} {n}: {e:#}"))?;
    }
    Ok(())
}

/// Whether the first character that is not white space is `[`.
fn starts_with_bracket(reader: &mut impl BufRead) -> Result<bool> {
    loop {
        let buf = reader.fill_buf()?;
        let Some(at) = buf.iter().position(|b| !b.is_ascii_whitespace()) else {
            if buf.is_empty() {
                return Ok(false);
            }
            let n = buf.len();
            reader.consume(n);
            continue;
        };
        let bracket = buf[at] == b'[';
        reader.consume(at);
        return Ok(bracket);
    }
}

/// A JSON document that is one array of objects (`json.dump(records, f)`;
/// HF's json loader reads it too).
fn read_json_array(reader: impl std::io::Read, keep: Keep) -> Result<Read> {
    let rows: Vec<Value> = serde_json::from_reader(reader).map_err(|e| {
        anyhow!("not a valid JSON array ({e}); write one array of objects, or JSON lines")
    })?;
    let mut table: Option<Table> = None;
    for (n, row) in rows.iter().enumerate() {
        add_object(&mut table, row, n + 1, "item", keep)?;
    }
    table
        .map(Table::finish)
        .unwrap_or(Ok((Vec::new(), Vec::new())))
}

/// CSV with a header row; an empty cell is a missing value.
pub(super) fn read_csv(file: std::fs::File, keep: Keep) -> Result<Read> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let names: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let mut table = Table::new(names, "row", keep);
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            anyhow!("{e}; every row needs one value per column of the header (mismatched lengths)")
        })?;
        for (c, field) in record.iter().enumerate() {
            match csv_value(field) {
                Ok(v) => table.cell(c, &v),
                Err(_) if table.unread[c].is_some() => Ok(()),
                Err(x) => table.builders[c].push(Scalar::Float(x)),
            }
            .map_err(|e| anyhow!("row {}: {e:#}", n + 1))?;
        }
    }
    table.finish()
}

/// A CSV cell as JSON: numbers, booleans (`True` as pandas writes it),
/// lists (`[1, 2]`), empty as missing; or a float JSON cannot hold (NaN,
/// infinities).
fn csv_value(field: &str) -> std::result::Result<Value, f64> {
    let f = field.trim();
    match f {
        "" => return Ok(Value::Null),
        "True" | "true" => return Ok(Value::Bool(true)),
        "False" | "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Ok(v @ (Value::Number(_) | Value::Array(_))) = serde_json::from_str::<Value>(f) {
        return Ok(v);
    }
    match f.parse::<f64>() {
        Ok(x) => Err(x),
        _ => Ok(Value::String(f.to_string())),
    }
}
