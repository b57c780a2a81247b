//! tensorboard: the plugin's event files are read by TensorBoard's own
//! `EventAccumulator` (tensorboard 2.21, which checks every record's CRC and
//! silently stops at a bad one, so counts are asserted exactly) and must
//! hold HF's `TensorBoardCallback` run: the `args` text, then every logged
//! number as a float32 scalar under `rewrite_logs` names at `global_step`,
//! strings as text summaries. Every record must also re-serialize to the
//! same bytes through tensorboard's protobuf classes.

use crate::util::{plugin, readers_python, Run};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Reads a log dir with `EventAccumulator`; prints what it found as JSON.
/// With a second argument, also reads a copy of the first event file with
/// one payload byte flipped halfway through, and counts its scalars.
const READ_EVENTS: &str = r#"
import datetime, glob, json, os, shutil, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2

def accumulate(d):
    ea = EventAccumulator(d, size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    return ea

d = sys.argv[1]
ea = accumulate(d)
tags = ea.Tags()
out = {
    "file_version": ea.file_version,
    "scalars": {t: [[e.step, e.value, e.wall_time] for e in ea.Scalars(t)] for t in tags["scalars"]},
    "texts": {t: [[e.step, b"".join(e.tensor_proto.string_val).decode(), e.tensor_proto.dtype,
                   list(e.tensor_proto.tensor_shape.dim[i].size for i in range(len(e.tensor_proto.tensor_shape.dim)))]
                  for e in ea.Tensors(t)] for t in tags["tensors"]},
    "plugins": {t: ea.SummaryMetadata(t).plugin_data.plugin_name for t in tags["tensors"]},
    "files": sorted(os.listdir(d)),
}
files = sorted(glob.glob(os.path.join(d, "events.out.tfevents.*")))
records, canonical = 0, True
for f in files:
    data = open(f, "rb").read()
    i = 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        payload = data[i + 12:i + 12 + n]
        i += 16 + n
        ev = event_pb2.Event()
        ev.ParseFromString(payload)
        canonical &= ev.SerializeToString() == payload
        records += 1
out["records"], out["canonical"] = records, canonical
seconds = int(os.path.basename(files[0]).split(".")[3])
out["utc_stamp"] = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%b%d_%H-%M-%S")
if len(sys.argv) > 2:
    bad = sys.argv[2]
    shutil.rmtree(bad, ignore_errors=True)
    os.makedirs(bad)
    data = bytearray(open(files[0], "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(os.path.join(bad, os.path.basename(files[0])), "wb").write(bytes(data))
    out["corrupt_scalars"] = sum(len(accumulate(bad).Scalars(t)) for t in accumulate(bad).Tags()["scalars"])
print(json.dumps(out))
"#;

fn read_events(dir: &Path, corrupt_copy: Option<&Path>) -> Value {
    let py = readers_python();
    let out = Command::new(&py)
        .arg("-c")
        .arg(READ_EVENTS)
        .arg(dir)
        .args(corrupt_copy)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reading {} with EventAccumulator failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .expect("reading /proc/sys/kernel/hostname")
}

/// HF's `rewrite_logs` name of a key.
fn rewrite(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("eval_") {
        format!("eval/{rest}")
    } else if let Some(rest) = key.strip_prefix("test_") {
        format!("test/{rest}")
    } else {
        format!("train/{key}")
    }
}

/// The scalars HF would write for these `(global_step, logs)`: tag →
/// `[step, float32 value]`, in order.
fn expected_scalars(logs: &[(u64, Value)]) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (step, entry) in logs {
        for (key, value) in entry.as_object().unwrap() {
            let v = match value {
                Value::Number(n) => n.as_f64().unwrap() as f32,
                Value::Bool(b) => f32::from(u8::from(*b)),
                _ => continue,
            };
            let points = out.entry(rewrite(key)).or_insert_with(|| json!([]));
            points.as_array_mut().unwrap().push(json!([step, v]));
        }
    }
    out
}

/// The found scalars as tag → `[step, float32 value]`.
fn found_scalars(found: &Value) -> serde_json::Map<String, Value> {
    found["scalars"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(tag, points)| {
            let points: Vec<Value> = points
                .as_array()
                .unwrap()
                .iter()
                .map(|p| json!([p[0], p[1].as_f64().unwrap() as f32]))
                .collect();
            (tag.clone(), Value::Array(points))
        })
        .collect()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn tensorboard_events_are_read_by_event_accumulator_with_exact_counts() {
    let run = Run::regression("tensorboard_events");
    let logdir = run.dir.join("tb");
    let started = now();
    let done = run
        .clone()
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&[
            "--report_to",
            "tensorboard",
            "--plugin_config",
            "recorder.values=true",
        ])
        .env("TENSORBOARD_LOGGING_DIR", logdir.to_str().unwrap())
        .ok();
    let logs: Vec<(u64, Value)> = done
        .events()
        .into_iter()
        .filter(|e| e["event"] == "on_log")
        .map(|e| (e["global_step"].as_u64().unwrap(), e["logs"].clone()))
        .collect();
    assert_eq!(logs.len(), 8, "4 training logs, 3 evaluations, the summary");

    let found = read_events(&logdir, Some(&run.dir.join("corrupt")));
    // TENSORBOARD_LOGGING_DIR holds the events itself: one file, no run folder.
    let files = found["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].as_str().unwrap();
    let parts: Vec<&str> = name.split('.').collect();
    assert_eq!(&parts[..3], ["events", "out", "tfevents"], "{name}");
    assert_eq!(parts[3].len(), 10, "%010d seconds: {name}");
    let seconds: f64 = parts[3].parse().unwrap();
    assert!((started.floor()..=now()).contains(&seconds), "{name}");
    assert_eq!(parts[4..parts.len() - 2].join("."), host_name(), "{name}");
    assert!(parts[parts.len() - 2].parse::<u32>().is_ok(), "pid: {name}");
    assert_eq!(
        parts[parts.len() - 1],
        "0",
        "the first writer's uid: {name}"
    );

    assert_eq!(found["file_version"], 2.0);
    assert_eq!(found_scalars(&found), expected_scalars(&logs));
    let scalars: usize = logs.iter().map(|(_, l)| l.as_object().unwrap().len()).sum();
    assert_eq!(scalars, 4 * 4 + 3 * 5 + 6, "every value is a number");
    assert_eq!(
        found["records"],
        1 + 1 + scalars,
        "file version, args, one event per value"
    );
    assert_eq!(
        found["canonical"], true,
        "records re-serialize to the same bytes"
    );
    for points in found["scalars"].as_object().unwrap().values() {
        for p in points.as_array().unwrap() {
            let wall = p[2].as_f64().unwrap();
            assert!(started - 1.0 <= wall && wall <= now(), "wall time {wall}");
        }
    }

    // The args text: HF's args.to_json_string(), a DT_STRING [1] tensor of the text plugin.
    assert_eq!(
        found["texts"].as_object().unwrap().len(),
        1,
        "{}",
        found["texts"]
    );
    assert_eq!(found["plugins"]["args/text_summary"], "text");
    let args = &found["texts"]["args/text_summary"][0];
    assert_eq!(args[0], 0, "add_text without a step");
    assert_eq!((&args[2], &args[3]), (&json!(7), &json!([1])));
    let text = args[1].as_str().unwrap();
    assert!(
        text.starts_with("{\n  \"") && text.ends_with("\n}"),
        "indent 2: {text}"
    );
    let parsed: Value = serde_json::from_str(text).unwrap();
    assert_eq!(parsed["learning_rate"], 5e-05);
    assert!(
        text.contains("\"learning_rate\": 5e-05,"),
        "Python's float repr: {text}"
    );
    assert_eq!(parsed["report_to"], json!(["tensorboard"]));
    assert_eq!(parsed["logging_steps"], 5.0);
    assert_eq!(parsed["output_dir"], done.out.to_str().unwrap());

    // A flipped byte: the reader stops there, silently; the count drops.
    let corrupt = found["corrupt_scalars"].as_u64().unwrap() as usize;
    assert!(0 < corrupt && corrupt < scalars, "{corrupt} of {scalars}");
}

#[test]
fn tensorboard_default_logdir_is_hfs_run_folder_under_output_dir_runs() {
    if std::env::var_os("TENSORBOARD_LOGGING_DIR").is_some() {
        panic!("unset TENSORBOARD_LOGGING_DIR to run this test: it checks the default log dir");
    }
    let done = Run::regression("tensorboard_default_dir")
        .args(&["--logging_steps", "8", "--report_to", "tensorboard"])
        .ok();
    let runs = done.out.join("runs");
    let folders: Vec<String> = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let found = read_events(&runs.join(&folders[0]), None);
    assert_eq!(
        folders[0],
        format!("{}_{}", found["utc_stamp"].as_str().unwrap(), host_name()),
        "<%b%d_%H-%M-%S>_<hostname>, the time of the event file, in UTC"
    );
    let tags: Vec<&String> = found["scalars"].as_object().unwrap().keys().collect();
    assert!(tags.contains(&&"train/loss".to_string()), "{tags:?}");
    assert_eq!(
        found["scalars"]["train/loss"].as_array().unwrap().len(),
        3,
        "steps 8, 16, 24"
    );
    assert_eq!(found["canonical"], true);
}

#[test]
fn tensorboard_writes_strings_as_text_bools_as_scalars_and_reopens_after_train_end() {
    // A replayed trace: values a training run does not log, and a log after
    // train end, which HF writes to a new event file in the same log dir.
    let wasm = plugin("tensorboard");
    let run = Run::command(
        "tensorboard_replay",
        &[
            "replay",
            "trace.jsonl",
            wasm.to_str().unwrap(),
            "--config",
            "run.toml",
        ],
    )
    .args(&["--plugin_config", "tensorboard.logdir_is_run=true"])
    .args(&["--plugin_config", "tensorboard.hostname=testhost"])
    .args(&["--plugin_config", "tensorboard.pid=4242"]);
    let trace = [
        json!({"event": "on_train_begin", "global_step": 0, "max_steps": 4}),
        json!({"event": "on_log", "global_step": 2, "max_steps": 4,
               "logs": {"epoch": 0.5, "flag": true, "loss": 0.25, "note": "tab\tand \u{e9}", "total": 7}}),
        json!({"event": "on_log", "global_step": 4, "max_steps": 4,
               "logs": {"eval_loss": 1e-05, "test_acc": 1e16}}),
        json!({"event": "on_train_end", "global_step": 4, "max_steps": 4}),
        json!({"event": "on_log", "global_step": 4, "max_steps": 4, "logs": {"eval_loss": 0.5}}),
    ];
    let lines: Vec<String> = trace.iter().map(Value::to_string).collect();
    std::fs::write(run.dir.join("trace.jsonl"), lines.join("\n")).unwrap();
    std::fs::create_dir(run.dir.join("tb")).unwrap();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.tensorboard]\npath = {:?}\nwrite_dirs = {{ \"/tensorboard\" = \"tb\" }}\nenv = [\"TENSORBOARD_LOGGING_DIR\"]\n",
            wasm.to_str().unwrap()
        ),
    )
    .unwrap();
    run.ok();
    let found = read_events(&run.dir.join("tb"), None);

    let files: Vec<&str> = found["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "a new file after train end: {files:?}");
    for (file, uid) in files.iter().zip(["0", "1"]) {
        assert!(file.ends_with(&format!(".testhost.4242.{uid}")), "{file}");
    }
    let logs = [
        (2, trace[1]["logs"].clone()),
        (4, trace[2]["logs"].clone()),
        (4, trace[4]["logs"].clone()),
    ];
    assert_eq!(found_scalars(&found), expected_scalars(&logs));
    assert_eq!(
        found["scalars"]["train/flag"][0][1], 1.0,
        "a bool is an int"
    );
    assert_eq!(found["scalars"]["test/acc"][0][1], 1e16_f32 as f64);
    let note = &found["texts"]["train/note/text_summary"][0];
    assert_eq!((&note[0], &note[1]), (&json!(2), &json!("tab\tand \u{e9}")));
    assert_eq!(found["plugins"]["train/note/text_summary"], "text");
    assert_eq!(
        found["texts"].as_object().unwrap().len(),
        2,
        "args and note"
    );
    assert_eq!(found["records"], 2 + 1 + 5 + 2 + 1);
    assert_eq!(found["canonical"], true);
}

#[test]
fn tensorboard_loaded_without_grants_fails_at_load_naming_the_grant() {
    let stderr = Run::regression("tensorboard_no_grants")
        .plugin("tensorboard")
        .fails();
    assert!(
        stderr.contains(
            "plugin tensorboard asks for `write-dir /tensorboard`, which is not granted; \
             add plugins.tensorboard.write_dirs = { \"/tensorboard\" = \"<host dir>\" } to the run config"
        ),
        "{stderr}"
    );
}
