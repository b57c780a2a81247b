//! Holes an outside hostile suite found in the sandbox, each closed at its
//! root: tables outside the memory cap, a state that grows on the way to
//! disk, lines that pass for the host's own, a rejected state that stopped
//! the run instead of applying `on_error`.

use crate::sandbox::{assert_run_complete, hostile, report_row};
use crate::util::{plugin, Run};

/// A regression run (save every 8 steps) with the recorder and `name`, whose
/// `[plugins.NAME]` table is `toml`.
fn with_plugin(test: &str, name: &str, toml: &str) -> Run {
    let run = Run::regression(test)
        .args(&["--save_steps", "8"])
        .plugin(name);
    std::fs::write(
        run.dir.join("run.toml"),
        format!("[plugins.{name}]\n{toml}\n"),
    )
    .unwrap();
    run.args(&["--config", "run.toml"])
}

#[test]
fn growing_tables_count_against_the_memory_cap() {
    // 40 tables grown by a million elements each (8 MB a table) at every
    // step: under a 64 MiB cap the ninth growth of the first call faults.
    // The deadline is generous so that a loaded machine's slow growth is
    // never cut by the clock before the cap is reached.
    let done = with_plugin(
        "holes_tables",
        "tables",
        "memory_mb = 64\ndeadline_ms = 10000",
    )
    .completes_with_faults("tables");
    assert_run_complete(&done);
    let live = done
        .stderr
        .lines()
        .filter(|l| {
            l.contains("plugin tables") && l.contains("on_step_begin: memory limit exceeded")
        })
        .count();
    assert_eq!(live, 4, "reported when it happens:\n{}", done.stderr);
    assert!(
        done.stderr.contains("the cap is 67108864 bytes"),
        "{}",
        done.stderr
    );
    let (_, _, faults, restarts, disabled) = report_row(&done, "tables");
    assert_eq!((faults, restarts, disabled), (4, 3, true));
}

#[test]
fn tables_declared_too_many_or_too_large_are_refused_at_load() {
    for (name, cause) in [
        ("many-tables", "table"),
        ("big-tables", "memory limit exceeded"),
    ] {
        let err = Run::regression(&format!("holes_{name}"))
            .plugin(name)
            .fails();
        let file = plugin(name);
        assert!(
            err.contains(&*file.to_string_lossy()) && err.contains(cause),
            "{name}: one error naming the file and the cause: {err}"
        );
    }
}

#[test]
fn a_state_is_limited_as_it_is_written_not_as_it_is_returned() {
    // About 1 MB as returned; over 100 MB once indented in trainer_state.json.
    let done = hostile(
        "holes_indented_state",
        "indented-state",
        "deadline_ms = 5000",
    )
    .completes_with_faults("hostile");
    assert_run_complete(&done);
    assert!(
        done.stderr.contains("save-state: returned a state that takes more than 16777216 bytes as trainer_state.json writes it"),
        "{}",
        done.stderr
    );
    for step in [8, 16, 24] {
        let path = done
            .out
            .join(format!("checkpoint-{step}/trainer_state.json"));
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len < 1 << 20, "{}: {len} bytes", path.display());
    }
}

/// The invisible characters a line may hide behind.
fn has_format_char(s: &str) -> bool {
    s.chars()
        .any(|c| matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFEFF))
}

#[test]
fn no_plugin_line_passes_for_the_hosts_own() {
    let done = hostile("holes_spoof", "spoof", "").ok();
    assert_run_complete(&done);
    for (stream, text) in [("stdout", &done.stdout), ("stderr", &done.stderr)] {
        assert!(
            !has_format_char(text),
            "{stream} keeps no format character:\n{text}"
        );
        assert!(!text.contains('\r'), "{stream} keeps no carriage return");
        let spoofed: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("checkpoint-8 is corrupt")
                    || l.contains("zero width")
                    || l.contains("isolate")
                    || l.contains("carriage return")
                    || l.contains("xobniart")
            })
            .collect();
        // stdout gets each line twice (stdout and write-line), stderr once.
        let want = if stream == "stdout" { 10 } else { 5 };
        assert_eq!(spoofed.len(), want, "{stream}:\n{text}");
        for line in spoofed {
            assert!(
                line.starts_with("[hostile] "),
                "{stream}: attributed: {line:?}"
            );
        }
    }
}

/// A first run of the hostile plugin in `mode` with checkpoints at 8 and
/// 16, then its resume from checkpoint-8 with plugin states restored.
fn resumed_with(test: &str, mode: &str, toml: &str) -> (Run, Run) {
    let first = hostile(test, mode, toml).args(&["--max_steps", "16"]);
    first.ok();
    let ckpt = first.out().join("checkpoint-8");
    let again = first.clone().args(&[
        "--resume_from_checkpoint",
        ckpt.to_str().unwrap(),
        "--max_steps",
        "24",
        "--restore_callback_states_from_checkpoint",
    ]);
    (first, again)
}

#[test]
fn a_rejected_state_is_a_fault_under_the_plugins_policy() {
    // restart (the default): the plugin starts afresh, the run goes on.
    let (_, again) = resumed_with("holes_reject_restart", "reject-state", "");
    let done = again.completes_with_faults("hostile");
    let events = done.events();
    assert_eq!(events.last().unwrap()["event"], "on_train_end");
    assert!(
        done.stderr
            .lines()
            .any(|l| l.contains("warning: plugin hostile")
                && l.contains("load-state: rejected its saved state: this state is not mine")
                && l.contains("restarting (1/3)")),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains("fault: hostile: load-state: rejected its saved state"),
        "in the end-of-run table: {}",
        done.stderr
    );
    let (calls, _, faults, restarts, disabled) = report_row(&done, "hostile");
    assert_eq!((faults, restarts, disabled), (1, 1, false));
    assert_eq!(
        calls, 16,
        "every step after the resume reached the restarted plugin"
    );
    // abort: the resume stops with the plugin's name and the cause.
    let (_, again) = resumed_with("holes_reject_abort", "reject-state", "on_error = \"abort\"");
    let err = again.fails();
    assert!(
        err.contains("plugin hostile")
            && err.contains("rejected its saved state")
            && err.contains("aborting the run (on_error = abort)"),
        "{err}"
    );
}
