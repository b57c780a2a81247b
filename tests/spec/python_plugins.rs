//! Python plugins without surprises (plugins/python-sdk): a module imported
//! inside a function works, HTTP works through `trainbox_http` and through
//! `urllib.request`, an exception shows its traceback (file, line, source,
//! exception), and an import the build cannot bundle fails the build with
//! the file, the line and the fix. The test plugins are
//! plugins/testing/*-py, built by `make plugins`.

use crate::util::{fresh_dir, HttpRecorder, Run};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn python_imports_inside_functions_and_lazy_codecs_work() {
    let done = Run::regression("py_lazy_import")
        .plugin("lazy-import-py")
        .args(&["--logging_steps", "8"])
        .ok();
    let state = done.state("trainer_state.json");
    let losses: Vec<f64> = state["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["loss"].as_f64())
        .collect();
    assert_eq!(losses.len(), 3, "logs at 8, 16, 24");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(done.out.join("plugins/lazy-import-py/summary.json")).unwrap(),
    )
    .unwrap();
    // `import statistics` and `import json` inside on_event and finish.
    assert_eq!(summary["losses"], 3, "{summary}");
    let mean = losses.iter().sum::<f64>() / 3.0;
    assert!(
        (summary["mean"].as_f64().unwrap() - mean).abs() < 1e-6,
        "{summary} vs {mean}"
    );
    // The idna codec, which the standard library imports by name on use.
    assert_eq!(summary["idna"], "xn--bcher-kva.example");
    assert!(
        done.stdout.contains("[lazy-import-py] step 8: mean loss "),
        "{}",
        done.stdout
    );
}

#[test]
fn python_http_reaches_the_granted_origin_through_trainbox_http_and_urllib() {
    let server = HttpRecorder::start(18767);
    let denied = std::net::TcpListener::bind("127.0.0.1:18768").unwrap();
    denied.set_nonblocking(true).unwrap();
    let run = Run::regression("py_http").plugin("http-py");
    std::fs::write(
        run.dir.join("http.toml"),
        format!(
            "[plugins.http-py]\npath = {:?}\nallow_http = [\"http://127.0.0.1:18767\"]\n",
            crate::util::plugin("http-py").to_str().unwrap()
        ),
    )
    .unwrap();
    let done = run
        .args(&["--logging_steps", "8", "--config", "http.toml"])
        .args(&["--plugin_config", "http-py.url=http://127.0.0.1:18767/log"])
        .args(&[
            "--plugin_config",
            "http-py.denied_url=http://127.0.0.1:18768/steal",
        ])
        .ok();
    let seen = std::fs::read_to_string(done.out.join("plugins/http-py/http.txt")).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines[0].starts_with("denied_url: refused: HTTP request to http://127.0.0.1:18768 denied"),
        "{seen}"
    );
    let mut expected = Vec::new();
    for step in [8, 16, 24] {
        expected.push(format!(
            "trainbox_http step {step}: status 200 {{\"ok\": true}}"
        ));
        expected.push(format!("urllib step {step}: status 200 {{\"ok\": true}}"));
    }
    assert_eq!(lines[1..], expected, "{seen}");
    let requests = server.requests.lock().unwrap().clone();
    let paths: Vec<(&str, &str)> = requests
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        paths,
        [("POST", "/log"), ("POST", "/log?via=urllib")].repeat(3)
    );
    assert!(
        requests[1].2.starts_with("{\"step\": 8, \"loss\": "),
        "{requests:?}"
    );
    assert!(denied.accept().is_err(), "nothing reached the other origin");
}

#[test]
fn a_python_exception_shows_its_traceback_and_counts_as_a_fault() {
    let done = Run::regression("py_raise")
        .plugin("raiser-py")
        .args(&["--logging_steps", "2"])
        .completes_with_faults("raiser-py");
    let traceback = [
        "[raiser-py] Traceback (most recent call last):",
        "[raiser-py]   File \"app.py\", line 32, in on_event",
        "[raiser-py]     ratio(1.0, state.global_step - SETTINGS[\"step\"])",
        "[raiser-py]   File \"app.py\", line 15, in ratio",
        "[raiser-py]     return loss / steps_left",
        "[raiser-py] ZeroDivisionError: division by zero",
    ]
    .join("\n");
    assert!(done.stderr.contains(&traceback), "{}", done.stderr);
    // The fault line of the report quotes it too, exception last.
    let quoted = "fault: raiser-py: on_log: trapped: wasm `unreachable` executed (a panic or abort) after it wrote: \
                  Traceback (most recent call last): | File \"app.py\", line 32, in on_event | \
                  ratio(1.0, state.global_step - SETTINGS[\"step\"]) | File \"app.py\", line 15, in ratio | \
                  return loss / steps_left | ZeroDivisionError: division by zero";
    assert!(done.stderr.contains(quoted), "{}", done.stderr);
    // In configure the exception is its error: file, line and exception in
    // the one line that stops the run.
    let err = Run::regression("py_raise_configure")
        .plugin("raiser-py")
        .args(&["--plugin_config", "raiser-py.in=configure"])
        .fails();
    assert!(
        err.contains("[raiser-py]     return {}[\"missing_setting\"]"),
        "{err}"
    );
    assert!(
        err.contains(
            "raiser-py: configuration rejected: configure raised KeyError: 'missing_setting' (app.py, line 27, in configure)"
        ),
        "{err}"
    );
}

/// componentize-py as `make lang-tools` installs it.
fn lang_tools() -> PathBuf {
    let cache = std::env::var_os("TRAINBOX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var("HOME").unwrap()).join(".cache/trainbox"));
    cache.join("lang-tools/py/bin")
}

#[test]
fn a_python_import_the_build_cannot_bundle_fails_the_build_naming_it() {
    let dir = fresh_dir("py_build_missing_module");
    let app = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/testing/lazy-import-py/app.py"),
    )
    .unwrap()
    .replace(
        "        import statistics\n\n",
        "        import statistics\n        import no_such_module_here\n\n",
    );
    std::fs::write(dir.join("app.py"), &app).unwrap();
    let line = app
        .lines()
        .position(|l| l.contains("no_such_module_here"))
        .unwrap()
        + 1;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tools = lang_tools();
    let out = Command::new(tools.join("python3"))
        .arg(root.join("plugins/python-sdk/trainbox_build.py"))
        .arg("--componentize-py")
        .arg(tools.join("componentize-py"))
        .arg("--wit")
        .arg(root.join("wit"))
        .args(["app", "-o", "app.wasm"])
        .current_dir(&dir)
        .output()
        .expect("running trainbox_build.py (make lang-tools installs componentize-py)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!dir.join("app.wasm").exists());
    assert!(
        stderr.contains(&format!(
            "app.py:{line}: `import no_such_module_here`: ModuleNotFoundError"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("pip install --target deps no_such_module_here"),
        "the fix: {stderr}"
    );
}

/// The Python build deletes and remakes only a scratch folder it made: a
/// folder of the user's under that name is left whole, with one error.
#[test]
fn the_python_build_never_deletes_a_folder_it_did_not_make() {
    let dir = fresh_dir("py_build_foreign_folder");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(
        root.join("plugins/testing/lazy-import-py/app.py"),
        dir.join("app.py"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("mine")).unwrap();
    std::fs::write(dir.join("mine/notes.txt"), "keep me").unwrap();
    let tools = lang_tools();
    let out = Command::new(tools.join("python3"))
        .arg(root.join("plugins/python-sdk/trainbox_build.py"))
        .arg("--componentize-py")
        .arg(tools.join("componentize-py"))
        .arg("--wit")
        .arg(root.join("wit"))
        .args(["--build", "mine", "app", "-o", "app.wasm"])
        .current_dir(&dir)
        .output()
        .expect("running trainbox_build.py (make lang-tools installs componentize-py)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("was not made by trainbox_build.py"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("mine/notes.txt")).unwrap(),
        "keep me"
    );
}
