//! Plugins in other languages: the Python, JavaScript and C examples of
//! `plugins/examples/` (built by `make plugins`) train with a real run and
//! show their effect; `trainbox plugin new` makes a plugin in each language
//! that builds and passes `trainbox replay`.

use crate::util::{fresh_dir, plugin, Run};
use std::process::Command;
use trainbox::pyjson::Json;

#[test]
fn python_nan_guard_stops_training_when_the_loss_is_nan() {
    let done = Run::regression("lang_python_nan")
        .plugin("nan-guard")
        .args(&[
            "--logging_steps",
            "1",
            "--learning_rate",
            "1e38",
            "--logging_nan_inf_filter",
            "false",
        ])
        .ok();
    let state = done.state("trainer_state.json");
    let step = state["global_step"].as_u64().unwrap();
    assert!(step < 24, "stopped early, at step {step}");
    // trainbox's own parser keeps Python's `NaN` and `Infinity`.
    let raw = done.state_json("trainer_state.json");
    let field = |j: &Json, key: &str| j.as_object().and_then(|o| o.get(key)).cloned();
    let nan_log = field(&raw, "log_history")
        .and_then(|h| h.as_array().map(<[Json]>::to_vec))
        .unwrap()
        .into_iter()
        .find(|e| {
            field(e, "loss")
                .and_then(|l| l.as_f64())
                .is_some_and(|l| !l.is_finite())
        });
    assert!(
        nan_log.is_some() || done.stdout.contains("loss is"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout
            .contains(&format!("[nan-guard] step {step}: loss is ")),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout
            .contains("[nan-guard] training was stopped: loss is"),
        "finish ran: {}",
        done.stdout
    );
}

#[test]
fn python_nan_guard_stops_on_a_diverging_or_too_large_loss() {
    let done = Run::regression("lang_python_max_loss")
        .plugin("nan-guard")
        .args(&[
            "--logging_steps",
            "1",
            "--plugin_config",
            "nan-guard.max_loss=15",
        ])
        .ok();
    let state = done.state("trainer_state.json");
    let first_big = state["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["loss"].as_f64().is_some_and(|l| l > 15.0))
        .unwrap()["step"]
        .clone();
    assert_eq!(
        state["global_step"], first_big,
        "stops at the first loss above max_loss"
    );
    let err = Run::regression("lang_python_bad_config")
        .plugin("nan-guard")
        .args(&["--plugin_config", "nan-guard.max_loss=abc"])
        .fails();
    assert!(
        err.contains("nan-guard: configuration rejected: max_loss=abc: not a number"),
        "{err}"
    );
}

#[test]
fn js_csv_logger_writes_every_log_entry() {
    let done = Run::regression("lang_js_csv")
        .plugin("csv-logger")
        .args(&["--logging_steps", "4"])
        .ok();
    let csv = std::fs::read_to_string(done.out.join("plugins/csv-logger/logs.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,loss,grad_norm,learning_rate,epoch");
    assert_eq!(
        lines.len(),
        1 + 6 + 1,
        "a header, logs at 4..24, the summary:\n{csv}"
    );
    let state = done.state("trainer_state.json");
    for (line, entry) in lines[1..7]
        .iter()
        .zip(state["log_history"].as_array().unwrap())
    {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], entry["step"].to_string());
        let loss: f64 = cells[1].parse().unwrap();
        assert!(
            (loss - entry["loss"].as_f64().unwrap()).abs() < 1e-9,
            "{line} vs {entry}"
        );
    }
}

#[test]
fn c_grad_warn_flags_exactly_the_large_gradient_norms() {
    let done = Run::regression("lang_c_grad")
        .plugin("grad-warn")
        .args(&[
            "--logging_steps",
            "1",
            "--plugin_config",
            "grad-warn.threshold=9",
        ])
        .ok();
    let state = done.state("trainer_state.json");
    let expected: Vec<u64> = state["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["grad_norm"].as_f64().is_some_and(|g| g > 9.0))
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    let warned: Vec<u64> = done
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[grad-warn] WARNING step "))
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(warned, expected, "{}", done.stdout);
}

#[test]
fn plugin_new_makes_a_plugin_in_every_language_that_builds_and_replays() {
    let dir = fresh_dir("lang_plugin_new");
    for lang in ["rust", "python", "js", "c"] {
        let name = format!("hello-{lang}");
        let created = Run::command(
            &format!("lang_new_{lang}"),
            &["plugin", "new", &name, "--lang", lang],
        )
        .args(&["--dir", dir.join(&name).to_str().unwrap()])
        .ok();
        assert!(created.stdout.contains("created"), "{}", created.stdout);
        let build = Command::new("make")
            .arg("-C")
            .arg(dir.join(&name))
            .output()
            .unwrap();
        assert!(
            build.status.success(),
            "building the {lang} plugin:\n{}",
            String::from_utf8_lossy(&build.stderr)
        );
        let wasm = dir.join(&name).join(format!("{name}.wasm"));
        let trace = dir.join(&name).join("sample-trace.jsonl");
        let replayed = Run::command(
            &format!("lang_replay_{lang}"),
            &["replay", trace.to_str().unwrap(), wasm.to_str().unwrap()],
        )
        .ok();
        let printed: Vec<&str> = replayed
            .stdout
            .lines()
            .filter(|l| l.starts_with(&format!("[{name}] step ")))
            .collect();
        assert_eq!(
            printed.len(),
            4,
            "{lang}: a line per training log:\n{}",
            replayed.stdout
        );
        assert!(
            printed[0].starts_with(&format!("[{name}] step 2: loss 1.4000")),
            "{lang}: {}",
            printed[0]
        );
        assert!(
            replayed
                .stderr
                .contains(&format!("replayed 7 of 53 events into {name}")),
            "{}",
            replayed.stderr
        );
    }
    let err = Run::command(
        "lang_new_bad",
        &["plugin", "new", "Bad Name", "--lang", "rust"],
    )
    .fails();
    assert!(err.contains("is invalid"), "{err}");
    let err = Run::command(
        "lang_new_bad_lang",
        &["plugin", "new", "x", "--lang", "cobol"],
    )
    .fails();
    assert!(err.contains("not one of rust, python, js, c"), "{err}");
    let _ = plugin("recorder");
}
