//! trackio: the plugin writes the run into the project's SQLite database in
//! `TRACKIO_DIR` (else `$HF_HOME/trackio`), read back by the real trackio
//! 0.43's own `SQLiteStorage` (projects, runs, logs by step, config) and
//! checked against `trainer_state.json`'s log history as HF's
//! `TrackioCallback` sends it. The same calls made by the real trackio
//! (HF's callback logic by hand) give the same schema, version, journal
//! mode, stored types, logs and config. A project keeps every run, the
//! real trackio's included, and a run of the same name continues as
//! `resume="allow"` does. Without the grant, with a Space, or with an
//! older database: one clear error.

use crate::util::{fresh_dir, readers_python, Done, Run};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// One Python program, two modes over `TRACKIO_DIR`:
/// `check SPEC`: reads project SPEC.project with trackio's `SQLiteStorage`
/// and asserts each run's logs and config against its states' log
/// histories; with SPEC.reference, has the real trackio log the same into
/// project `reference` and compares the two databases; prints a report.
/// `write SPEC`: the real trackio logs the rows of SPEC.state as run
/// SPEC.name of SPEC.project, as HF's callback calls it.
const TRACKIO: &str = r#"
import datetime, json, math, os, re, sqlite3, sys

mode, spec = sys.argv[1], json.loads(sys.argv[2])
tdir = os.environ["TRACKIO_DIR"]
SINGLE = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def expected(state):
    """TrackioCallback.on_log's trackio.log payload for each log of the history."""
    rows = []
    for entry in json.load(open(state))["log_history"]:
        logs = {k: v for k, v in entry.items() if k != "step" and k not in SINGLE}
        rows.append({**rewrite_logs(logs), "train/global_step": entry["step"]})
    return rows

def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) == type(b)

def same_rows(a, b):
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(same(x[k], y[k]) for k in x) for x, y in zip(a, b))

def hf_log(project, name, config, params, rows):
    """HF's TrackioCallback: setup (init, config.update, num_parameters), on_log, on_train_end."""
    import trackio
    trackio.init(project=project, name=name, space_id=None, resume="allow", private=None, bucket_id=None)
    trackio.config.update(config, allow_val_change=True)
    trackio.config["model/num_parameters"] = params
    for row in rows:
        trackio.log(row)
    trackio.finish()

def raw_facts(db):
    """The file as SQLite sees it, before trackio opens it."""
    wal_left = os.path.exists(db + "-wal")
    c = sqlite3.connect(db)
    facts = {
        "user_version": c.execute("PRAGMA user_version").fetchone()[0],
        "journal_mode": c.execute("PRAGMA journal_mode").fetchone()[0],
        "integrity": c.execute("PRAGMA integrity_check").fetchone()[0],
        "schema": sorted(c.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(), key=str),
        "types": sorted({r[0] for r in c.execute(
            "SELECT typeof(metrics) || ',' || typeof(log_id) || ',' || typeof(space_id) FROM metrics")})
                 + sorted({r[0] for r in c.execute("SELECT 'config:' || typeof(config) FROM configs")}),
        "ids": c.execute("SELECT run_id, log_id FROM metrics").fetchall(),
        "wal_left": wal_left,
    }
    c.close()
    assert all(HEX32.match(i) for row in facts["ids"] for i in row), facts["ids"]
    del facts["ids"]
    return facts

if mode == "write":
    hf_log(spec["project"], spec["name"], {"written_by": "trackio"}, 1, expected(spec["state"]))
    sys.exit(0)

project = spec["project"]
db = os.path.join(tdir, project + ".db")
ours = raw_facts(db)
assert ours["user_version"] == 2 and ours["journal_mode"] == "wal" and ours["integrity"] == "ok", ours
assert not ours["wal_left"], "a WAL file was left next to the database"

from trackio.sqlite_storage import SQLiteStorage as S
report = {"projects": S.get_projects(), "runs": S.get_runs(project), "logged": {}}
for run in spec["runs"]:
    name = run["name"]
    want = [row for state in run["states"] for row in expected(state)]
    logs = S.get_logs(project, name)
    steps = [log.pop("step") for log in logs]
    stamps = [log.pop("timestamp") for log in logs]
    assert steps == list(range(len(want))), (name, steps)
    assert stamps == sorted(stamps) and all(
        datetime.datetime.fromisoformat(t).utcoffset() == datetime.timedelta(0) for t in stamps), stamps
    assert same_rows(logs, want), (name, logs, want)
    report["logged"][name] = len(logs)
    config = S.get_run_config(project, name)
    if "config" in run:
        for k, v in run["config"].items():
            assert config.get(k) == v, (name, k, config.get(k), v)
        assert config["_Username"] is None and config["_Group"] is None, config
        datetime.datetime.fromisoformat(config["_Created"])
        assert config["allow_val_change"] is True, config
        report.setdefault("configs", {})[name] = config

if spec.get("reference"):
    run = spec["runs"][0]
    config = report["configs"][run["name"]]
    args = {k: v for k, v in config.items()
            if not k.startswith("_") and k not in ("allow_val_change", "model/num_parameters")}
    want = [row for state in run["states"] for row in expected(state)]
    hf_log("reference", run["name"], args, config["model/num_parameters"], want)
    theirs = raw_facts(os.path.join(tdir, "reference.db"))
    ours_now = raw_facts(db)
    for key in ("user_version", "journal_mode", "types"):
        assert ours[key] == theirs[key], (key, ours[key], theirs[key])
    assert ours["schema"] == theirs["schema"], [
        (a, b) for a, b in zip(ours["schema"], theirs["schema"]) if a != b] or (ours["schema"], theirs["schema"])
    assert ours_now["schema"] == ours["schema"], "trackio changed our schema when it read it"
    ref_logs = S.get_logs("reference", run["name"])
    for log in ref_logs:
        del log["timestamp"]
    our_logs = S.get_logs(project, run["name"])
    for log in our_logs:
        del log["timestamp"]
    assert same_rows(our_logs, ref_logs), (our_logs, ref_logs)
    ref_config = S.get_run_config("reference", run["name"])
    strip = lambda c: {k: v for k, v in c.items() if k != "_Created"}
    assert strip(ref_config) == strip(config), (ref_config, config)
    report["reference"] = {"tables": sum(1 for t in theirs["schema"] if t[0] == "table"),
                           "indexes": sum(1 for t in theirs["schema"] if t[0] == "index"),
                           "types": theirs["types"]}
    # What trackio's writer does on every write, on our database: nothing to migrate.
    S.init_db(project)
    again = raw_facts(db)
    assert again["schema"] == ours["schema"] and again["user_version"] == 2, again
print(json.dumps(report))
"#;

/// Runs [`TRACKIO`] in `mode` with `spec` over `trackio_dir` (no network,
/// a private `HF_HOME`); returns its report.
fn trackio(trackio_dir: &Path, mode: &str, spec: &Value) -> Value {
    let out = Command::new(readers_python())
        .args([
            "-c",
            &super::with_rewrite_logs(TRACKIO),
            mode,
            &spec.to_string(),
        ])
        .env("TRACKIO_DIR", trackio_dir)
        .env("HF_HOME", trackio_dir.join("hf-home"))
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("TRACKIO_SPACE_ID")
        .env_remove("SYSTEM")
        .output()
        .expect("running the readers' python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "trackio {mode} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    if mode == "write" {
        return Value::Null;
    }
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A training with `--report_to trackio` as run `name` into `trackio_dir`.
fn train(test: &str, trackio_dir: &Path, name: &str) -> Run {
    Run::regression(test)
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&["--run_name", name, "--report_to", "trackio"])
        .env("TRACKIO_DIR", trackio_dir.to_str().unwrap())
}

#[test]
fn trackio_run_is_read_back_by_trackio_and_matches_what_trackio_writes() {
    let dir = fresh_dir("trackio_run_dir").join("trackio dir");
    let done = train("trackio_run", &dir, "regression-run")
        // HF's TrainingArguments.project (`--plugin_config trackio.project` too).
        .args(&["--project", "my.project"])
        .ok();
    // trackio's file name for "my.project" (canonical_project_name).
    assert!(dir.join("myproject.db").is_file());
    let out = done.out.to_str().unwrap();
    let spec = json!({
        "project": "myproject",
        "runs": [{
            "name": "regression-run",
            "states": [done.out.join("trainer_state.json")],
            "config": {
                "run_name": "regression-run", "output_dir": out, "logging_steps": 5,
                "eval_strategy": "epoch", "report_to": ["trackio"], "learning_rate": 5e-5,
                "model/num_parameters": 2,
            },
        }],
        "reference": true,
    });
    let report = trackio(&dir, "check", &spec);
    assert_eq!(report["projects"], json!(["myproject"]));
    assert_eq!(report["runs"], json!(["regression-run"]));
    assert_eq!(
        report["logged"]["regression-run"], 8,
        "4 training logs, 3 evaluations, the summary's epoch"
    );
    assert_eq!(
        report["reference"],
        json!({"tables": 13, "indexes": 30, "types": ["blob,text,null", "config:blob"]}),
        "{report}"
    );
    assert!(
        done.stdout
            .contains("run regression-run of project my.project in"),
        "{}",
        done.stdout
    );
}

#[test]
fn trackio_project_keeps_every_run_and_continues_one_of_the_same_name() {
    let dir = fresh_dir("trackio_runs_dir");
    let first = train("trackio_runs_1", &dir, "first").ok();
    // The real trackio adds a run of its own to the database the plugin made.
    let spec = json!({"project": "huggingface", "name": "theirs",
                      "state": first.out.join("trainer_state.json")});
    trackio(&dir, "write", &spec);
    let second = train("trackio_runs_2", &dir, "second").ok();
    let again = train("trackio_runs_3", &dir, "first").ok();
    let state = |d: &Done| d.out.join("trainer_state.json");
    let spec = json!({
        "project": "huggingface",
        "runs": [
            {"name": "first", "states": [state(&first), state(&again)]},
            {"name": "theirs", "states": [state(&first)]},
            {"name": "second", "states": [state(&second)], "config": {"run_name": "second"}},
        ],
    });
    let report = trackio(&dir, "check", &spec);
    assert_eq!(report["runs"], json!(["first", "theirs", "second"]));
    assert_eq!(
        report["logged"],
        json!({"first": 16, "theirs": 8, "second": 8}),
        "the run named again continues after its 8 rows"
    );
}

#[test]
fn trackio_dir_defaults_to_hf_home_and_an_older_database_is_refused() {
    let run = Run::regression("trackio_old_schema");
    let home = run.dir.join("hf home");
    std::fs::create_dir_all(home.join("trackio")).unwrap();
    let db = home.join("trackio/huggingface.db");
    let made = Command::new(readers_python())
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute('CREATE TABLE metrics (id INTEGER PRIMARY KEY, run_name TEXT)'); \
             c.execute('PRAGMA user_version = 1'); c.commit()",
            db.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let stderr = run
        .args(&["--report_to", "trackio"])
        .env("TRACKIO_DIR", "")
        .env("HF_HOME", home.to_str().unwrap())
        .fails();
    let canonical = home.canonicalize().unwrap();
    let message = format!(
        "{}/trackio/huggingface.db is a trackio database at schema version 1, older than trackio 0.43's 2; \
         let trackio 0.43 migrate it first",
        canonical.display()
    );
    assert_eq!(stderr.matches(&message).count(), 1, "{stderr}");
}

#[test]
fn trackio_with_a_space_fails_once_naming_the_variable() {
    let run = Run::regression("trackio_space");
    let dir = run.dir.join("trackio");
    let stderr = run
        .args(&["--report_to", "trackio"])
        .env("TRACKIO_DIR", dir.to_str().unwrap())
        .env("TRACKIO_SPACE_ID", "someone/space")
        .fails();
    let message =
        "TRACKIO_SPACE_ID=someone/space: trainbox's trackio writes the local project database only";
    assert_eq!(stderr.matches(message).count(), 1, "{stderr}");
    assert!(!dir.join("huggingface.db").exists());
}

#[test]
fn trackio_loaded_without_its_grant_fails_naming_it() {
    let stderr = Run::regression("trackio_no_grant")
        .plugin("trackio")
        .fails();
    assert!(
        stderr.contains(
            "plugin trackio asks for `write-dir /trackio`, which is not granted; \
             add plugins.trackio.write_dirs = { \"/trackio\" = \"<host dir>\" } to the run config"
        ),
        "{stderr}"
    );
}
