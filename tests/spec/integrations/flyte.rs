//! flyte: the plugin's "Log History" deck must hold the table HF's
//! `FlyteCallback` puts in it, `TableRenderer().to_html(DataFrame(log_history))`:
//! read back with Python's `html.parser`, every header and cell against
//! `trainer_state.json`'s log history, and the table byte-equal to what
//! pandas itself writes for that history. Outside a Flyte task (no
//! `FLYTE_DECK_DIR`) and without the folder's grant, one clear error.

use crate::util::{readers_python, Run};
use std::process::Command;

/// Parses the deck with `html.parser` and checks it against the log history
/// of `trainer_state.json`; then asks pandas for the same table, the
/// history's keys put in the deck's column order (the state file sorts them,
/// losing the order the trainer logged them in). Prints a JSON report.
const CHECK: &str = r#"
import html.parser, json, math, sys
import pandas as pd

deck, state = sys.argv[1:3]
history = json.load(open(state))["log_history"]
page = open(deck, encoding="utf-8").read()

class Table(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.headers, self.rows, self.cell, self.classes = [], [], None, None
    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.classes = dict(attrs).get("class")
        elif tag == "tr" and self.headers:
            self.rows.append([])
        elif tag in ("th", "td"):
            self.cell = ""
    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
    def handle_endtag(self, tag):
        if tag == "th":
            self.headers.append(self.cell)
        elif tag == "td":
            self.rows[-1].append(self.cell)
        if tag in ("th", "td"):
            self.cell = None

t = Table()
t.feed(page)
union = []
for entry in history:
    union += [k for k in entry if k not in union]
assert sorted(t.headers) == sorted(union), (t.headers, union)
# First appearance: a column first seen in a later entry comes later.
first = [min(i for i, e in enumerate(history) if h in e) for h in t.headers]
assert first == sorted(first), first
assert len(t.rows) == len(history), (len(t.rows), len(history))
cells = 0
for entry, row in zip(history, t.rows):
    assert len(row) == len(t.headers), row
    for key, cell in zip(t.headers, row):
        cells += 1
        if key not in entry:
            assert cell == "NaN", (key, cell)
            continue
        v = entry[key]
        if isinstance(v, int) and all(key in e for e in history):
            assert cell == str(v), (key, cell, v)
        else:
            assert math.isclose(float(cell), v, rel_tol=1e-6, abs_tol=5e-7), (key, cell, v)
ordered = [{k: e[k] for k in t.headers if k in e} for e in history]
theirs = pd.DataFrame(ordered).to_html(classes="table-class", index=False)
print(json.dumps({"classes": t.classes, "columns": t.headers, "rows": len(t.rows), "cells": cells,
                  "pandas_equal": theirs in page, "pandas": theirs}))
"#;

#[test]
fn flyte_deck_is_the_log_history_table_pandas_writes() {
    let run = Run::regression("flyte_deck");
    let deck = run.dir.join("flyte deck");
    let done = run
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&["--report_to", "flyte"])
        .env("FLYTE_DECK_DIR", deck.to_str().unwrap())
        .ok();
    let page = deck.join("log_history.html");
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(CHECK)
        .arg(&page)
        .arg(done.out.join("trainer_state.json"))
        .output()
        .expect("running the readers' python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the deck check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["classes"], "dataframe table-class");
    assert_eq!(
        report["rows"], 8,
        "4 training logs, 3 evaluations, the summary"
    );
    let columns = report["columns"].as_array().unwrap();
    assert_eq!(columns[..3], ["loss", "grad_norm", "learning_rate"]);
    assert!(
        columns.iter().any(|c| c == "eval_loss") && columns.iter().any(|c| c == "train_runtime")
    );
    assert_eq!(
        report["pandas_equal"],
        true,
        "pandas writes:\n{}\nthe deck holds:\n{}",
        report["pandas"].as_str().unwrap(),
        std::fs::read_to_string(&page).unwrap()
    );
}

#[test]
fn flyte_outside_a_flyte_task_fails_once_naming_the_variable() {
    let stderr = Run::regression("flyte_outside")
        .args(&["--report_to", "flyte"])
        .fails();
    let message = "--report_to flyte: FlyteCallback only works within a Flyte task; \
                   set FLYTE_DECK_DIR to the task's deck folder";
    assert_eq!(stderr.matches(message).count(), 1, "{stderr}");
}

#[test]
fn flyte_loaded_without_its_grant_fails_naming_it() {
    let stderr = Run::regression("flyte_no_grant").plugin("flyte").fails();
    assert!(
        stderr.contains(
            "plugin flyte asks for `write-dir /flyte-deck`, which is not granted; \
             add plugins.flyte.write_dirs = { \"/flyte-deck\" = \"<host dir>\" } to the run config"
        ),
        "{stderr}"
    );
}
