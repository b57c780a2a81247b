//! clearml: the plugin's offline session (`<output_dir>/clearml/offline/
//! offline-<id>.zip`) read with clearml 2.1.12 itself: every scalar event
//! accepted by `MetricsScalarEvent(**event)` and every console line by
//! `TaskLogEvent(**event)` (type-checked constructors), and its `task.json`
//! hyperparameters and scalar events equal to those of a real clearml
//! offline session (`CLEARML_OFFLINE_MODE=1`, a temporary home and cache,
//! no network) fed as HF's `ClearMLCallback` feeds it: HF's own
//! `TrainingArguments` built by transformers from the same flags, enums and
//! all, then the run's logs. Without its grant the plugin does not load.

use crate::util::{readers_python, run_torch_python, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// HF's `TrainingArguments(**flags)`, each field by `getattr` as
/// `_copy_training_args_as_hparams` reads it; an enum as its class, member
/// and members (`argv[1]`: the flags as JSON).
const HF_ARGS: &str = r#"
import dataclasses, enum, json, sys
from transformers import TrainingArguments
args = TrainingArguments(**json.loads(sys.argv[1]))
out = {}
for f in dataclasses.fields(args):
    if not f.init or f.name.endswith("_token"):
        continue
    v = getattr(args, f.name)
    if isinstance(v, enum.Enum):
        v = {"__enum__": type(v).__name__, "name": v.name, "members": [[m.name, m.value] for m in type(v)]}
    try:
        json.dumps(v)
    except TypeError:
        v = {"__unencodable__": repr(v)}
    out[f.name] = v
print(json.dumps(out))
"#;

/// Type-checks the plugin's events with clearml's classes, runs a real
/// offline session as HF would, and reports both sides.
const REFERENCE: &str = r#"
import enum, glob, json, os, sys, zipfile
ours_zip, trace, hf_args, home = sys.argv[1:5]
os.environ.update(HOME=home, CLEARML_OFFLINE_MODE="1", CLEARML_CACHE_DIR=os.path.join(home, "cache"))
from clearml import Task
from clearml.backend_api.services import events as api
from clearml.utilities.proxy_object import flatten_dictionary

def session(path):
    z = zipfile.ZipFile(path)
    lines = lambda n: [e for l in z.read(n).decode().splitlines() for e in json.loads(l)]
    return sorted(z.namelist()), json.loads(z.read("task.json")), lines("metrics.jsonl"), lines("log.jsonl")

names, task, scalars, logs = session(ours_zip)
for e in scalars:
    api.MetricsScalarEvent(**e)
for e in logs:
    api.TaskLogEvent(**e)

section = task["hyperparams"]["Transformers"]
hf = json.load(open(hf_args))
def value(v):
    if isinstance(v, dict) and "__enum__" in v:
        return enum.Enum(v["__enum__"], v["members"], type=str)[v["name"]]
    return v
fed = {k: value(hf[k]) for k in section if k in hf}

real = Task.init(project_name=os.getenv("CLEARML_PROJECT", "HuggingFace Transformers"),
                 task_name=os.getenv("CLEARML_TASK", "Trainer"),
                 auto_connect_frameworks={"tensorboard": False, "pytorch": False}, output_uri=True)
real._arguments.copy_from_dict({str(k): v for k, v in flatten_dictionary(fed).items()}, prefix="Transformers")
real.set_parameter(name="Transformers/_ignore_hparams_ui_overrides_", value=True, value_type=bool,
    description=("If True, ignore Transformers hyperparameters overrides done in the UI/backend "
                 + "when running remotely. Otherwise, the overrides will be applied when running remotely"))
log = real.get_logger()
single = ["train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos", "epoch"]
for e in map(json.loads, open(trace)):
    if e["event"] != "on_log":
        continue
    for k, v in e["logs"].items():
        if not isinstance(v, (int, float)):
            continue
        if k in single:
            log.report_single_value(name=k, value=v)
        elif k.startswith("eval_"):
            log.report_scalar(title="eval", series=k[5:], value=v, iteration=e["global_step"])
        elif k.startswith("test_"):
            log.report_scalar(title="test", series=k[5:], value=v, iteration=e["global_step"])
        else:
            log.report_scalar(title="train", series=k, value=v, iteration=e["global_step"])
real.close()
(real_zip,) = glob.glob(os.path.join(home, "cache", "offline", "*.zip"))
r_names, r_task, r_scalars, _ = session(real_zip)
key = lambda e: (e["metric"], e["variant"], e["iter"], e["value"])
print(json.dumps({
    "names": [names, r_names],
    "not_hf_fields": sorted(k for k in section if k not in hf and k != "_ignore_hparams_ui_overrides_"),
    "hyperparams_differ": {k: [section[k], r_task["hyperparams"]["Transformers"].get(k)]
                           for k in section if section[k] != r_task["hyperparams"]["Transformers"].get(k)},
    "task": [{k: task[k] for k in ("name", "project_name", "type")},
             {k: r_task[k] for k in ("name", "project_name", "type")}],
    "task_keys_missing": sorted(set(r_task) - set(task)),
    "task_keys_extra": sorted(set(task) - set(r_task)),
    "scalars": [sorted(map(key, scalars)), sorted(map(key, r_scalars))],
    "event_keys": [sorted({tuple(sorted(e)) for e in scalars}), sorted({tuple(sorted(e)) for e in r_scalars})],
    "own_id": all(e["task"] == task["id"] for e in scalars + logs),
    "id": task["id"],
    "hf_fields": len(hf),
    "ours": len(section),
}))
"#;

/// The one `offline-*.zip` in `dir`.
fn the_zip(dir: &Path) -> PathBuf {
    let zips: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    assert_eq!(zips.len(), 1, "{zips:?}");
    zips[0].clone()
}

#[test]
fn clearml_session_is_clearmls_own() {
    let flags = [
        "--logging_steps",
        "5",
        "--eval_strategy",
        "epoch",
        "--lr_scheduler_type",
        "cosine",
    ];
    let done = Run::regression("clearml_run")
        .args(&flags)
        .args(&["--report_to", "clearml"])
        .args(&["--plugin_config", "recorder.values=true"])
        .env("CLEARML_OFFLINE_MODE", "1")
        .env("CLEARML_PROJECT", "trainbox tests")
        .env("CLEARML_TASK", "regression")
        .ok();
    let dir = done.out.join("clearml/offline");
    let zip = the_zip(&dir);
    let id = zip.file_stem().unwrap().to_str().unwrap().to_string();
    assert!(
        id.len() == 40 && id.starts_with("offline-") && dir.join(&id).is_dir(),
        "{id}"
    );
    assert!(
        done.stdout.contains(&format!(
            "ClearML Task: Offline session stored in {}.zip",
            dir.canonicalize().unwrap().join(&id).display()
        )),
        "{}",
        done.stdout
    );

    // HF's arguments for the same flags, from transformers itself.
    let hf_flags = serde_json::json!({
        "output_dir": done.out.to_str().unwrap(),
        "logging_steps": 5,
        "eval_strategy": "epoch",
        "lr_scheduler_type": "cosine",
        "report_to": ["clearml"],
        "disable_tqdm": true,
    });
    let hf_args = done.out.join("hf_args.json");
    let dumped = run_torch_python(HF_ARGS, &[Path::new(&hf_flags.to_string())]);
    std::fs::write(&hf_args, dumped).unwrap();

    let home = done.out.parent().unwrap().join("clearml-home");
    std::fs::create_dir_all(&home).unwrap();
    let trace = done.out.join("plugins/recorder/events.jsonl");
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(REFERENCE)
        .args([&zip, &trace, &hf_args, &home])
        .env("CLEARML_PROJECT", "trainbox tests")
        .env("CLEARML_TASK", "regression")
        .output()
        .expect("running the clearml reference");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the clearml reference failed (an event clearml rejects?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));

    assert_eq!(r["names"][0], r["names"][1], "the zip's files");
    assert_eq!(r["not_hf_fields"], serde_json::json!([]), "fields HF lacks");
    assert_eq!(
        r["hyperparams_differ"],
        serde_json::json!({}),
        "hyperparams: [ours, clearml's]"
    );
    assert_eq!(r["task"][0], r["task"][1]);
    assert_eq!(r["task"][0]["project_name"], "trainbox tests");
    assert_eq!(r["task"][0]["name"], "regression");
    assert_eq!(r["task_keys_extra"], serde_json::json!([]));
    assert_eq!(r["event_keys"][0], r["event_keys"][1], "event fields");
    assert_eq!(r["scalars"][0], r["scalars"][1], "scalar events");
    assert_eq!(r["own_id"], true);
    assert_eq!(r["id"], id.as_str());
    let scalars = r["scalars"][0].as_array().unwrap();
    let summary: Vec<&str> = scalars
        .iter()
        .filter(|e| e[0] == "Summary")
        .map(|e| {
            assert_eq!(e[2], -2147483648i64);
            e[1].as_str().unwrap()
        })
        .collect();
    assert!(
        summary.contains(&"train_loss") && summary.contains(&"epoch"),
        "{summary:?}"
    );
    assert!(scalars.iter().any(|e| e[0] == "eval" && e[1] == "loss"));
    assert!(scalars
        .iter()
        .any(|e| e[0] == "train" && e[1] == "loss" && e[2] == 5));
    eprintln!(
        "clearml: {} of HF's {} fields, {} scalar events, missing task.json keys {}",
        r["ours"],
        r["hf_fields"],
        scalars.len(),
        r["task_keys_missing"]
    );
}

/// With `CLEARML_CACHE_DIR` the session goes where clearml keeps it,
/// `<cache>/offline`; without `CLEARML_OFFLINE_MODE` the plugin says that it
/// writes an offline session all the same.
#[test]
fn clearml_session_goes_to_clearmls_cache_dir() {
    let run = Run::regression("clearml_cache_dir");
    let cache = run.dir.join("cache");
    let done = run
        .args(&["--max_steps", "2", "--report_to", "clearml"])
        .env("CLEARML_CACHE_DIR", cache.to_str().unwrap())
        .ok();
    the_zip(&cache.join("offline"));
    assert!(!done.out.join("clearml").exists());
    assert!(
        done.stderr.contains("CLEARML_OFFLINE_MODE is not set: the plugin cannot reach a clearml server and writes an offline session"),
        "{}",
        done.stderr
    );
}

#[test]
fn clearml_loaded_without_its_grant_fails_naming_it() {
    let stderr = Run::regression("clearml_no_grant")
        .plugin("clearml")
        .fails();
    assert!(
        stderr.contains(
            "plugin clearml asks for `write-dir /clearml`, which is not granted; \
             add plugins.clearml.write_dirs = { \"/clearml\" = \"<host dir>\" } to the run config"
        ),
        "{stderr}"
    );
}
