//! Loading and driving plugins: grants give exactly what they name and are
//! required, outgoing HTTP reaches only granted origins, bad components get
//! one-line errors, the compile cache, and `replay`.

use crate::util::{fresh_dir, plugin, Run};
use std::path::{Path, PathBuf};

/// A run with the granted plugin and `grants.toml` granting it `data/`
/// (read-only), `outbox/` (writable) and `TRAINBOX_TEST_SECRET`; returns
/// the run and the two folders, made empty.
fn granted_run(test: &str) -> (Run, PathBuf, PathBuf) {
    let run = Run::regression(test).plugin("granted");
    let (data, out) = (run.dir.join("data"), run.dir.join("outbox"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        run.dir.join("grants.toml"),
        format!(
            "[plugins.granted]\npath = {:?}\nread_dirs = {{ \"/data\" = \"data\" }}\nwrite_dirs = {{ \"/out\" = \"outbox\" }}\nenv = [\"TRAINBOX_TEST_SECRET\"]\n",
            plugin("granted").to_str().unwrap()
        ),
    )
    .unwrap();
    (run, data, out)
}

#[test]
fn grants_give_exactly_what_they_name() {
    let (run, data, out) = granted_run("sandbox_grants");
    std::fs::write(data.join("input.txt"), "hello from the host").unwrap();
    let done = run
        .clone()
        .args(&["--config", "grants.toml"])
        .env("TRAINBOX_TEST_SECRET", "s3cret")
        .env("HOME", "/root")
        .ok();
    let seen = std::fs::read_to_string(done.out.join("plugins/granted/granted.txt")).unwrap();
    assert_eq!(
        seen,
        "read /data/input.txt: hello from the host\nwrite /out/copy.txt: ok\nwrite /data/tampered.txt: denied\n\
         env TRAINBOX_TEST_SECRET: s3cret\nenv HOME: unset\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("copy.txt")).unwrap(),
        "hello from the host"
    );
    assert!(!data.join("tampered.txt").exists());

    // Without the grants: a load-time error naming the grant to add.
    let err = Run::regression("sandbox_no_grants")
        .plugin("granted")
        .fails();
    assert!(
        err.contains(
            "granted.wasm: plugin granted asks for `read-dir /data`, which is not granted"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "add plugins.granted.read_dirs = {{ \"/data\" = \"<host dir>\" }} to the run config, beside plugins.granted.path = {:?}",
            plugin("granted").to_str().unwrap()
        )),
        "{err}"
    );
    // Or, by choice, the plugin is skipped with a warning.
    let run = Run::regression("sandbox_skip_ungranted").plugin("granted");
    std::fs::write(
        run.dir.join("skip.toml"),
        "[plugins.granted]\nmissing_grant = \"skip\"\n",
    )
    .unwrap();
    let done = run.args(&["--config", "skip.toml"]).ok();
    assert!(
        done.stderr
            .contains("the plugin is skipped (missing_grant = \"skip\")"),
        "{}",
        done.stderr
    );
    assert!(!done.out.join("plugins/granted/granted.txt").exists());
}

#[test]
fn a_fifo_in_a_granted_directory_cannot_hang_the_run() {
    // open(2) of a FIFO blocks until a writer comes, on the training thread,
    // where no deadline reaches: the host refuses to open one.
    let (run, data, _) = granted_run("sandbox_grants_fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(data.join("input.txt"))
        .status()
        .unwrap();
    assert!(made.success());
    let done = run.args(&["--config", "grants.toml"]).ok();
    let seen = std::fs::read_to_string(done.out.join("plugins/granted/granted.txt")).unwrap();
    assert!(
        seen.starts_with("read /data/input.txt: failed ("),
        "the FIFO is refused: {seen}"
    );
    assert_eq!(done.events().last().unwrap()["event"], "on_train_end");
}

#[test]
fn bad_components_get_one_line_errors() {
    let dir = fresh_dir("sandbox_bad_components");
    // A plugin built against another version of the WIT package.
    let bytes = std::fs::read(plugin("recorder")).unwrap();
    let mut old = bytes.clone();
    for iface in ["plugin", "types", "views", "progress"] {
        let from = format!("trainbox:callback/{iface}@0.2.0");
        let to = format!("trainbox:callback/{iface}@0.0.3");
        while let Some(at) = old.windows(from.len()).position(|w| w == from.as_bytes()) {
            old[at..at + to.len()].copy_from_slice(to.as_bytes());
        }
    }
    let old_api = dir.join("old-api.wasm");
    std::fs::write(&old_api, old).unwrap();
    let err = Run::command(
        "sandbox_old_api",
        &["plugins", "inspect", old_api.to_str().unwrap()],
    )
    .fails();
    assert!(
        err.contains("built for trainbox:callback@0.0.3, which this host does not serve (it serves 0.1.0 and 0.2.0); rebuild the plugin with trainbox-sdk 0.2.x"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A valid component of another world: a WASI command.
    let command = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../build/testing")
        .join(format!("{}.wasm", "not-a-plugin"));
    let err = Run::command(
        "sandbox_other_world",
        &["plugins", "inspect", command.to_str().unwrap()],
    )
    .fails();
    assert!(
        err.contains("not-a-plugin.wasm: not a trainbox plugin") && err.contains("wasi:cli/run"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn compiled_components_are_cached_and_cwasm_files_are_never_loaded() {
    let cache = fresh_dir("sandbox_cache_dir");
    let inspect = |test: &str, file: &Path| {
        Run::command(test, &["plugins", "inspect", file.to_str().unwrap()])
            .env("TRAINBOX_CACHE", cache.to_str().unwrap())
            .ok()
    };
    assert!(inspect("sandbox_cache_cold", &plugin("stopper"))
        .stdout
        .contains("compiled:     now"));
    assert!(inspect("sandbox_cache_warm", &plugin("stopper"))
        .stdout
        .contains("compiled:     from the cache"));
    let cwasm = std::fs::read_dir(cache.join("compiled"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(cwasm.extension().unwrap(), "cwasm");
    // A precompiled file handed over as a plugin is refused, never deserialized.
    let err = Run::command(
        "sandbox_cwasm",
        &["plugins", "inspect", cwasm.to_str().unwrap()],
    )
    .fails();
    assert!(err.contains("not a WebAssembly file"), "{err}");
    let run = Run::regression("sandbox_cwasm_folder");
    let folder = run.dir.join("mine");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(&cwasm, folder.join("stopper.cwasm")).unwrap();
    let done = run.args(&["--plugins", folder.to_str().unwrap()]).ok();
    assert!(
        !done.stderr.contains("stopper"),
        "a .cwasm in a plugin folder is not loaded: {}",
        done.stderr
    );
}

#[test]
fn replay_feeds_a_recorded_trace_to_a_plugin_offline() {
    let scores = "scores=0.5,0.6,0.61,0.65,0.64,0.63,0.62";
    let trained = Run::command(
        "sandbox_replay_trace",
        &["train", "--task", "scripted", "--disable_tqdm"],
    );
    let out = trained.out();
    let done = trained
        .args(&[
            "--output_dir",
            out.to_str().unwrap(),
            "--task_option",
            scores,
            "--task_option",
            "eval_every=2",
        ])
        .args(&[
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "2",
            "--metric_for_best_model",
            "score",
        ])
        .plugin("recorder")
        .args(&["--plugin_config", "recorder.values=true"])
        .ok();
    let trace = done.out.join("plugins/recorder/events.jsonl");
    let replayed = Run::command(
        "sandbox_replay",
        &[
            "replay",
            trace.to_str().unwrap(),
            plugin("early-stopping").to_str().unwrap(),
        ],
    )
    .args(&[
        "--metric_for_best_model",
        "score",
        "--eval_strategy",
        "steps",
    ])
    .args(&[
        "--plugin_config",
        "early-stopping.early_stopping_patience=2",
    ])
    .ok();
    let lines: Vec<serde_json::Value> = replayed
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["event"] == "on_evaluate" || l["event"] == "on_train_begin"),
        "only subscribed events"
    );
    let first_stop = lines
        .iter()
        .find(|l| l["control"]["should_training_stop"] == true)
        .unwrap();
    // Scores .64 at step 10 and .63 at step 12 do not beat .65: patience 2 runs out at step 12.
    assert_eq!(first_stop["global_step"], 12);
    assert!(
        replayed.stderr.contains("replayed 13 of"),
        "{}",
        replayed.stderr
    );
}

#[test]
fn outgoing_http_reaches_only_granted_origins() {
    let server = crate::util::HttpRecorder::start(18765);
    // A listener on the origin that is not granted: nothing may connect to it.
    let denied = std::net::TcpListener::bind("127.0.0.1:18766").unwrap();
    denied.set_nonblocking(true).unwrap();
    let run = Run::regression("sandbox_http")
        .plugin("http-probe")
        .args(&["--logging_steps", "8"]);
    std::fs::write(
        run.dir.join("http.toml"),
        format!(
            "[plugins.http-probe]\npath = {:?}\nallow_http = [\"http://127.0.0.1:18765\"]\n",
            plugin("http-probe").to_str().unwrap()
        ),
    )
    .unwrap();
    let done = run
        .clone()
        .args(&[
            "--config",
            "http.toml",
            "--plugin_config",
            "http-probe.url=http://127.0.0.1:18765/log",
        ])
        .args(&[
            "--plugin_config",
            "http-probe.denied_url=http://127.0.0.1:18766/steal",
        ])
        .ok();
    let seen = std::fs::read_to_string(done.out.join("plugins/http-probe/http.txt")).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines[0].starts_with("denied_url: refused:") && lines[0].contains("HTTP request denied"),
        "{seen}"
    );
    assert_eq!(
        lines.len(),
        5,
        "denied, then logs at 8, 16, 24 and the summary: {seen}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("status 200 {\"ok\": true}")),
        "{seen}"
    );
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 4);
    assert_eq!(
        (requests[0].0.as_str(), requests[0].1.as_str()),
        ("POST", "/log")
    );
    assert!(
        requests[0].2.starts_with("{\"step\": 8, \"loss\": "),
        "{:?}",
        requests[0]
    );
    assert!(
        denied.accept().is_err(),
        "no connection was made to the origin that is not granted"
    );
    assert!(
        done.stderr
            .contains("HTTP request to http://127.0.0.1:18766 denied"),
        "{}",
        done.stderr
    );

    // Without the grant, the plugin does not load; the error names the grant.
    let err = Run::regression("sandbox_http_no_grant")
        .plugin("http-probe")
        .fails();
    assert!(
        err.contains("add plugins.http-probe.allow_http = [\"http://127.0.0.1:18765\"]"),
        "{err}"
    );
}
