//! neptune: the plugin's offline run directory must be what neptune 1.14
//! itself reads: `neptune sync`'s own collector finds it as one unsynced
//! offline run, and neptune's `DiskQueue` with `Operation.from_dict` (the
//! reader `neptune sync` sends from) parses every operation. Replayed into
//! fields, it must hold HF's `finetuning/` metadata as the run's
//! `trainer_state.json` and arguments say, and the same fields, types and
//! values as a real `neptune.init_run(mode="offline")` fed as HF's
//! `NeptuneCallback` feeds it (less what a sandbox cannot see: captured
//! output, hardware metrics, source files).

use crate::util::{plugin, readers_python, Run};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::process::Command;

/// Reads the offline run under `argv[1]` (a neptune data directory) with
/// neptune's own collector and `DiskQueue`, then writes a real offline run
/// in `argv[3]` the way HF's `NeptuneCallback` does (`init_run()`, the
/// transformers version, `trainer_parameters`, `rewrite_logs` metrics with
/// `step=global_step`, `train/epoch` assigned), fed the log history of
/// `argv[2]` and the plugin's own parameters; prints both replays.
const REFERENCE: &str = r#"
import hashlib, json, os, sys, threading
from pathlib import Path
data_dir, state, ref_dir = sys.argv[1:4]
from neptune.cli.collect import collect_offline_containers
from neptune.core.components.queue.disk_queue import DiskQueue
from neptune.internal.operation import Operation

def read(data_dir):
    (container,) = list(collect_offline_containers(path=Path(data_dir)))
    (execution,) = container.execution_dirs
    folder = execution.path
    queue = DiskQueue(folder, lambda op: op.to_dict(), Operation.from_dict, threading.RLock())
    elements = []
    while True:
        batch = queue.get_batch(1000)
        if not batch:
            break
        elements.extend(batch)
    queue.close()
    fields, kinds, monitoring = {}, {}, None
    for e in elements:
        op = e.obj
        kind = type(op).__name__
        path = list(op.path)
        if path[0] == "monitoring":
            monitoring = path[1]
            path[1] = "*"
        p = "/".join(path)
        kinds.setdefault(p, [])
        if kind not in kinds[p]:
            kinds[p].append(kind)
        if kind.startswith("Assign"):
            fields[p] = op.value
        elif kind.startswith("Log"):
            fields.setdefault(p, []).extend([v.value, v.step] for v in op.values)
        elif kind.startswith("Clear"):
            fields[p] = []
        else:
            fields[p] = kind
    return {
        "folder": folder.name, "type": container.container_type.value, "id": container.container_id,
        "synced": execution.synced, "versions": [e.ver for e in elements],
        "times": [e.at for e in elements], "fields": fields, "kinds": kinds, "monitoring": monitoring,
        "last_put": (folder / "last_put_version").read_text(),
        "last_ack": (folder / "last_ack_version").read_text(),
        "files": sorted(f.name for f in folder.iterdir()),
        "metadata": json.loads((folder / "metadata.json").read_text()),
    }

ours = read(data_dir)
f = ours["fields"]
h = hashlib.sha256()
for d in (f["monitoring/*/hostname"], f["monitoring/*/pid"], f["monitoring/*/tid"]):
    h.update(str(d).encode())
ours["hash"] = h.hexdigest()[-8:]


history = json.load(open(state))["log_history"]
os.makedirs(ref_dir)
os.chdir(ref_dir)
os.environ["NEPTUNE_MODE"] = "offline"
import neptune
run = neptune.init_run(api_token=None, project=None, name=None)
prefix = "finetuning/trainer_parameters/"
run["source_code/integrations/transformers"] = f["source_code/integrations/transformers"]
run["finetuning"]["trainer_parameters"] = {k[len(prefix):]: v for k, v in f.items() if k.startswith(prefix)}
for entry in history:
    logs = {k: v for k, v in entry.items() if k != "step"}
    for name, value in rewrite_logs(logs).items():
        if isinstance(value, (int, float)):
            if name in {"train/epoch"}:
                run["finetuning"][name] = value
            else:
                run["finetuning"][name].log(value, step=entry["step"])
run.stop()
theirs = read(".neptune")
print(json.dumps({"ours": ours, "theirs": theirs, "history": history}))
"#;

fn reference(data_dir: &Path, state: &Path, ref_dir: &Path) -> Value {
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(super::with_rewrite_logs(REFERENCE))
        .arg(data_dir)
        .arg(state)
        .arg(ref_dir)
        .env_remove("NEPTUNE_DATA_DIRECTORY")
        .env_remove("NEPTUNE_PROJECT")
        .env_remove("NEPTUNE_API_TOKEN")
        .output()
        .expect("running the neptune reference");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the neptune check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// What a real run writes that the plugin cannot: the captured streams and
/// hardware metrics of the monitoring namespace, the script's source files.
fn only_a_real_run_has(path: &str) -> bool {
    match path.strip_prefix("monitoring/*/") {
        Some(leaf) => !["hostname", "pid", "tid", "traceback"].contains(&leaf),
        None => path.starts_with("source_code/") && path != "source_code/integrations/transformers",
    }
}

/// HF's `on_log` replayed from the log history: each `finetuning/` series
/// as `[value, step]` pairs, and the last assigned `train/epoch`.
fn expected_metrics(history: &[Value]) -> (Map<String, Value>, Value) {
    let mut series = Map::new();
    let mut epoch = Value::Null;
    for entry in history {
        let step = &entry["step"];
        for (k, v) in entry.as_object().unwrap() {
            if k == "step" || !v.is_number() {
                continue;
            }
            let name = if let Some(r) = k.strip_prefix("eval_") {
                format!("eval/{r}")
            } else if let Some(r) = k.strip_prefix("test_") {
                format!("test/{r}")
            } else {
                format!("train/{k}")
            };
            if name == "train/epoch" {
                epoch = v.clone();
                continue;
            }
            let pairs = series
                .entry(format!("finetuning/{name}"))
                .or_insert_with(|| json!([]));
            pairs
                .as_array_mut()
                .unwrap()
                .push(json!([v.as_f64().unwrap(), step]));
        }
    }
    (series, epoch)
}

#[test]
fn neptune_offline_run_is_read_by_neptune_and_matches_a_real_offline_run() {
    let done = Run::regression("neptune_run")
        .args(&["--logging_steps", "5", "--eval_strategy", "epoch"])
        .args(&["--report_to", "neptune", "--run_name", "neptune-run"])
        .env("NEPTUNE_MODE", "offline")
        .ok();
    let dir = done.out.parent().unwrap().to_path_buf();
    let r = reference(
        &dir.join(".neptune"),
        &done.out.join("trainer_state.json"),
        &dir.join("ref"),
    );
    let (ours, theirs) = (&r["ours"], &r["theirs"]);

    // Found by `neptune sync`'s collector as one unsynced offline run.
    let folder = ours["folder"].as_str().unwrap();
    let parts: Vec<&str> = folder.split("__").collect();
    assert_eq!(parts.len(), 4, "{folder}");
    assert_eq!((parts[0], parts[1]), ("run", ours["id"].as_str().unwrap()));
    assert!(parts[2].parse::<u32>().is_ok(), "{folder}");
    assert!(
        parts[3].len() == 8
            && parts[3]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{folder}"
    );
    assert_eq!(ours["type"], "run");
    assert_eq!(ours["synced"], false);
    assert_eq!(ours["files"], theirs["files"]);
    assert!(done.stdout.contains(folder), "{}", done.stdout);
    // Versions 1..n, n in last_put_version, nothing acknowledged.
    let n = ours["versions"].as_array().unwrap().len();
    let versions: Vec<Value> = (1..=n).map(|v| json!(v)).collect();
    assert_eq!(ours["versions"].as_array().unwrap(), &versions);
    assert_eq!(ours["last_put"], n.to_string());
    assert_eq!(ours["last_ack"], theirs["last_ack"]);
    // metadata.json: neptune's keys, the run's id.
    let (meta, ref_meta) = (&ours["metadata"], &theirs["metadata"]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(meta), keys(ref_meta));
    assert_eq!(meta["containerId"], ours["id"]);
    for k in [
        "mode",
        "containerType",
        "structureVersion",
        "neptuneClientVersion",
    ] {
        assert_eq!(meta[k], ref_meta[k], "metadata.json {k}");
    }
    // neptune's monitoring namespace: the hash of hostname, pid and tid.
    assert_eq!(ours["monitoring"], ours["hash"]);

    // The fields against the run's own history and arguments.
    let f = ours["fields"].as_object().unwrap();
    let history = r["history"].as_array().unwrap();
    let (series, epoch) = expected_metrics(history);
    let logged: Map<String, Value> = f
        .iter()
        .filter(|(k, _)| k.starts_with("finetuning/") && !k.contains("trainer_parameters"))
        .filter(|(k, _)| *k != "finetuning/train/epoch")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(logged, series);
    assert!(
        series.contains_key("finetuning/eval/loss")
            && series.contains_key("finetuning/train/train_loss")
    );
    assert_eq!(f["finetuning/train/epoch"], epoch);
    let param = |k: &str| &f[&format!("finetuning/trainer_parameters/{k}")];
    assert_eq!(param("learning_rate"), &json!(5e-05));
    assert_eq!(param("output_dir"), done.out.to_str().unwrap());
    assert_eq!(param("run_name"), "neptune-run");
    assert_eq!(param("report_to"), "['neptune']");
    assert_eq!(param("logging_steps"), 5);
    assert_eq!(param("eval_strategy"), "epoch");
    assert_eq!(param("eval_steps"), "None");
    // trainbox's own argument, not HF's.
    assert!(!f.contains_key("finetuning/trainer_parameters/warmup_ratio"));
    assert_eq!(
        param("train_batch_size"),
        param("per_device_train_batch_size")
    );
    assert_eq!(f["source_code/integrations/transformers"], "5.24.0");
    assert_eq!(f["sys/failed"], false);
    assert_eq!(f["sys/hostname"], f["monitoring/*/hostname"]);

    // The same fields, types and values as the real offline run.
    let (tf, kinds, ref_kinds) = (
        theirs["fields"].as_object().unwrap(),
        ours["kinds"].as_object().unwrap(),
        theirs["kinds"].as_object().unwrap(),
    );
    let missing: Vec<&String> = tf
        .keys()
        .filter(|k| !f.contains_key(*k) && !only_a_real_run_has(k))
        .collect();
    let extra: Vec<&String> = f.keys().filter(|k| !tf.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (k, v) in f {
        assert_eq!(kinds[k], ref_kinds[k], "operation types of {k}");
        if !["monitoring/*/pid", "monitoring/*/tid"].contains(&k.as_str()) {
            assert_eq!(v, &tf[k], "value of {k}");
        }
    }
}

#[test]
fn neptune_modes_data_directory_and_grants() {
    // neptune's default mode streams to a server: one error naming the fix.
    let err = Run::regression("neptune_async")
        .args(&["--report_to", "neptune"])
        .fails();
    assert!(
        err.contains("NEPTUNE_MODE is not set, which is neptune's async mode")
            && err.contains("set NEPTUNE_MODE=offline"),
        "{err}"
    );
    // The plugin loaded as a user plugin has no write grant.
    let err = Run::regression("neptune_no_grants")
        .arg("--plugin")
        .arg(plugin("neptune").to_str().unwrap())
        .env("NEPTUNE_MODE", "offline")
        .fails();
    assert!(
        err.contains(
            "neptune.wasm: plugin neptune asks for `write-dir /neptune`, which is not granted"
        ),
        "{err}"
    );
    // NEPTUNE_DATA_DIRECTORY is where the run goes; debug writes nothing.
    let done = Run::regression("neptune_dir")
        .args(&["--max_steps", "2", "--report_to", "neptune"])
        .env("NEPTUNE_MODE", "offline")
        .env("NEPTUNE_DATA_DIRECTORY", "data/nep")
        .ok();
    let offline = done.out.parent().unwrap().join("data/nep/offline");
    let runs: Vec<_> = std::fs::read_dir(&offline).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "{}", offline.display());
    let files = [
        "data-1.log",
        "last_ack_version",
        "last_put_version",
        "metadata.json",
    ];
    for f in files {
        assert!(
            runs[0].path().join(f).is_file(),
            "{f} in {}",
            runs[0].path().display()
        );
    }
    let done = Run::regression("neptune_debug")
        .args(&["--max_steps", "2", "--report_to", "neptune"])
        .env("NEPTUNE_MODE", "debug")
        .ok();
    let data = done.out.parent().unwrap().join(".neptune");
    assert_eq!(
        std::fs::read_dir(&data).map_or(0, |d| d.count()),
        0,
        "nothing in {}",
        data.display()
    );
    assert!(
        done.stdout.contains("NEPTUNE_MODE=debug"),
        "{}",
        done.stdout
    );
}

#[test]
fn neptune_run_of_an_interrupted_training_is_marked_failed() {
    let dir = crate::util::fresh_dir("neptune_sigint");
    let args = crate::interrupt::argv(&dir, &["--report_to", "neptune"]);
    let mut run = crate::interrupt::Spawned::start(&dir, &args, &[("NEPTUNE_MODE", "offline")]);
    run.wait_for_step(12);
    run.signal("INT");
    assert_eq!(run.wait(60).code(), Some(130), "{}", run.stderr());
    let offline = dir.join(".neptune/offline");
    let (folder,) = match &std::fs::read_dir(&offline)
        .unwrap()
        .flatten()
        .collect::<Vec<_>>()[..]
    {
        [one] => (one.path(),),
        other => panic!("{} runs in {}", other.len(), offline.display()),
    };
    let ops: Vec<Value> = crate::util::read_jsonl(&folder.join("data-1.log"));
    let last_put = std::fs::read_to_string(folder.join("last_put_version")).unwrap();
    assert_eq!(last_put, ops.len().to_string());
    // neptune's traceback job: the reason logged, then sys/failed = True.
    let [traceback, failed] = &ops[ops.len() - 2..] else {
        unreachable!()
    };
    assert_eq!(
        failed["obj"],
        json!({"type": "AssignBool", "path": ["sys", "failed"], "value": true})
    );
    assert_eq!(traceback["obj"]["type"], "LogStrings");
    let path = traceback["obj"]["path"].as_array().unwrap();
    assert_eq!(
        (&path[0], &path[2]),
        (&json!("monitoring"), &json!("traceback"))
    );
    let text = traceback["obj"]["values"][0]["value"].as_str().unwrap();
    assert!(text.starts_with("interrupted by SIGINT at step"), "{text}");
    // The losses logged before the interrupt are there.
    let losses = ops
        .iter()
        .filter(|o| o["obj"]["path"] == json!(["finetuning", "train", "loss"]))
        .count();
    assert!(losses >= 2, "{losses} losses");
}
