//! The sandbox: hostile plugins, loaded beside the recorder, cannot hang,
//! exhaust, crash or escape; every fault is reported; grants work and are
//! required; the compile cache and `replay` work.

use crate::util::{fresh_dir, plugin, Done, Run};
use std::path::Path;

/// A regression run (save every 8 steps) with the recorder and the hostile
/// plugin in `mode`, plus a TOML config for it.
fn hostile(test: &str, mode: &str, plugin_toml: &str) -> Run {
    let run = Run::regression(test)
        .args(&["--save_steps", "8"])
        .plugin("hostile");
    std::fs::write(
        run.dir.join("run.toml"),
        format!("[plugins.hostile]\n{plugin_toml}\n"),
    )
    .unwrap();
    run.args(&[
        "--config",
        "run.toml",
        "--plugin_config",
        &format!("hostile.mode={mode}"),
    ])
}

/// The run finished, the trace and the checkpoints are complete.
fn assert_run_complete(done: &Done) {
    let events = done.events();
    let step_ends = events
        .iter()
        .filter(|e| e["event"] == "on_step_end")
        .count();
    assert_eq!(step_ends, 24, "every step reached the recorder");
    assert_eq!(events.last().unwrap()["event"], "on_train_end");
    assert_eq!(done.checkpoints(), [8, 16, 24]);
    for step in [8, 16, 24] {
        let ckpt = done.out.join(format!("checkpoint-{step}"));
        for file in [
            "model.safetensors",
            "trainer_state.json",
            "optimizer.safetensors",
        ] {
            assert!(
                ckpt.join(file).is_file(),
                "{} is incomplete",
                ckpt.display()
            );
        }
    }
}

/// The report row of a plugin: (calls, max ms, faults, restarts, disabled).
fn report_row(done: &Done, label: &str) -> (u64, f64, u64, u64, bool) {
    let line = done
        .stderr
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no report row for {label}:\n{}", done.stderr));
    let f: Vec<&str> = line.split_whitespace().collect();
    (
        f[1].parse().unwrap(),
        f[3].parse().unwrap(),
        f[5].parse().unwrap(),
        f[6].parse().unwrap(),
        line.ends_with("disabled"),
    )
}

/// Every fault is reported with the plugin's name, the event and the cause,
/// once when it happens and again in the summary.
fn assert_fault_reported(done: &Done, cause: &str, times: usize) {
    let live = done
        .stderr
        .lines()
        .filter(|l| l.contains("plugin hostile") && l.contains("on_step_end") && l.contains(cause))
        .count();
    assert_eq!(live, times, "fault lines with {cause:?}:\n{}", done.stderr);
    let summary = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("fault: hostile: on_step_end:") && l.contains(cause))
        .count();
    assert_eq!(
        summary, times,
        "summary lines with {cause:?}:\n{}",
        done.stderr
    );
}

#[test]
fn plugin_in_an_infinite_loop_is_interrupted_restarted_then_disabled() {
    let done =
        hostile("sandbox_loop", "loop", "deadline_ms = 250").completes_with_faults("hostile");
    assert_run_complete(&done);
    assert_fault_reported(&done, "ran past its deadline of 250 ms", 4);
    let (_, max_ms, faults, restarts, disabled) = report_row(&done, "hostile");
    assert_eq!(
        (faults, restarts, disabled),
        (4, 3, true),
        "restarted 3 times, then disabled"
    );
    assert!(
        max_ms < 500.0,
        "a runaway call is interrupted within twice its deadline: {max_ms} ms"
    );
}

#[test]
fn memory_bomb_hits_its_cap_and_training_goes_on() {
    let done = hostile("sandbox_alloc", "alloc", "memory_mb = 32").completes_with_faults("hostile");
    assert_run_complete(&done);
    assert_fault_reported(&done, "memory limit exceeded", 4);
    assert!(
        done.stderr.contains("the cap is 33554432 bytes"),
        "{}",
        done.stderr
    );
}

#[test]
fn panic_is_a_trap_with_the_message_attributed() {
    let done = hostile("sandbox_panic", "panic", "").completes_with_faults("hostile");
    assert_run_complete(&done);
    assert_fault_reported(&done, "a panic", 4);
    assert!(
        done.stderr.contains("[hostile] ")
            && done.stderr.contains("hostile plugin panics at step 3"),
        "{}",
        done.stderr
    );
}

#[test]
fn exit_ends_the_plugin_not_the_run() {
    let done =
        hostile("sandbox_exit", "exit", "on_error = \"disable\"").completes_with_faults("hostile");
    assert_run_complete(&done);
    assert_fault_reported(&done, "called exit", 1);
    let (_, _, faults, restarts, disabled) = report_row(&done, "hostile");
    assert_eq!(
        (faults, restarts, disabled),
        (1, 0, true),
        "on_error = disable: no restart"
    );
}

#[test]
fn abort_policy_stops_the_run_cleanly() {
    let run = hostile("sandbox_abort", "panic", "on_error = \"abort\"");
    let (ok, _, stderr) = run.outcome();
    assert!(!ok, "the run must fail under on_error = abort");
    assert!(
        stderr.contains("plugin hostile") && stderr.contains("aborting the run (on_error = abort)"),
        "{stderr}"
    );
    let events = crate::util::read_jsonl(&run.out().join("plugins/recorder/events.jsonl"));
    let last = events.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["global_step"].as_u64()),
        (Some("on_step_end"), Some(3)),
        "flushed by finish"
    );
    let names: Vec<String> = std::fs::read_dir(run.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "no half-written checkpoint: {names:?}"
    );
}

#[test]
fn plugin_cannot_read_or_write_outside_its_directory() {
    let run = hostile("sandbox_escape", "escape", "");
    let outside = run.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    let own = run.out().join("plugins/hostile");
    std::fs::create_dir_all(&own).unwrap();
    std::os::unix::fs::symlink(&outside, own.join("link-out")).unwrap();
    let done = run.env("HOME", "/root").ok();
    assert_run_complete(&done);
    let report = std::fs::read_to_string(own.join("escape.txt")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 11, "{report}");
    for line in &lines {
        if line.starts_with("list /:") {
            assert!(
                line.ends_with("ALLOWED 1 entries"),
                "only its own directory is visible: {line}"
            );
        } else {
            assert!(line.contains(": denied"), "escaped: {line}");
        }
    }
    assert!(!done.out.join("plugins/escaped.txt").exists());
    assert!(!Path::new("/tmp/trainbox-escaped.txt").exists());
}

/// A flooding run finished, printed a burst of lines starting with
/// `prefix` then was rate-capped, with no escape sequence and no fault.
fn assert_flood_capped(mode: &str, prefix: &str) {
    let started = std::time::Instant::now();
    let done = hostile(&format!("sandbox_{mode}"), mode, "deadline_ms = 5000").ok();
    // At most the burst, then the rate for as long as the run took (a
    // loaded machine runs longer, and may print more).
    let most = 200 + (100.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert_run_complete(&done);
    let lines = done
        .stdout
        .lines()
        .filter(|l| l.starts_with(prefix))
        .count();
    assert!(
        (200..=most).contains(&lines),
        "a burst, then the rate cap: {lines} lines, at most {most}"
    );
    assert!(
        !done.stdout.contains('\u{1b}'),
        "no escape sequence reaches the terminal"
    );
    assert!(
        done.stderr
            .contains("[hostile] prints more than 100 lines a second"),
        "{}",
        done.stderr
    );
    assert_eq!(report_row(&done, "hostile").2, 0, "flooding is not a fault");
}

#[test]
fn flood_is_capped_filtered_and_attributed() {
    assert_flood_capped("flood", "[hostile] flood line");
}

#[test]
fn write_line_shares_the_output_caps() {
    assert_flood_capped("lines", "write-line ");
}

#[test]
fn stdout_and_write_line_share_one_byte_budget() {
    let done = hostile("sandbox_budget", "budget", "deadline_ms = 5000").ok();
    assert_run_complete(&done);
    assert!(
        done.stderr
            .contains("[hostile] output limit reached (1024 KiB at once"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stdout.contains("after the budget"),
        "write-line draws on the budget stdout spent"
    );
    assert_eq!(report_row(&done, "hostile").2, 0, "not a fault");
}

#[test]
fn bars_and_handles_are_capped_per_instance() {
    let done =
        hostile("sandbox_bars", "bars", "deadline_ms = 5000").completes_with_faults("hostile");
    assert_run_complete(&done);
    assert_fault_reported(&done, "has more than 32 progress bars open", 4);
    let done = hostile("sandbox_left_bars", "left-bars", "deadline_ms = 5000")
        .completes_with_faults("hostile");
    assert_run_complete(&done);
    assert_fault_reported(&done, "left more than 1000 progress bars drawn", 4);
    let done = hostile("sandbox_handles", "handles", "deadline_ms = 5000")
        .completes_with_faults("hostile");
    assert_run_complete(&done);
    assert_fault_reported(&done, "holds more than 4096 handles", 4);
    let (_, _, faults, restarts, disabled) = report_row(&done, "hostile");
    assert_eq!((faults, restarts, disabled), (4, 3, true));
}

#[test]
fn a_state_nested_too_deep_is_refused_not_a_crash() {
    let done = hostile("sandbox_deep_state", "deep-state", "deadline_ms = 5000")
        .completes_with_faults("hostile");
    assert_run_complete(&done);
    assert!(
        done.stderr.contains("save-state:") && done.stderr.contains("nested deeper than"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_restarted_plugin_gets_its_last_saved_state() {
    let done = hostile("sandbox_counter", "counter", "")
        .args(&["--plugin_config", "hostile.at_step=10"])
        .completes_with_faults("hostile");
    assert_run_complete(&done);
    let counts = std::fs::read_to_string(done.out.join("plugins/hostile/counts.txt")).unwrap();
    let lines: Vec<&str> = counts.lines().collect();
    assert_eq!(lines[9], "step 10 count 10", "{counts}");
    // Restarted with the state of checkpoint-8 (count 8), not from zero.
    assert_eq!(lines[10], "step 11 count 9", "{counts}");
    assert_eq!(lines.last().unwrap(), &"step 24 count 22", "{counts}");
    let state = done.state("checkpoint-24/trainer_state.json");
    assert_eq!(
        state["stateful_callbacks"]["hostile"]["attributes"]["count"], 22,
        "the checkpoint holds the restored count"
    );
}

#[test]
fn a_huge_state_is_refused_and_checkpoints_stay_whole() {
    let done = hostile("sandbox_big_state", "big-state", "").completes_with_faults("hostile");
    assert_run_complete(&done);
    assert!(
        done.stderr.contains("save-state: memory limit exceeded"),
        "{}",
        done.stderr
    );
    // With room to build it, a 40 MiB state reaches the host, which refuses it.
    let done = hostile(
        "sandbox_big_state_room",
        "big-state",
        "memory_mb = 256\ndeadline_ms = 5000",
    )
    .args(&["--plugin_config", "hostile.state_mb=40"])
    .completes_with_faults("hostile");
    assert_run_complete(&done);
    assert!(
        done.stderr
            .contains("save-state: returned a state of 419430"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("the limit is 16777216"),
        "{}",
        done.stderr
    );
    let state = std::fs::read(done.out.join("checkpoint-24/trainer_state.json")).unwrap();
    assert!(state.len() < 1 << 20, "the blob is not in the checkpoint");
}

#[test]
fn a_slow_plugin_within_its_deadline_is_allowed_and_reported() {
    let done = hostile("sandbox_sleep", "sleep", "")
        .args(&["--plugin_config", "hostile.sleep_ms=50"])
        .ok();
    assert_run_complete(&done);
    let (calls, max_ms, faults, _, disabled) = report_row(&done, "hostile");
    assert_eq!((calls, faults, disabled), (24, 0, false));
    assert!(max_ms >= 50.0, "the report shows the time: {max_ms} ms");
}

#[test]
fn grants_give_exactly_what_they_name() {
    let run = Run::regression("sandbox_grants").plugin("granted");
    let (data, out) = (run.dir.join("data"), run.dir.join("outbox"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(data.join("input.txt"), "hello from the host").unwrap();
    std::fs::write(
        run.dir.join("grants.toml"),
        "[plugins.granted]\nread_dirs = { \"/data\" = \"data\" }\nwrite_dirs = { \"/out\" = \"outbox\" }\nenv = [\"TRAINBOX_TEST_SECRET\"]\n",
    )
    .unwrap();
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
        err.contains(
            "add plugins.granted.read_dirs = { \"/data\" = \"<host dir>\" } to the run config"
        ),
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
fn bad_components_get_one_line_errors() {
    let dir = fresh_dir("sandbox_bad_components");
    // A plugin built against another version of the WIT package.
    let bytes = std::fs::read(plugin("recorder")).unwrap();
    let mut old = bytes.clone();
    for iface in ["plugin", "types", "views", "progress"] {
        let from = format!("trainbox:callback/{iface}@0.1.0");
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
        err.contains("built for trainbox:callback@0.0.3, this host supports 0.1.0; rebuild"),
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
        "[plugins.http-probe]\nallow_http = [\"http://127.0.0.1:18765\"]\n",
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
