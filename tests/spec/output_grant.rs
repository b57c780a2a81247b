//! A plugin reads the run's checkpoints only through a read-only grant on
//! `output_dir`: with it, the checkpoint just saved is readable byte for
//! byte and nothing is writable; the plugin folders below `output_dir`
//! (the owner record, another plugin's folder) stay out of reach by
//! every route: a plain path,
//! `..`, a listing, `stat`. Without the grant the plugin is not loaded; a
//! writable grant on `output_dir` gives it read access only, as it declares.

use crate::util::{plugin, Run};
use std::collections::BTreeMap;

/// The regression run with the recorder and the peeker, saving at step 8
/// (and at the end), with `grant` as the peeker's table in `run.toml`.
fn peeking(test: &str, grant: Option<&str>) -> Run {
    let run = Run::regression(test).plugin("peeker").args(&[
        "--save_strategy",
        "steps",
        "--save_steps",
        "8",
    ]);
    match grant {
        Some(table) => {
            let out = run.out();
            let text = format!(
                "[plugins.peeker]\npath = {:?}\n{table} = {{ \"/output\" = {:?} }}\n",
                plugin("peeker").to_str().unwrap(),
                out.to_str().unwrap()
            );
            std::fs::write(run.dir.join("run.toml"), text).unwrap();
            run.args(&["--config", "run.toml"])
        }
        None => run,
    }
}

/// `peek.txt` of the peeker: attempt → outcome, of the last save.
fn peeked(run: &Run) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(run.out().join("plugins/peeker/peek.txt")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_read_grant_on_output_dir_shows_the_checkpoints_and_hides_the_plugin_folders() {
    let run = peeking("output-grant-read", Some("read_dirs"));
    std::fs::create_dir_all(run.out()).unwrap();
    let fifo = std::ffi::CString::new(run.out().join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let done = run.ok();
    let steps = done.checkpoints();
    let last = *steps.last().expect("checkpoints were saved");
    let seen = peeked(&run);
    let ckpt = format!("/output/checkpoint-{last}");
    let host_ckpt = run.out().join(format!("checkpoint-{last}"));
    // Every file of the checkpoint was listed and read whole.
    let mut files: Vec<String> = std::fs::read_dir(&host_ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f == "trainer_state.json"), "{files:?}");
    assert_eq!(seen[&format!("list {ckpt}")], files.join(","), "{seen:#?}");
    for f in &files {
        let len = std::fs::metadata(host_ckpt.join(f)).unwrap().len();
        assert_eq!(
            seen[&format!("read {ckpt}/{f}")],
            format!("ok {len} bytes"),
            "{seen:#?}"
        );
    }
    // Nothing of the plugin folders, by any route.
    assert_eq!(
        seen["read /output/plugins/peeker/mine.txt"], "ok 4 bytes",
        "its own folder"
    );
    assert!(run.out().join("plugins/peeker/link").is_symlink());
    for attempt in [
        "read /output/plugins/peeker/link/events.jsonl".to_string(),
        "stat /output/plugins/peeker/link/events.jsonl".to_string(),
        "read /output/plugins/.owners.json".to_string(),
        "read /output/plugins/recorder/events.jsonl".to_string(),
        format!("read {ckpt}/../plugins/recorder/events.jsonl"),
        "list /output/plugins".to_string(),
        "list /output/plugins/recorder".to_string(),
        "stat /output/plugins/recorder".to_string(),
        "stat /output/plugins/recorder/events.jsonl".to_string(),
        // And nothing written.
        "write /output/tampered.txt".to_string(),
        format!("write {ckpt}/tampered.txt"),
    ] {
        assert_eq!(
            seen.get(&attempt).map(String::as_str),
            Some("denied"),
            "{attempt}: {seen:#?}"
        );
    }
    // Neither opened nor looked through (either would block on the FIFO).
    assert_eq!(seen["read /output/fifo"], "denied", "{seen:#?}");
    assert_eq!(
        seen["stat /output/fifo/x"], "error NotADirectory",
        "{seen:#?}"
    );
    assert!(!run.out().join("tampered.txt").exists());
    assert!(!host_ckpt.join("tampered.txt").exists());
    // The recorder's folder is whole, for it.
    assert!(!done.events().is_empty());
}

#[test]
fn without_the_grant_the_reader_is_not_loaded_and_a_write_grant_is_only_read() {
    let err = peeking("output-grant-none", None).fails();
    assert!(
        err.contains("read-dir /output") && err.contains("plugins.peeker.read_dirs"),
        "{err}"
    );
    // The peeker declares read access only: a write grant gives it no more
    // (a grant applies only to what the plugin declares), with a warning.
    let run = peeking("output-grant-write", Some("write_dirs"));
    let done = run.ok();
    assert!(
        done.stderr
            .contains("does not ask for write access to \"/output\" (it asks only to read it)"),
        "{}",
        done.stderr
    );
    assert_eq!(peeked(&run)["write /output/tampered.txt"], "denied");
    assert!(!run.out().join("tampered.txt").exists());
}
