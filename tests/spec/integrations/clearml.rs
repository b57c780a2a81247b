//! clearml: the plugin's offline session (`<output_dir>/clearml/offline/
//! offline-<id>.zip`) read with clearml 2.1.12 itself: every scalar event
//! accepted by `MetricsScalarEvent(**event)` and every console line by
//! `TaskLogEvent(**event)` (type-checked constructors), and its `task.json`
//! hyperparameters and scalar events equal to those of a real clearml
//! offline session (`CLEARML_OFFLINE_MODE=1`, a temporary home and cache,
//! no network) fed as HF's `ClearMLCallback` feeds it: HF's own
//! `TrainingArguments` built by transformers from the same flags, enums and
//! all, then the run's logs. Without its grant the plugin does not load.
//! With `CLEARML_LOG_MODEL`, its output models equal those clearml itself
//! keeps for HF's `on_save` calls on the same checkpoints, and without it
//! the plugin cannot read `output_dir` and logs none.

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

/// The plugin's output models (`argv[1]`, its session zip) beside those of
/// a real clearml offline session fed HF's `on_save` calls on the same
/// checkpoints (in `argv[2]`, output_dir): per model its `task.json` entry
/// (paths and ids as patterns), the files its package holds (compression
/// and SHA-256), and whether the `Task.import_offline_session` calls
/// (`OutputModel(**init)`, `update_weights(**weights)`) take the entry;
/// and, from disk, the checkpoints' own files. clearml 2.1.12 cannot do
/// this offline unpatched (`OutputModel.published` asks a `DummyModel` for
/// `locked`; `_set_package_tag` reads `system_tags`, None offline): both
/// are patched, after `_update_weights_offline` has written the model
/// (`unpatched`: what the first call raises without them).
const MODELS: &str = r#"
import ast, glob, hashlib, inspect, io, json, os, re, sys, zipfile
ours_zip, out, home = sys.argv[1:4]
os.makedirs(os.path.join(home, "tmp"))  # clearml leaves its temporary zips there
os.environ.update(HOME=home, CLEARML_OFFLINE_MODE="1", CLEARML_CACHE_DIR=os.path.join(home, "cache"),
                  TMPDIR=os.path.join(home, "tmp"))
import clearml.model as cm
from clearml import Task, OutputModel
sha = lambda b: hashlib.sha256(b).hexdigest()

def models(path):
    z = zipfile.ZipFile(path)
    task = json.loads(z.read("task.json"))
    folder = task["offline_folder"]
    recs = []
    for m in task["offline_output_models"]:
        init, weights = dict(m["init"]), dict(m["weights"])
        w = weights.pop("weights_filename")
        rel = os.path.relpath(w, folder)
        stored = z.read(rel)
        files = re.fullmatch(r"snapshot (\[.*\]) stored\nCreated by task id: (.*)", init.pop("comment"), re.S)
        inner = zipfile.ZipFile(io.BytesIO(stored))
        recs.append({
            "id": bool(re.fullmatch("offline-[0-9a-f]{32}", m["id"])) and m["id"] != task["id"],
            "keys": sorted(m), "init": init, "weights": weights,
            "file": bool(re.fullmatch(r"models/model_package\.[a-z0-9_]{8}\.zip", rel)),
            "on_disk": open(w, "rb").read() == stored,
            "in_zip": z.getinfo(rel).compress_type,
            "comment_files": sorted(ast.literal_eval(files[1])), "comment_task": files[2] == task["id"],
            "package": {i.filename: [i.compress_type, sha(inner.read(i))] for i in inner.infolist()},
            "importable": [bool(inspect.signature(OutputModel.__init__).bind(None, task=None, **m["init"])),
                           bool(inspect.signature(OutputModel.update_weights).bind(None, auto_delete_file=False, **m["weights"]))],
        })
    return recs

ours = models(ours_zip)
real = Task.init(project_name="HuggingFace Transformers", task_name="Trainer",
                 auto_connect_frameworks={"tensorboard": False, "pytorch": False}, output_uri=True)
try:
    OutputModel(task=real, name="probe").update_weights_package(
        weights_path=os.path.join(out, ours[0]["init"]["name"]), target_filename="probe", iteration=0,
        auto_delete_file=False)
    unpatched = "logged"
except Exception as e:
    unpatched = f"{type(e).__name__}: {e}"
cm.OutputModel.published = property(lambda self: False)
cm.OutputModel._set_package_tag = lambda self: None
for m in ours:
    step = m["weights"]["iteration"]
    name = f"checkpoint-{step}"
    model = OutputModel(task=real, name=name)
    model.connect(task=real, name=name)
    model.update_weights_package(weights_path=os.path.join(out, name), target_filename=name,
                                 iteration=step, auto_delete_file=False)
real.close()
(real_zip,) = glob.glob(os.path.join(home, "cache", "offline", "*.zip"))
checkpoints = []
for m in ours:
    d = os.path.join(out, m["init"]["name"])
    checkpoints.append({f: [0, sha(open(os.path.join(d, f), "rb").read())] for f in sorted(os.listdir(d))})
print(json.dumps({"ours": ours, "real": models(real_zip), "checkpoints": checkpoints,
                  "unpatched": unpatched}))
"#;

#[test]
fn clearml_logs_checkpoints_as_clearmls_offline_output_models() {
    let done = Run::regression("clearml_log_model")
        .args(&["--report_to", "clearml"])
        .args(&["--save_strategy", "steps", "--save_steps", "8"])
        .env("CLEARML_OFFLINE_MODE", "1")
        .env("CLEARML_LOG_MODEL", "True")
        .ok();
    let zip = the_zip(&done.out.join("clearml/offline"));
    let home = done.out.parent().unwrap().join("clearml-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(MODELS)
        .arg(&zip)
        .arg(&done.out)
        .arg(&home)
        .output()
        .expect("running the clearml reference");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the clearml models reference failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        r["unpatched"], "AttributeError: 'DummyModel' object has no attribute 'locked'",
        "clearml's offline models work unpatched now: drop the patches and this note"
    );
    let ours = r["ours"].as_array().unwrap();
    let names: Vec<&str> = ours
        .iter()
        .map(|m| m["init"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkpoint-8", "checkpoint-16", "checkpoint-24"]);
    for (i, m) in ours.iter().enumerate() {
        let real = &r["real"][i];
        assert_eq!(m, real, "model {i}: ours, then clearml's");
        assert_eq!(m["weights"]["iteration"], 8 * (i as u64 + 1));
        assert_eq!(m["weights"]["target_filename"], format!("{}.zip", names[i]));
        for check in ["id", "file", "on_disk", "comment_task"] {
            assert_eq!(m[check], true, "{check}: {m}");
        }
        assert_eq!(m["importable"], serde_json::json!([true, true]));
        assert_eq!(
            m["package"], r["checkpoints"][i],
            "the package holds the checkpoint"
        );
        assert!(m["package"]
            .as_object()
            .unwrap()
            .contains_key("model.safetensors"));
    }
    assert_eq!(
        done.stdout
            .matches("Logging checkpoint artifact `checkpoint-")
            .count(),
        3,
        "{}",
        done.stdout
    );
}

/// The session's `task.json` (beside its zip, in the session folder).
fn session_task(out: &Path) -> (PathBuf, Value) {
    let zip = the_zip(&out.join("clearml/offline"));
    let folder = zip.with_extension("");
    let text = std::fs::read_to_string(folder.join("task.json")).unwrap();
    (folder, serde_json::from_str(&text).unwrap())
}

/// `save_total_limit` models at most, as HF removes the oldest.
#[test]
fn clearml_keeps_save_total_limit_models() {
    let done = Run::regression("clearml_log_model_limit")
        .args(&["--report_to", "clearml", "--save_steps", "8"])
        .args(&["--save_total_limit", "1"])
        .env("CLEARML_OFFLINE_MODE", "1")
        .env("CLEARML_LOG_MODEL", "1")
        .ok();
    let (folder, task) = session_task(&done.out);
    let models = task["offline_output_models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{models:?}");
    assert_eq!(models[0]["init"]["name"], "checkpoint-24");
    let files: Vec<_> = std::fs::read_dir(folder.join("models")).unwrap().collect();
    assert_eq!(files.len(), 1);
}

/// Without `CLEARML_LOG_MODEL` nothing is packaged; with it but without
/// the grant (the plugin loaded from a run config that gives no
/// `output_dir`), the plugin cannot read the checkpoints, says which grant
/// it needs, and training goes on.
#[test]
fn clearml_without_log_model_or_its_grant_logs_no_model() {
    let done = Run::regression("clearml_no_log_model")
        .args(&["--report_to", "clearml", "--save_steps", "8"])
        .env("CLEARML_OFFLINE_MODE", "1")
        .ok();
    let (folder, task) = session_task(&done.out);
    assert_eq!(task["offline_output_models"], serde_json::json!([]));
    assert!(!folder.join("models").exists());
    assert!(!done.stdout.contains("Logging checkpoint artifact"));

    let run = Run::regression("clearml_log_model_no_grant").plugin("clearml");
    std::fs::create_dir(run.dir.join("offline")).unwrap();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.clearml]\npath = {:?}\nwrite_dirs = {{ \"/clearml\" = \"offline\" }}\n\
             env = [\"CLEARML_PROJECT\", \"CLEARML_TASK\", \"CLEARML_LOG_MODEL\", \"CLEARML_OFFLINE_MODE\"]\n",
            crate::util::plugin("clearml").to_str().unwrap()
        ),
    )
    .unwrap();
    let done = run
        .args(&["--config", "run.toml", "--save_steps", "8"])
        .env("CLEARML_OFFLINE_MODE", "1")
        .env("CLEARML_LOG_MODEL", "yes")
        .ok();
    assert!(
        done.stderr.contains(
            "clearml output model checkpoint-8 not logged: reading /output/checkpoint-8: "
        ) && done.stderr.contains(
            "CLEARML_LOG_MODEL reads checkpoints through the read-only grant of output_dir as /output"
        ),
        "{}",
        done.stderr
    );
    let zip = the_zip(&run_dir_offline(&done.out));
    let text = std::fs::read_to_string(zip.with_extension("").join("task.json")).unwrap();
    let task: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(task["offline_output_models"], serde_json::json!([]));
}

/// The `offline` folder beside a run's `out`.
fn run_dir_offline(out: &Path) -> PathBuf {
    out.parent().unwrap().join("offline")
}
