//! Files and disk: a plugin that hoards descriptors or disk is stopped at
//! its limit with one fault that names it, under the common `ulimit -n
//! 1024`; the host's own checkpoints are never starved; a save that fails
//! leaves nothing half-written.

use crate::sandbox::{assert_run_complete, report_row};
use crate::util::{self, Done, Run};
use std::path::Path;

/// A regression run (save every 8 steps) under `ulimit -n 1024` with the
/// recorder and the hoarder in `mode`, its `/out` granted to `outbox/`,
/// plus `plugin_toml` in its `[plugins.hoarder]` table.
fn hoarder(test: &str, mode: &str, plugin_toml: &str) -> Run {
    let run = Run::regression(test)
        .args(&["--save_steps", "8"])
        .plugin("hoarder")
        .open_file_limit(1024);
    std::fs::create_dir_all(run.dir.join("outbox")).unwrap();
    let path = util::plugin("hoarder");
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.hoarder]\npath = {path:?}\nwrite_dirs = {{ \"/out\" = \"outbox\" }}\ndeadline_ms = 2000\n{plugin_toml}\n"
        ),
    )
    .unwrap();
    run.args(&[
        "--config",
        "run.toml",
        "--plugin_config",
        &format!("hoarder.mode={mode}"),
    ])
}

/// The fault is reported `times` times with the plugin's name as it
/// happens and in the end-of-run table, and names the setting to raise.
fn assert_fault(done: &Done, cause: &str, setting: &str, times: usize) {
    let live = done
        .stderr
        .lines()
        .filter(|l| {
            l.contains("plugin hoarder") && l.contains("on_step_end: ") && l.contains(cause)
        })
        .collect::<Vec<_>>();
    assert_eq!(
        live.len(),
        times,
        "live lines with {cause:?}:\n{}",
        done.stderr
    );
    for line in live {
        assert!(line.contains(setting), "names {setting}: {line}");
    }
    let summary = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("fault: hoarder: on_step_end:") && l.contains(cause))
        .count();
    assert_eq!(
        summary, times,
        "summary lines with {cause:?}:\n{}",
        done.stderr
    );
}

/// Bytes and entries under `dir`.
fn usage(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        files += 1;
        if meta.is_dir() {
            let (b, f) = usage(&entry.path());
            bytes += b;
            files += f;
        } else {
            bytes += meta.len();
        }
    }
    (bytes, files)
}

fn own_dir(done: &Done) -> std::path::PathBuf {
    done.out.join("plugins/hoarder")
}

#[test]
fn a_plugin_holding_descriptors_stops_at_its_own_cap() {
    // At `ulimit -n 2048` its share of the 1024 lent to the 3 plugins is 341:
    // its own cap of 256 is what stops it.
    let done = hoarder("resources_fds", "fds", "on_error = \"disable\"")
        .open_file_limit(2048)
        .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(
        &done,
        "open-file limit exceeded: it already holds 256 files and directories open",
        "set plugins.hoarder.max_open_files",
        1,
    );
    let (_, _, faults, restarts, disabled) = report_row(&done, "hoarder");
    assert_eq!((faults, restarts, disabled), (1, 0, true));
}

#[test]
fn directory_listings_count_as_open_files() {
    // 200 listings a call, each an open directory and its listing: 400
    // open files pass the cap of 300 in the first call (at step 2); were
    // listings not counted, only the second call would.
    let done = hoarder(
        "resources_listings",
        "listings",
        "on_error = \"disable\"\nmax_open_files = 300",
    )
    .open_file_limit(2048)
    .args(&["--plugin_config", "hoarder.per_call=200"])
    .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(
        &done,
        "it already holds 300 files and directories open",
        "max_open_files",
        1,
    );
    let reached = std::fs::read_to_string(own_dir(&done).join("steps.txt")).unwrap();
    assert_eq!(reached, "2\n", "faulted in its first call");
}

#[test]
fn plugins_together_stay_below_the_process_limit_and_the_host_still_saves() {
    // Its own cap raised past the process's limit: its even share of the
    // 512 descriptors lent to the run's 3 plugins (half of 1024) stops it,
    // so the recorder still writes its trace, and the host its checkpoints.
    let done = hoarder(
        "resources_fds_shared",
        "fds",
        "on_error = \"disable\"\nmax_open_files = 100000",
    )
    .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(
        &done,
        "it already holds 170 files and directories open, its share of what the host lends the run's 3 plugins",
        "open-file limit of 1024",
        1,
    );
    assert!(
        !done.stderr.contains("Too many open files"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_plugin_writing_without_bound_stops_at_its_disk_quota() {
    let done = hoarder(
        "resources_disk_bytes",
        "disk-bytes",
        "on_error = \"disable\"\ndisk_mb = 4",
    )
    .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(
        &done,
        "disk quota exceeded",
        "set plugins.hoarder.disk_mb",
        1,
    );
    assert!(
        done.stderr.contains("its quota of 4194304 bytes"),
        "{}",
        done.stderr
    );
    let (bytes, _) = usage(&own_dir(&done));
    assert!(bytes <= 4 << 20, "{bytes} bytes kept, over the 4 MiB quota");
    assert!(bytes > 3 << 20, "it could write up to its quota: {bytes}");
}

#[test]
fn a_deleted_file_still_held_open_stays_counted() {
    // Its space is only freed when the last descriptor closes: deleting it
    // gives nothing back while the plugin holds it.
    let done = hoarder(
        "resources_unlinked",
        "unlinked",
        "on_error = \"disable\"\ndisk_mb = 4",
    )
    .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(&done, "disk quota exceeded", "disk_mb", 1);
}

#[test]
fn restarts_count_what_the_plugin_already_keeps() {
    // Each restart measures its directory again: it never gets a fresh quota.
    let done = hoarder("resources_disk_restart", "disk-bytes", "disk_mb = 4")
        .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(&done, "disk quota exceeded", "disk_mb", 4);
    let (_, _, faults, restarts, disabled) = report_row(&done, "hoarder");
    assert_eq!((faults, restarts, disabled), (4, 3, true));
    let (bytes, _) = usage(&own_dir(&done));
    assert!(bytes <= 4 << 20, "{bytes} bytes kept over 4 restarts");
}

#[test]
fn a_plugin_making_files_without_bound_stops_at_its_file_quota() {
    let done = hoarder(
        "resources_disk_files",
        "disk-files",
        "on_error = \"disable\"\ndisk_files = 100",
    )
    .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(
        &done,
        "it already keeps 100 files and directories",
        "set plugins.hoarder.disk_files",
        1,
    );
    let (_, files) = usage(&own_dir(&done));
    assert!(files <= 100, "{files} entries, over the quota of 100");
}

#[test]
fn a_sparse_file_counts_whole() {
    let done = hoarder("resources_sparse", "sparse", "on_error = \"disable\"")
        .completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(&done, "writing 1099511627776 more bytes", "disk_mb", 1);
    let size = std::fs::metadata(own_dir(&done).join("sparse.bin"))
        .unwrap()
        .len();
    assert_eq!(size, 0, "the set-size was refused before it happened");
}

#[test]
fn rewriting_one_state_file_every_step_costs_no_quota() {
    // 24 steps write 3 MiB in all, through a stream and a renamed copy,
    // under a 1 MiB quota; any fault would abort the run.
    let done = hoarder(
        "resources_rewrite",
        "rewrite",
        "on_error = \"abort\"\ndisk_mb = 1",
    )
    .args(&["--plugin_config", "hoarder.at_step=1"])
    .ok();
    assert_run_complete(&done);
    let own = own_dir(&done);
    assert_eq!(
        std::fs::read_to_string(own.join("steps.txt")).unwrap(),
        "24\n"
    );
    let (bytes, _) = usage(&own);
    assert!(bytes < 1 << 20, "{bytes}");
}

#[test]
fn writable_grants_count_against_the_quota() {
    let run = hoarder(
        "resources_outbox",
        "outbox",
        "on_error = \"disable\"\ndisk_mb = 4",
    );
    // What the user had there is not the plugin's.
    std::fs::write(run.dir.join("outbox/users-own.bin"), vec![0u8; 5 << 20]).unwrap();
    let done = run.completes_with_faults("hoarder");
    assert_run_complete(&done);
    assert_fault(&done, "disk quota exceeded", "disk_mb", 1);
    let (bytes, _) = usage(&run.dir.join("outbox"));
    let written = bytes - (5 << 20);
    assert!(
        written <= 4 << 20,
        "{written} bytes written into the outbox"
    );
    assert!(
        written >= 3 << 20,
        "the user's file left it its whole quota: {written}"
    );
}

/// The hidden folders of unfinished saves in `out`.
fn hidden(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".checkpoint"))
        .collect()
}

/// `checkpoint-8` is whole and nothing else was saved.
fn assert_only_checkpoint_8(out: &Path) {
    util::assert_checkpoint_whole(&out.join("checkpoint-8"));
    assert!(!out.join("checkpoint-16").exists());
    assert_eq!(
        hidden(out),
        Vec::<String>::new(),
        "a half-written save was left"
    );
}

#[test]
fn a_save_aborted_by_a_plugin_leaves_nothing_half_written() {
    let run = hoarder("resources_save_abort", "save-abort", "on_error = \"abort\"")
        .args(&["--plugin_config", "hoarder.at_step=9"]);
    let stderr = run.fails();
    let out = run.out();
    assert_only_checkpoint_8(&out);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("trainbox: could not save"))
        .unwrap_or_else(|| panic!("no save error:\n{stderr}"));
    assert!(
        line.contains(&out.join("checkpoint-16").display().to_string())
            && line.contains("plugin hoarder")
            && line.contains("save-state")
            && line.contains("aborting the run (on_error = abort)"),
        "{line}"
    );
}

#[test]
fn a_save_that_fails_removes_its_temporary_folder() {
    let run = Run::regression("resources_save_fails")
        .args(&["--save_steps", "8"])
        .env("TRAINBOX_FAULT_INJECT", "fail-in-save:16");
    let stderr = run.fails();
    let out = run.out();
    assert_only_checkpoint_8(&out);
    assert!(
        stderr.contains(&format!(
            "could not save {}; nothing of it was kept and the previous checkpoints in {} are intact",
            out.join("checkpoint-16").display(),
            out.display()
        )) && stderr.contains("no storage space"),
        "{stderr}"
    );
}

#[test]
fn hard_links_cannot_keep_bytes_off_the_quota() {
    // Written, linked, unlinked: were the link made, every round would give
    // back the file's bytes while its second name kept them.
    let done = hoarder(
        "resources_links",
        "links",
        "on_error = \"disable\"\ndisk_mb = 4",
    )
    .ok();
    assert_run_complete(&done);
    let seen = std::fs::read_to_string(own_dir(&done).join("links.txt")).unwrap();
    assert!(seen.starts_with("hard_link: denied"), "{seen}");
    let (bytes, _) = usage(&own_dir(&done));
    assert!(bytes <= 4 << 20, "{bytes} bytes kept under a 4 MiB quota");
}
