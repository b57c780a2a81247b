//! The sandbox: hostile plugins, loaded beside the recorder, cannot hang,
//! exhaust, crash or escape, and every fault is reported. Grants, the
//! compile cache and `replay` are in `loading.rs`.

use crate::util::{Done, Run};
use std::path::Path;

/// A regression run (save every 8 steps) with the recorder and the hostile
/// plugin in `mode`, plus a TOML config for it.
pub(crate) fn hostile(test: &str, mode: &str, plugin_toml: &str) -> Run {
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
pub(crate) fn assert_run_complete(done: &Done) {
    let events = done.events();
    let step_ends = events
        .iter()
        .filter(|e| e["event"] == "on_step_end")
        .count();
    assert_eq!(step_ends, 24, "every step reached the recorder");
    assert_eq!(events.last().unwrap()["event"], "on_train_end");
    done.assert_checkpoints(&[8, 16, 24]);
}

/// The report row of a plugin: (calls, max ms, faults, restarts, disabled).
/// From the one-line report of a run where no plugin faulted or was slow,
/// the calls, no faults, restarts or disabling, and NaN for the max.
pub(crate) fn report_row(done: &Done, label: &str) -> (u64, f64, u64, u64, bool) {
    let compact = done
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("plugins: "))
        .and_then(|l| l.split("; ").next())
        .and_then(|list| {
            list.split(", ")
                .find(|each| each.split_whitespace().next() == Some(label))
        });
    if let Some(each) = compact {
        let calls = each.split_whitespace().nth(1).unwrap().parse().unwrap();
        return (calls, f64::NAN, 0, 0, false);
    }
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
        names.iter().all(|n| !n.starts_with(".checkpoint")),
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
    assert_flood_capped("lines", "[hostile] write-line ");
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
    // A line over the budget is dropped whole: no fragment of it is printed,
    // alone or run into a later line.
    let whole = format!("[hostile] {}", "b".repeat(999));
    let lines: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("[hostile]"))
        .collect();
    assert!(!lines.is_empty(), "the lines within the budget are printed");
    assert!(
        lines.iter().all(|l| *l == whole),
        "only whole lines: {:?}",
        lines.iter().find(|l| **l != whole).map(|l| l.len())
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
    assert_fault_reported(&done, "holds more than 1024 handles", 4);
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
