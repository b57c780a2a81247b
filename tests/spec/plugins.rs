//! Loading plugins: the order, configuration, bad files, and what the
//! printer and progress plugins print.

use crate::util::{fresh_dir, plugin, Run};
use std::path::Path;

#[test]
fn every_plugin_in_the_tree_appears_in_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut names = Vec::new();
    for dir in [root.join("plugins"), root.join("plugins/testing")] {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // Every crate that builds a component (a cdylib, or a command as
            // not-a-plugin); the SDK and mlflow-core are libraries.
            let path = entry.path();
            let manifest = std::fs::read_to_string(path.join("Cargo.toml")).unwrap_or_default();
            if manifest.contains("cdylib") || path.join("src/main.rs").is_file() {
                names.push(name);
            }
        }
    }
    let mut tests = String::new();
    let mut dirs = vec![root.join("tests/spec")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                tests.push_str(&std::fs::read_to_string(entry.path()).unwrap());
            }
        }
    }
    for name in &names {
        assert!(
            tests.contains(&format!("\"{name}\"")),
            "plugin {name} is used by no test in tests/spec"
        );
    }
    assert!(names.len() >= 4, "found plugins: {names:?}");
}

/// Each plugin's label and event calls, in report order, from the end-of-run
/// report: its one line (`plugins: recorder 120 calls 3.1 ms, …; none
/// slow, no faults`) or, when a plugin was slow, its table.
fn report_calls(stderr: &str) -> Vec<(String, u64)> {
    if let Some(line) = stderr.lines().find_map(|l| l.strip_prefix("plugins: ")) {
        let list = line.split("; ").next().unwrap();
        return list
            .split(", ")
            .map(|each| {
                let f: Vec<&str> = each.split_whitespace().collect();
                (f[0].to_string(), f[1].parse().unwrap())
            })
            .collect();
    }
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("plugin "))
        .skip(1)
        .take_while(|l| !l.starts_with("fault: ") && !l.starts_with("trainbox: "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect()
}

#[test]
fn plugins_from_a_folder_load_sorted_by_file_name_before_progress_or_printer() {
    let run = Run::regression("plugins_folder");
    let dir = run.dir.join("mine");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(plugin("stopper"), dir.join("10-first.wasm")).unwrap();
    // The same file as the recorder loaded first: a second instance of it.
    std::os::unix::fs::symlink(plugin("recorder"), dir.join("20-second.wasm")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a plugin").unwrap();
    let done = run
        .args(&[
            "--plugins",
            dir.to_str().unwrap(),
            "--plugin_config",
            "stopper.at_step=100",
        ])
        .ok();
    let report: Vec<String> = report_calls(&done.stderr)
        .into_iter()
        .map(|(label, _)| label)
        .collect();
    assert_eq!(
        report,
        ["recorder", "stopper", "recorder#2", "printer"],
        "{}",
        done.stderr
    );
    assert!(
        done.out.join("plugins/recorder#2/events.jsonl").is_file(),
        "a second instance has its own directory, which no plugin name can reach"
    );
}

#[test]
fn printer_prints_each_log_as_hf_does() {
    let done = Run::regression("plugins_printer")
        .args(&["--logging_steps", "8"])
        .ok();
    let lines: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("[printer] {"))
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "three logs and the summary:\n{}",
        done.stdout
    );
    assert!(lines[0].starts_with("[printer] {'loss': '"), "{}", lines[0]);
    assert!(
        lines[0].ends_with("'epoch': '1'}"),
        "floats formatted with {{:.4g}}: {}",
        lines[0]
    );
    assert!(
        !done.stdout.contains("total_flos"),
        "total_flos is left out"
    );
}

#[test]
fn progress_writes_logs_above_its_bars_and_replaces_the_printer() {
    let run = Run::command(
        "plugins_progress",
        &["train", "--task", "regression", "--logging_steps", "12"],
    );
    let out = run.dir.join("out");
    let done = run
        .args(&[
            "--output_dir",
            out.to_str().unwrap(),
            "--eval_strategy",
            "epoch",
        ])
        .ok();
    let logs: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("[progress] {'"))
        .collect();
    assert_eq!(
        logs.len(),
        6,
        "2 step logs, 3 evaluations, the summary:\n{}",
        done.stdout
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("[progress] {'eval_loss': '")),
        "{logs:?}"
    );
    assert!(!done.stdout.contains("[printer]"));
    assert!(
        done.stderr.contains("progress"),
        "the report lists progress: {}",
        done.stderr
    );
}

#[test]
fn plugin_config_reaches_the_plugin_and_bad_keys_are_rejected() {
    let done = Run::regression("plugins_config")
        .args(&["--plugin_config", "recorder.file=trace.jsonl"])
        .ok();
    assert!(done.out.join("plugins/recorder/trace.jsonl").is_file());
    assert_eq!(
        std::fs::read_to_string(done.out.join("plugins/recorder/outcome.txt")).unwrap(),
        "completed\n"
    );
    // A plugin that refuses its config stops the run before training; the
    // plugins already started hear that it aborted.
    let run = Run::regression("plugins_config_later_fails").plugin("hostile");
    let err = run.fails();
    assert!(
        err.contains("hostile: configuration rejected: hostile needs hostile.mode"),
        "{err}"
    );
    let outcome = std::fs::read_to_string(run.out().join("plugins/recorder/outcome.txt")).unwrap();
    assert!(
        outcome.starts_with("aborted: ") && outcome.contains("hostile needs hostile.mode"),
        "{outcome}"
    );
    let err = Run::regression("plugins_config_bad")
        .args(&["--plugin_config", "recorder.bogus=1"])
        .fails();
    assert!(
        err.contains("recorder: configuration rejected: unknown key \"bogus\""),
        "{err}"
    );
    let err = Run::regression("plugins_config_nobody")
        .args(&["--plugin_config", "nobody.x=1"])
        .fails();
    assert!(err.contains("no plugin of that name is loaded"), "{err}");
}

#[test]
fn bad_plugin_files_get_one_line_errors_naming_the_file() {
    let dir = fresh_dir("plugins_bad_files");
    let text = dir.join("text.wasm");
    std::fs::write(&text, "hello").unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let truncated = dir.join("truncated.wasm");
    let bytes = std::fs::read(plugin("recorder")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let cases = [
        (&text, "not a WebAssembly file"),
        (&core, "is a core WebAssembly module, not a component"),
        (&truncated, "not a valid WebAssembly component"),
    ];
    for (path, want) in cases {
        let p = path.to_str().unwrap();
        let err = Run::regression("plugins_bad_file_run")
            .args(&["--plugin", p])
            .fails();
        assert!(err.contains(p) && err.contains(want), "{p}: {err}");
        let err = Run::command("plugins_bad_file_inspect", &["plugins", "inspect", p]).fails();
        assert!(err.contains(want), "{err}");
    }
    let missing = dir.join("missing.wasm");
    let err = Run::regression("plugins_missing")
        .args(&["--plugin", missing.to_str().unwrap()])
        .fails();
    assert!(
        err.contains("reading plugin") && err.contains("missing.wasm"),
        "{err}"
    );
}

#[test]
fn inspect_and_list_describe_plugins_without_training() {
    let done = Run::command(
        "plugins_inspect",
        &["plugins", "inspect", plugin("progress").to_str().unwrap()],
    )
    .ok();
    assert!(
        done.stdout.contains("name:         progress"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("on_train_begin, on_train_end"),
        "{}",
        done.stdout
    );
    assert!(
        !done.stdout.contains("on_step_begin"),
        "progress does not subscribe to on_step_begin"
    );
    // A folder of plugins with one broken file among them: every good one is
    // listed, the broken one reported by name, and the status says so.
    let folder = crate::util::fresh_dir("plugins_list_folder");
    for name in ["printer", "progress", "recorder", "stopper"] {
        std::fs::copy(plugin(name), folder.join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::write(folder.join("broken.wasm"), "not wasm").unwrap();
    let run = Run::command(
        "plugins_list",
        &["plugins", "list", folder.to_str().unwrap()],
    );
    let (ok, stdout, stderr) = run.outcome();
    assert!(!ok, "a broken file makes the listing fail");
    assert!(stderr.contains("broken.wasm"), "{stderr}");
    for name in ["printer", "progress", "recorder", "stopper"] {
        assert!(
            stdout.contains(&format!("name:         {name}\n")),
            "{stdout}"
        );
    }
}

#[test]
fn unsubscribed_events_never_enter_the_plugin() {
    let done = Run::regression("plugins_subscriptions")
        .args(&["--plugin", plugin("stopper").to_str().unwrap()])
        .args(&["--plugin_config", "stopper.at_step=100"])
        .ok();
    let report = report_calls(&done.stderr);
    let calls = report
        .iter()
        .find(|(label, _)| label == "stopper")
        .unwrap()
        .1;
    assert_eq!(
        calls, 24,
        "stopper subscribes to on_step_end only: {report:?}"
    );
}

#[test]
fn views_show_the_run_as_the_trainer_sees_it() {
    let done = Run::regression("plugins_views")
        .plugin("probe")
        .args(&["--logging_steps", "4", "--learning_rate", "0.1"])
        .ok();
    let probe = crate::util::read_jsonl(&done.out.join("plugins/probe/probe.jsonl"));
    let begin = &probe[0];
    assert_eq!(begin["event"], "on_train_begin");
    assert_eq!(
        begin["dataloaders"],
        serde_json::json!({"train": 8, "eval": 8})
    );
    assert_eq!(begin["parameters"], serde_json::json!(["a", "b"]));
    assert_eq!(begin["parameter_count"], 2, "a and b are scalars");

    let state = done.state("trainer_state.json");
    let history = state["log_history"].as_array().unwrap();
    let mut checked = 0;
    for entry in history.iter().filter(|e| e.get("grad_norm").is_some()) {
        let step = entry["step"].as_u64().unwrap();
        // The update that made step N runs with global_step N-1.
        let pre = probe
            .iter()
            .find(|p| p["event"] == "on_pre_optimizer_step" && p["global_step"] == step - 1)
            .unwrap();
        assert_eq!(
            pre["grad_norm"], entry["grad_norm"],
            "the view's grad norm is the logged one"
        );
        assert_eq!(
            pre["learning_rates"][0], entry["learning_rate"],
            "the view's lr is the logged one"
        );
        let g = |n: &str| pre["gradients"][n]["norm"].as_f64().unwrap();
        let clipped = (g("a").powi(2) + g("b").powi(2)).sqrt();
        let norm = entry["grad_norm"].as_f64().unwrap();
        assert!(
            (clipped - norm.min(1.0)).abs() < 1e-4,
            "gradients after clipping: {clipped} vs norm {norm}"
        );
        checked += 1;
    }
    assert_eq!(checked, 6, "logs at steps 4..24");
    for log in probe.iter().filter(|p| p["event"] == "on_log") {
        assert_eq!(log["missing_entry"], true);
        let mut with_step: Vec<String> =
            serde_json::from_value(log["payload_keys"].clone()).unwrap();
        with_step.push("step".into());
        let last: Vec<String> = serde_json::from_value(log["last_entry_keys"].clone()).unwrap();
        assert_eq!(
            last, with_step,
            "on_log comes after the entry is appended to the history"
        );
    }
    let history_lens: Vec<u64> = probe
        .iter()
        .filter(|p| p["event"] == "on_log")
        .map(|p| p["history_len"].as_u64().unwrap())
        .collect();
    assert_eq!(history_lens, (1..=7).collect::<Vec<_>>());
}
