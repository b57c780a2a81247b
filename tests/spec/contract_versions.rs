//! The versioned contract: plugins built against the frozen
//! `trainbox:callback@0.1.0` (the SDK's `wit-0-1-0` feature, `make plugins`'
//! `*-v0_1_0.wasm`) load and behave exactly as the same plugins built
//! against the latest 0.2.0; `plugins inspect` names each one's version; a
//! version the host does not serve is refused with the fix; 0.2.0's
//! histogram view works end to end.

use crate::util::{plugin, Run};
use serde_json::Value;
use std::path::Path;

/// A regression run (HF's test set-up) with `plugins`, in its own directory.
fn run_with(test: &str, plugins: &[&str]) -> Run {
    let mut run = Run::command(
        test,
        &[
            "train",
            "--task",
            "regression",
            "--disable_tqdm",
            "--output_dir",
            "out",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "8",
            "--logging_steps",
            "4",
            "--save_steps",
            "12",
            "--plugin_config",
            "recorder.values=true",
        ],
    );
    for p in plugins {
        run = run.plugin(p);
    }
    run
}

/// A JSON-lines file, with the measured times (`*_runtime`,
/// `*_per_second`), which differ from run to run, taken out.
fn trace(path: &Path) -> Vec<Value> {
    fn untimed(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !k.ends_with("_runtime") && !k.ends_with("_per_second"));
                m.values_mut().for_each(untimed);
            }
            Value::Array(a) => a.iter_mut().for_each(untimed),
            _ => {}
        }
    }
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            untimed(&mut v);
            v
        })
        .collect()
}

#[test]
fn plugins_built_against_0_1_0_behave_as_the_same_plugins_built_against_0_2_0() {
    let old = run_with("contract_v0_1_0", &["recorder-v0_1_0", "probe-v0_1_0"]).ok();
    let new = run_with("contract_v0_2_0", &["recorder", "probe"]).ok();
    // Every event with its state, control flags and payload values (the
    // recorder), and every view (the probe: log history, parameter and
    // gradient statistics, grad norms, learning rates, dataloader lengths).
    for file in ["plugins/recorder/events.jsonl", "plugins/probe/probe.jsonl"] {
        let (a, b) = (trace(&old.out.join(file)), trace(&new.out.join(file)));
        assert!(a.len() > 20, "{file}: {} lines", a.len());
        assert_eq!(a.len(), b.len(), "{file}");
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a, b, "{file} line {}", i + 1);
        }
    }
    let events = trace(&old.out.join("plugins/recorder/events.jsonl"));
    assert!(events
        .iter()
        .any(|e| e["event"] == "on_log" && e["logs"]["loss"].is_number()));
    assert!(events
        .iter()
        .any(|e| e["event"] == "on_evaluate" && e["metrics"]["eval_loss"].is_number()));
    let probe = trace(&old.out.join("plugins/probe/probe.jsonl"));
    assert!(probe.iter().any(|p| p["event"] == "on_pre_optimizer_step"
        && p["gradients"]
            .as_object()
            .is_some_and(|g| g.values().all(Value::is_object))));
    for done in [&old, &new] {
        let outcome = std::fs::read_to_string(done.out.join("plugins/recorder/outcome.txt"));
        assert_eq!(outcome.unwrap(), "completed\n");
    }
}

#[test]
fn inspect_names_the_contract_version() {
    for (name, version) in [
        ("recorder", "0.2.0"),
        ("recorder-v0_1_0", "0.1.0"),
        ("probe-v0_1_0", "0.1.0"),
        ("histogrammer", "0.2.0"),
    ] {
        let path = plugin(name);
        let done = Run::command(
            &format!("contract_inspect_{name}"),
            &["plugins", "inspect", path.to_str().unwrap()],
        )
        .ok();
        assert!(
            done.stdout
                .contains(&format!("\n  api:          trainbox:callback@{version}\n")),
            "{name}: {}",
            done.stdout
        );
    }
    // The version is read again from a component the compile cache gives back.
    let old = plugin("recorder-v0_1_0");
    let again = Run::command(
        "contract_inspect_cached",
        &["plugins", "inspect", old.to_str().unwrap()],
    )
    .ok();
    assert!(
        again
            .stdout
            .contains("\n  api:          trainbox:callback@0.1.0\n")
            && again.stdout.contains("compiled:     from the cache"),
        "{}",
        again.stdout
    );
}

/// The recorder with every `from` in its bytes (the component's import and
/// export names) replaced by `to`, of the same length.
fn patched(test: &str, from: &[&str], to: &str) -> std::path::PathBuf {
    let mut bytes = std::fs::read(plugin("recorder")).unwrap();
    for from in from {
        let to = from.replace("@0.2.0", to);
        assert_eq!(from.len(), to.len());
        let mut found = false;
        while let Some(at) = bytes.windows(from.len()).position(|w| w == from.as_bytes()) {
            bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
            found = true;
        }
        // The recorder imports only what it uses (no views).
        assert!(
            found || !from.contains("/plugin@"),
            "{from} not in the recorder"
        );
    }
    let path = crate::util::fresh_dir(test).join("patched.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_version_the_host_does_not_serve_is_refused_with_the_fix() {
    let names = [
        "trainbox:callback/plugin@0.2.0",
        "trainbox:callback/types@0.2.0",
        "trainbox:callback/views@0.2.0",
        "trainbox:callback/progress@0.2.0",
    ];
    let future = patched("contract_future_file", &names, "@0.9.0");
    let expected = format!(
        "{}: built for trainbox:callback@0.9.0, which this host does not serve (it serves 0.1.0 and 0.2.0); rebuild the plugin with trainbox-sdk 0.2.x (against wit/callback.wit)",
        future.display()
    );
    let err = Run::command(
        "contract_future_inspect",
        &["plugins", "inspect", future.to_str().unwrap()],
    )
    .fails();
    assert!(err.contains(&expected), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The same refusal stops a training run before any step.
    let err = Run::regression("contract_future_train")
        .arg("--plugin")
        .arg(future.to_str().unwrap())
        .fails();
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn describe_must_name_the_version_the_plugin_exports() {
    // A 0.2.0 plugin whose export claims 0.1.0: the types of its exports are
    // 0.1.0's, so it links, but describe's api-version says 0.2.0.
    let liar = patched(
        "contract_liar_file",
        &["trainbox:callback/plugin@0.2.0"],
        "@0.1.0",
    );
    let err = Run::command(
        "contract_liar_inspect",
        &["plugins", "inspect", liar.to_str().unwrap()],
    )
    .fails();
    assert!(
        err.contains(&format!(
            "{}: exports trainbox:callback/plugin@0.1.0 but describe says api-version \"0.2.0\"; the two must agree",
            liar.display()
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Each histogram agrees with the statistics view of the same tensor: its
/// counts add up to the finite elements, its range is their min and max.
fn check_histogram(what: &str, t: &Value, bins: usize) -> bool {
    let (s, h) = (&t["stats"], &t["histogram"]);
    if s.is_null() {
        assert!(h.is_null(), "{what}: a histogram without statistics: {t}");
        return false;
    }
    let counts: Vec<u64> = h["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    let finite = s["numel"].as_u64().unwrap() - s["nonfinite"].as_u64().unwrap();
    assert_eq!(counts.iter().sum::<u64>(), finite, "{what}: {t}");
    if s["nonfinite"] == 0 {
        assert_eq!(h["min"], s["min"], "{what}: {t}");
        assert_eq!(h["max"], s["max"], "{what}: {t}");
    }
    let constant = h["min"] == h["max"];
    assert_eq!(counts.len(), if constant { 1 } else { bins }, "{what}: {t}");
    assert_eq!(
        h["edges"].as_array().unwrap().len(),
        counts.len() + 1,
        "{what}"
    );
    true
}

/// wandb 0.31's `log_tensor_stats` (its histogram part), run by the real
/// torch on each tensor of a checkpoint's `model.safetensors`: `{name:
/// {"min", "max", "counts", "edges"}}`.
const WANDB_HISTOGRAMS: &str = r#"
import json, sys, torch
from safetensors.torch import load_file
bins = int(sys.argv[2])
out = {}
for name, t in load_file(sys.argv[1]).items():
    flat = t.detach().clone().reshape(-1)
    if not isinstance(flat, (torch.FloatTensor, torch.DoubleTensor)):
        flat = flat.type(torch.FloatTensor)
    if flat.shape == torch.Size([0]) or (~torch.isfinite(flat)).all().item():
        out[name] = None
        continue
    flat = flat[torch.isfinite(flat)]
    tmin, tmax = flat.min().item(), flat.max().item()
    if tmin == tmax:
        counts, edges = [flat.numel()], [tmin, tmax]
    else:
        counts = [int(c) for c in flat.histc(bins=bins, min=tmin, max=tmax).tolist()]
        edges = torch.linspace(tmin, tmax, steps=bins + 1).tolist()
    out[name] = {"min": tmin, "max": tmax, "counts": counts, "edges": edges}
print(json.dumps(out))
"#;

#[test]
fn histograms_of_values_and_gradients_reach_a_0_2_0_plugin() {
    // The demo task's network (42 tensors, up to 36,864 values each): a
    // checkpoint at step 2 holds the values the plugin sees at the
    // pre_optimizer_step of step 3, before that update.
    let run = Run::command(
        "contract_histograms",
        &[
            "train",
            "--task",
            "sort",
            "--output_dir",
            "out",
            "--max_steps",
            "3",
            "--save_steps",
            "2",
            "--per_device_train_batch_size",
            "16",
            "--disable_tqdm",
            "--plugin_config",
            "histogrammer.bins=7",
            "--config",
            "run.toml",
        ],
    )
    .plugin("histogrammer");
    // Four views of 42 tensors in one call take more than the default 100 ms.
    std::fs::write(
        run.dir.join("run.toml"),
        "[plugins.histogrammer]\ndeadline_ms = 10000\n",
    )
    .unwrap();
    let done = run.ok();
    let lines = trace(&done.out.join("plugins/histogrammer/histograms.jsonl"));
    assert_eq!(lines.len(), 4, "train_begin and 3 updates");
    assert_eq!(lines[0]["event"], "on_train_begin");
    let mut binned = 0;
    for line in &lines {
        let tensors = line["tensors"].as_object().unwrap();
        assert_eq!(tensors.len(), 42);
        for (name, t) in tensors {
            let what = format!("{} {name}", line["event"]);
            assert!(
                check_histogram(&format!("{what} value"), &t["value"], 7),
                "{what}: no value histogram"
            );
            let has_gradient = check_histogram(&format!("{what} gradient"), &t["gradient"], 7);
            // No gradient before the first backward pass; one at every
            // pre_optimizer_step.
            assert_eq!(
                has_gradient,
                line["event"] == "on_pre_optimizer_step",
                "{what}"
            );
            binned += usize::from(t["value"]["histogram"]["counts"].as_array().unwrap().len() == 7);
        }
    }
    assert!(binned > 100, "{binned} histograms of 7 bins");
    // The values before step 3's update, as wandb.watch would histogram them.
    let wandb: Value = serde_json::from_str(&crate::util::run_torch_python(
        WANDB_HISTOGRAMS,
        &[
            &done.out.join("checkpoint-2/model.safetensors"),
            Path::new("7"),
        ],
    ))
    .unwrap();
    let before_3 = lines
        .iter()
        .find(|l| l["event"] == "on_pre_optimizer_step" && l["global_step"] == 2)
        .unwrap();
    let ours = before_3["tensors"].as_object().unwrap();
    assert_eq!(wandb.as_object().unwrap().len(), ours.len());
    for (name, t) in ours {
        let h = &t["value"]["histogram"];
        let w = &wandb[name];
        for key in ["min", "max", "counts", "edges"] {
            assert_eq!(h[key], w[key], "{name} {key}");
        }
    }
}

#[test]
fn a_histogram_of_no_bins_or_too_many_is_a_fault_of_the_plugin() {
    for bins in ["0", "4097"] {
        let done = Run::regression(&format!("contract_histogram_bins_{bins}"))
            .plugin("histogrammer")
            .args(&["--plugin_config", &format!("histogrammer.bins={bins}")])
            .completes_with_faults("histogrammer");
        assert!(
            done.stderr.contains(&format!(
                "plugin \"histogrammer\" asked for a histogram of {bins} bins; views.model-stats.histogram takes 1 to 4096"
            )),
            "{}",
            done.stderr
        );
    }
}
