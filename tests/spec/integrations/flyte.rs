//! flyte: the plugin's "Log History" deck must hold the table HF's
//! `FlyteCallback` puts in it, `TableRenderer().to_html(DataFrame(log_history))`:
//! read back with Python's `html.parser`, every header and cell against
//! `trainer_state.json`'s log history, and the table byte-equal to what
//! pandas itself writes for that history. Outside a Flyte task (no
//! `FLYTE_DECK_DIR`) and without the folder's grant, one clear error.

use crate::util::{plugin, readers_python, Run};
use serde_json::{json, Value};
use std::path::Path;
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
# pandas' int64 columns: ints (not flags) in every entry.
int_columns = {k for k in union if all(type(e.get(k)) is int for e in history)}
cells = 0
for entry, row in zip(history, t.rows):
    assert len(row) == len(t.headers), row
    for key, cell in zip(t.headers, row):
        cells += 1
        if key not in entry:
            assert cell == "NaN", (key, cell)
            continue
        v = entry[key]
        if isinstance(v, (bool, str)) or key in int_columns:
            assert cell == str(v), (key, cell, v)
        else:
            assert math.isclose(float(cell), v, rel_tol=1e-6, abs_tol=5e-7), (key, cell, v)
ordered = [{k: e[k] for k in t.headers if k in e} for e in history]
theirs = pd.DataFrame(ordered).to_html(classes="table-class", index=False)
print(json.dumps({"classes": t.classes, "columns": t.headers, "rows": len(t.rows), "cells": cells,
                  "pandas_equal": theirs in page, "pandas": theirs}))
"#;

/// Runs [`CHECK`] on the deck `page` and the log history of `state`;
/// asserts it passed and that pandas writes the same table; returns its report.
fn check(page: &Path, state: &Path) -> Value {
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(CHECK)
        .arg(page)
        .arg(state)
        .output()
        .expect("running the readers' python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the deck check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["classes"], "dataframe table-class");
    assert_eq!(
        report["pandas_equal"],
        true,
        "pandas writes:\n{}\nthe deck holds:\n{}",
        report["pandas"].as_str().unwrap(),
        std::fs::read_to_string(page).unwrap()
    );
    report
}

/// A regression run with `--report_to flyte`, logging every 5 steps and
/// evaluating every epoch, its deck in the folder `deck` of the run's.
fn deck_run(test: &str, deck: &str) -> (crate::util::Done, std::path::PathBuf) {
    let run = Run::regression(test);
    let deck = run.dir.join(deck);
    let done = run
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&["--report_to", "flyte"])
        .env("FLYTE_DECK_DIR", deck.to_str().unwrap())
        .ok();
    (done, deck)
}

#[test]
fn flyte_deck_is_the_log_history_table_pandas_writes() {
    let (done, deck) = deck_run("flyte_deck", "flyte deck");
    let report = check(
        &deck.join("log_history.html"),
        &done.out.join("trainer_state.json"),
    );
    assert_eq!(
        report["rows"], 8,
        "4 training logs, 3 evaluations, the summary"
    );
    let columns = report["columns"].as_array().unwrap();
    assert_eq!(columns[..3], ["loss", "grad_norm", "learning_rate"]);
    assert!(
        columns.iter().any(|c| c == "eval_loss") && columns.iter().any(|c| c == "train_runtime")
    );
}

#[test]
fn flyte_deck_formats_odd_columns_as_pandas_does() {
    // A replayed trace with the columns a regression run lacks: pandas'
    // scientific switch (a tiny value; a huge one in a long column), a
    // large value that stays fixed, ints with and without gaps, ints mixed
    // with floats, flags with and without gaps, and text to escape.
    let wasm = plugin("flyte");
    let run = Run::command(
        "flyte_replay",
        &[
            "replay",
            "trace.jsonl",
            wasm.to_str().unwrap(),
            "--config",
            "run.toml",
        ],
    );
    let logs = [
        json!({"loss": 0.5, "tiny": 1e-7, "big": 1e16, "mid": 1234567.0, "neg": -2.5,
               "count": 3, "count_gap": 7, "mixed": 1, "flag": true, "flag_gap": false,
               "note": "<b>a & \"b\"</b>"}),
        json!({"loss": 0.25, "tiny": 0.5, "mid": 0.25, "neg": 0.125, "count": 4,
               "mixed": 2.75, "flag": false, "note": "plain", "late": 4e-05}),
        json!({"loss": 1e-3, "tiny": 0.0, "big": 2.0, "count": 5, "mixed": 3,
               "flag": true, "flag_gap": true, "late": 3e-05}),
    ];
    let mut trace = vec![json!({"event": "on_train_begin", "global_step": 0})];
    let mut history = Vec::new();
    for (i, entry) in logs.iter().enumerate() {
        let step = 2 * i + 2;
        trace.push(json!({"event": "on_log", "global_step": step, "logs": entry}));
        let mut with_step = entry.clone();
        with_step["step"] = json!(step);
        history.push(with_step);
    }
    trace.push(json!({"event": "on_train_end", "global_step": 6}));
    let lines: Vec<String> = trace.iter().map(Value::to_string).collect();
    std::fs::write(run.dir.join("trace.jsonl"), lines.join("\n")).unwrap();
    std::fs::create_dir(run.dir.join("deck")).unwrap();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.flyte]\npath = {:?}\nwrite_dirs = {{ \"/flyte-deck\" = \"deck\" }}\n",
            wasm.to_str().unwrap()
        ),
    )
    .unwrap();
    run.ok();
    let state = run.dir.join("state.json");
    std::fs::write(&state, json!({ "log_history": history }).to_string()).unwrap();
    let report = check(&run.dir.join("deck/log_history.html"), &state);
    assert_eq!(report["rows"], 3);
    assert_eq!(report["cells"], 3 * 13);
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

/// The files below `dir`, by path relative to it, with their bytes.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

#[test]
fn flyte_syncs_each_checkpoint_to_the_tasks_checkpoint_folder() {
    // HF's on_save: cp.save(output_dir/checkpoint-N), which copies the
    // folder's files into the task's checkpoint folder; the last save's
    // files are there, byte for byte.
    let run = Run::regression("flyte_checkpoints");
    let (deck, cp) = (run.dir.join("deck"), run.dir.join("flyte checkpoint"));
    let done = run
        .args(&["--save_strategy", "steps", "--save_steps", "10"])
        .args(&["--report_to", "flyte"])
        .env("FLYTE_DECK_DIR", deck.to_str().unwrap())
        .env("FLYTE_CHECKPOINT_DIR", cp.to_str().unwrap())
        .ok();
    let last = *done.checkpoints().last().unwrap();
    let saved = tree(&done.out.join(format!("checkpoint-{last}")));
    assert!(
        saved.contains_key("trainer_state.json"),
        "{:?}",
        saved.keys()
    );
    assert_eq!(tree(&cp), saved, "the last checkpoint, synced whole");
    let said = done.stdout.clone() + &done.stderr;
    assert!(
        said.contains(&format!(
            "[flyte] syncing checkpoint in checkpoint-{last} to Flyte"
        )),
        "{said}"
    );
    // Without the variable, nothing is synced, and the run says so once;
    // the plugin is never granted output_dir.
    let run = Run::regression("flyte_no_checkpoints");
    let deck = run.dir.join("deck");
    let done = run
        .args(&["--save_strategy", "steps", "--save_steps", "10"])
        .args(&["--report_to", "flyte"])
        .env("FLYTE_DECK_DIR", deck.to_str().unwrap())
        .ok();
    let note = "FLYTE_CHECKPOINT_DIR is not set, so checkpoints are not synced to Flyte";
    let said = done.stdout + &done.stderr;
    assert_eq!(said.matches(note).count(), 1, "{said}");
}

/// flytekit's Python (`make test-env` puts flytekit and its deck renderer in
/// an environment of their own): `$TRAINBOX_FLYTE_PYTHON`, else
/// `$TRAINBOX_CACHE/flyte-env/bin/python3`.
fn flyte_python() -> std::path::PathBuf {
    let path = std::env::var_os("TRAINBOX_FLYTE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("TRAINBOX_CACHE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(&std::env::var("HOME").unwrap()).join(".cache/trainbox")
                });
            cache.join("flyte-env/bin/python3")
        });
    assert!(
        path.is_file(),
        "{} not found: run `make test-env` (or set TRAINBOX_FLYTE_PYTHON)",
        path.display()
    );
    path
}

/// Runs a real flytekit task locally that makes HF's deck,
/// `Deck("Log History", TableRenderer().to_html(pd.DataFrame(log_history)))`,
/// finds the `deck.html` flytekit writes, takes the table after its "Log
/// History" tab and compares it, header by header and cell by cell, with
/// the plugin's deck. The history's entries are given in the plugin's
/// column order (`trainer_state.json` sorts their keys).
const FLYTEKIT: &str = r#"
import glob, html.parser, json, os, sys, tempfile
ours_path, state = sys.argv[1:3]
os.environ["TMPDIR"] = tempfile.mkdtemp()
tempfile.tempdir = None
import pandas as pd
from flytekit import task, Deck
from flytekitplugins.deck.renderer import TableRenderer

class Tables(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.cell, self.row, self.inside = [], None, None, False
    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.inside = "table-class" in (dict(attrs).get("class") or "")
            if self.inside:
                self.tables.append({"headers": [], "rows": []})
        elif not self.inside:
            return
        elif tag == "tr":
            self.row = []
        elif tag in ("th", "td"):
            self.cell = ""
    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif tag in ("th", "td") and self.cell is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            t = self.tables[-1]
            (t["rows"] if t["headers"] else t["headers"]).extend([self.row] if t["headers"] else self.row)
            self.row = None

def tables(page):
    p = Tables()
    p.feed(page)
    return p.tables

ours = tables(open(ours_path, encoding="utf-8").read())
assert len(ours) == 1, len(ours)
ours = ours[0]
history = json.load(open(state))["log_history"]
ordered = [{k: e[k] for k in ours["headers"] if k in e} for e in history]

@task(enable_deck=True)
def train() -> None:
    Deck("Log History", TableRenderer().to_html(pd.DataFrame(ordered)))

train()
decks = glob.glob(os.path.join(os.environ["TMPDIR"], "**", "deck.html"), recursive=True)
assert len(decks) == 1, decks
page = open(decks[0], encoding="utf-8").read()
assert "Log History" in page
theirs = [t for t in tables(page) if t["headers"] == ours["headers"]]
assert len(theirs) == 1, [t["headers"] for t in tables(page)]
theirs = theirs[0]
assert theirs["rows"] == ours["rows"], (theirs["rows"], ours["rows"])
print(json.dumps({"columns": len(ours["headers"]), "rows": len(ours["rows"])}))
"#;

#[test]
fn flyte_deck_table_equals_a_real_flytekit_deck() {
    let (done, deck) = deck_run("flyte_flytekit", "deck");
    let out = Command::new(flyte_python())
        .arg("-c")
        .arg(FLYTEKIT)
        .arg(deck.join("log_history.html"))
        .arg(done.out.join("trainer_state.json"))
        .output()
        .expect("running flytekit's python");
    assert!(
        out.status.success(),
        "the flytekit comparison failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 8, "{report}");
}
