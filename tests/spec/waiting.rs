//! Waiting is inside the deadline: a plugin that waits in a host call (a
//! sleep, a poll, a clock subscription), where epoch interruption cannot
//! reach it, is stopped at the call's deadline in every export, and the
//! run goes on with its trace and checkpoints complete.

use crate::util::{Done, Run};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ends the whole test process with a message if a test is still running
/// after `limit`: without the bound, a sleep that never ends hangs the run.
struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    fn start(test: &'static str, limit: Duration) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < limit {
                std::thread::sleep(Duration::from_millis(200));
                if flag.load(Ordering::Relaxed) {
                    return;
                }
            }
            eprintln!("waiting::{test} still running after {limit:?}: a wait in a plugin's host call was not cut at its deadline");
            std::process::exit(101);
        });
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A regression run (save every 8 steps) with the recorder and the sleeper,
/// told where and how to wait by `config` (`key=value`, without the
/// `sleeper.` prefix), and `plugin_toml` for its settings.
fn sleeper(test: &str, config: &[&str], plugin_toml: &str) -> Run {
    let run = Run::regression(test)
        .args(&["--save_steps", "8"])
        .plugin("sleeper");
    std::fs::write(
        run.dir.join("run.toml"),
        format!("[plugins.sleeper]\n{plugin_toml}\n"),
    )
    .unwrap();
    let mut run = run.args(&["--config", "run.toml"]);
    for c in config {
        run = run.args(&["--plugin_config", &format!("sleeper.{c}")]);
    }
    run
}

/// The run finished, the recorder saw every step and its trace ends with
/// `on_train_end`, the checkpoints are complete.
fn assert_run_complete(done: &Done) {
    crate::sandbox::assert_run_complete(done);
    let outcome = std::fs::read_to_string(done.out.join("plugins/recorder/outcome.txt")).unwrap();
    assert_eq!(outcome, "completed\n");
}

/// The sleeper's row in the end-of-run table.
struct Row {
    faults: u64,
    restarts: u64,
    disabled: bool,
    /// The longest event call.
    event_max_ms: f64,
    /// Total ms of configure, load-state, save-state and finish.
    configure_ms: f64,
    load_ms: f64,
    save_ms: f64,
    finish_ms: f64,
}

fn sleeper_row(done: &Done) -> Row {
    let line = done
        .stderr
        .lines()
        .find(|l| l.split_whitespace().next() == Some("sleeper"))
        .unwrap_or_else(|| panic!("no report row for sleeper:\n{}", done.stderr));
    let f: Vec<&str> = line.split_whitespace().collect();
    let ms = |i: usize| -> f64 { f[i].parse().unwrap() };
    Row {
        faults: f[5].parse().unwrap(),
        restarts: f[6].parse().unwrap(),
        disabled: line.ends_with("disabled"),
        event_max_ms: ms(3),
        configure_ms: ms(8),
        load_ms: ms(9),
        save_ms: ms(10),
        finish_ms: ms(11),
    }
}

/// The fault was reported once when it happened, with the plugin's name,
/// `what` (an event or an export) and `cause`, and once in the table.
fn assert_fault_reported_once(done: &Done, what: &str, cause: &str) {
    let live = done
        .stderr
        .lines()
        .filter(|l| {
            l.starts_with("trainbox: warning: plugin sleeper ")
                && l.contains(what)
                && l.contains(cause)
        })
        .count();
    assert_eq!(live, 1, "live lines with {what}: {cause}:\n{}", done.stderr);
    let summary: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("fault: sleeper: "))
        .collect();
    assert_eq!(summary.len(), 1, "{}", done.stderr);
    assert!(
        summary[0].starts_with(&format!("fault: sleeper: {what}: {cause}")),
        "{}",
        done.stderr
    );
}

/// What the sleeper noted in its directory (`configure`, `step N`).
fn calls(done: &Done) -> Vec<String> {
    std::fs::read_to_string(done.out.join("plugins/sleeper/calls.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

const EVENT_DEADLINE: &str = "ran past its deadline of 100 ms";
/// `describe`, `configure`, `load-state` and `finish` run under 10 s.
const INIT_DEADLINE: &str = "ran past its deadline of 10000 ms";

#[test]
fn a_sleep_that_never_ends_in_an_event_is_cut_at_the_deadline_and_restarted() {
    let _watchdog = Watchdog::start(
        "a_sleep_that_never_ends_in_an_event_is_cut_at_the_deadline_and_restarted",
        Duration::from_secs(120),
    );
    let done = sleeper("waiting_event", &["where=on-event"], "deadline_ms = 100")
        .completes_with_faults("sleeper");
    assert_run_complete(&done);
    assert_fault_reported_once(
        &done,
        "on_step_end",
        &format!("{EVENT_DEADLINE} (if it needs more, set plugins.sleeper.deadline_ms)"),
    );
    assert!(done.stderr.contains("restarting (1/3)"), "{}", done.stderr);
    let row = sleeper_row(&done);
    assert_eq!((row.faults, row.restarts, row.disabled), (1, 1, false));
    assert!(
        row.event_max_ms < 200.0,
        "the sleep is cut within twice its 100 ms deadline: {} ms",
        row.event_max_ms
    );
    let calls = calls(&done);
    assert_eq!(
        calls.iter().filter(|c| *c == "configure").count(),
        2,
        "{calls:?}"
    );
    assert!(
        !calls.contains(&"step 3".to_string()),
        "the step it slept in: {calls:?}"
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("step 24"),
        "the restarted instance handles every later step: {calls:?}"
    );
}

#[test]
fn every_way_of_waiting_ends_at_the_deadline() {
    let _watchdog = Watchdog::start(
        "every_way_of_waiting_ends_at_the_deadline",
        Duration::from_secs(240),
    );
    // A 3 s wait against a 100 ms deadline, and waits that never end: a
    // sleep, a poll on a list, a clock instant, a loop of 1 ms sleeps, a
    // write to an HTTP body that nobody reads.
    let hows = ["sleep", "poll", "instant", "short-sleeps", "body"];
    for how in hows {
        // A write nobody reads waits for ever.
        let lengths: &[&str] = if how == "body" {
            &["forever"]
        } else {
            &["3000", "forever"]
        };
        for &ms in lengths {
            let test = format!("waiting_{how}_{ms}");
            let mut config = vec![format!("how={how}")];
            if ms != "forever" {
                config.push(format!("ms={ms}"));
            }
            let config: Vec<&str> = config.iter().map(String::as_str).collect();
            let started = Instant::now();
            let done = sleeper(&test, &config, "deadline_ms = 100\non_error = \"disable\"")
                .completes_with_faults("sleeper");
            assert_run_complete(&done);
            assert_fault_reported_once(&done, "on_step_end", EVENT_DEADLINE);
            let row = sleeper_row(&done);
            assert_eq!((row.faults, row.disabled), (1, true), "{how} {ms}");
            assert!(
                row.event_max_ms < 200.0,
                "{how} {ms}: the wait is cut near its 100 ms deadline: {} ms",
                row.event_max_ms
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{how} {ms}: the run took {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn a_sleep_in_save_state_is_cut_and_every_checkpoint_is_written() {
    let _watchdog = Watchdog::start(
        "a_sleep_in_save_state_is_cut_and_every_checkpoint_is_written",
        Duration::from_secs(120),
    );
    let done = sleeper(
        "waiting_save",
        &["where=save-state"],
        "deadline_ms = 100\non_error = \"disable\"",
    )
    .completes_with_faults("sleeper");
    assert_run_complete(&done);
    assert_fault_reported_once(&done, "save-state", EVENT_DEADLINE);
    let row = sleeper_row(&done);
    assert!(row.disabled);
    assert!(
        row.save_ms < 200.0,
        "save-state is cut within twice its 100 ms deadline: {} ms",
        row.save_ms
    );
}

#[test]
fn a_sleep_in_finish_is_cut_and_reported() {
    let _watchdog = Watchdog::start(
        "a_sleep_in_finish_is_cut_and_reported",
        Duration::from_secs(120),
    );
    let done = sleeper("waiting_finish", &["where=finish"], "").completes_with_faults("sleeper");
    assert_run_complete(&done);
    assert_fault_reported_once(&done, "finish", INIT_DEADLINE);
    let row = sleeper_row(&done);
    assert!(
        row.finish_ms < 20_000.0,
        "finish is cut near its 10 s deadline: {} ms",
        row.finish_ms
    );
}

#[test]
fn a_sleep_in_load_state_on_resume_is_cut_and_training_goes_on() {
    let _watchdog = Watchdog::start(
        "a_sleep_in_load_state_on_resume_is_cut_and_training_goes_on",
        Duration::from_secs(240),
    );
    let first = sleeper("waiting_load_first", &["where=none"], "").ok();
    assert_run_complete(&first);
    let run = sleeper(
        "waiting_load",
        &["where=load-state"],
        "on_error = \"disable\"",
    );
    let done = crate::resume::restoring(run, &first, 16).completes_with_faults("sleeper");
    assert_fault_reported_once(&done, "load-state", INIT_DEADLINE);
    let events = done.events();
    assert_eq!(events.last().unwrap()["event"], "on_train_end");
    let steps: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "on_step_end")
        .map(|e| e["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        (17..=24).collect::<Vec<_>>(),
        "the recorder saw the rest"
    );
    done.assert_checkpoints(&[16, 24]);
    let row = sleeper_row(&done);
    assert!(row.disabled);
    assert!(
        row.load_ms < 20_000.0,
        "load-state is cut near its 10 s deadline: {} ms",
        row.load_ms
    );
}

#[test]
fn a_sleep_in_the_configure_of_a_restart_disables_the_plugin() {
    let _watchdog = Watchdog::start(
        "a_sleep_in_the_configure_of_a_restart_disables_the_plugin",
        Duration::from_secs(120),
    );
    let done = sleeper("waiting_restart", &["where=restart"], "").completes_with_faults("sleeper");
    assert_run_complete(&done);
    assert!(
        done.stderr
            .lines()
            .any(|l| l.starts_with("trainbox: warning: plugin sleeper ")
                && l.contains(&format!(
                    "restart failed: configure {INIT_DEADLINE}; disabled"
                ))),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains(&format!(
            "fault: sleeper: restart: configure {INIT_DEADLINE}"
        )),
        "{}",
        done.stderr
    );
    let row = sleeper_row(&done);
    assert_eq!((row.restarts, row.disabled), (1, true));
    assert!(
        row.configure_ms < 20_000.0,
        "configure is cut near its 10 s deadline: {} ms",
        row.configure_ms
    );
}

#[test]
fn a_sleep_in_configure_stops_the_run_with_one_clear_error() {
    let _watchdog = Watchdog::start(
        "a_sleep_in_configure_stops_the_run_with_one_clear_error",
        Duration::from_secs(120),
    );
    let run = sleeper("waiting_configure", &["where=configure"], "");
    let started = Instant::now();
    let stderr = run.fails();
    assert!(
        started.elapsed() < Duration::from_secs(22),
        "stopped near the 10 s deadline: {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!("sleeper: configure {INIT_DEADLINE}")),
        "{stderr}"
    );
    let outcome = std::fs::read_to_string(run.out().join("plugins/recorder/outcome.txt")).unwrap();
    assert!(outcome.starts_with("aborted: "), "{outcome}");
}

#[test]
fn a_sleep_in_describe_stops_the_run_with_one_clear_error() {
    let _watchdog = Watchdog::start(
        "a_sleep_in_describe_stops_the_run_with_one_clear_error",
        Duration::from_secs(120),
    );
    let path = crate::util::plugin("sleeper-describe");
    let run = Run::regression("waiting_describe").plugin("sleeper-describe");
    let started = Instant::now();
    let stderr = run.fails();
    assert!(
        started.elapsed() < Duration::from_secs(22),
        "stopped near the 10 s deadline: {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!("{}: describe: {INIT_DEADLINE}", path.display())),
        "names the file and the cause: {stderr}"
    );
}

/// The 1 ms clocks are no defence against timing: a loop that counts
/// between two ticks times far finer (what `sandbox/clock.rs` says).
#[test]
fn a_counting_loop_times_finer_than_the_clock() {
    let _watchdog = Watchdog::start(
        "a_counting_loop_times_finer_than_the_clock",
        Duration::from_secs(120),
    );
    let done = sleeper("waiting_count", &["how=count"], "").ok();
    let line = calls(&done)
        .into_iter()
        .find(|c| c.starts_with("count "))
        .expect("the count");
    let ns: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        ns < 10_000,
        "a counting loop resolves {ns} ns, a hundred times finer than the clock's 1 ms"
    );
}
