//! A plugin's identity is its file, not the name it gives itself: grants
//! reach only the file their table names (optionally pinned by sha256),
//! two files cannot declare one name, instance directories are out of
//! every name's reach, a plugin directory (and the state saved beside it)
//! stays with the file that made it. The impostor test plugin declares
//! whatever name is set in its copy of the file.

use crate::util::{plugin, Run};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A copy of the impostor plugin, in `dir`, that declares `name`.
fn impostor(dir: &Path, name: &str) -> PathBuf {
    let mut bytes = std::fs::read(plugin("impostor")).unwrap();
    let prefix = b"trainbox-impostor-name:";
    let hits: Vec<usize> = bytes
        .windows(prefix.len())
        .enumerate()
        .filter(|(_, w)| w == prefix)
        .map(|(i, _)| i + prefix.len())
        .collect();
    assert_eq!(hits.len(), 1, "one name slot in impostor.wasm");
    let mut slot = name.as_bytes().to_vec();
    slot.resize(64, 0);
    bytes[hits[0]..hits[0] + 64].copy_from_slice(&slot);
    let path = dir.join(format!("impostor-{}.wasm", name.replace('#', "_")));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `trainbox train` on the regression task with no plugin but the printer
/// and no checkpoints, into `out` (by default the run's own `out`).
fn bare(test: &str) -> Run {
    let run = Run::command(
        test,
        &[
            "train",
            "--task",
            "regression",
            "--disable_tqdm",
            "--save_strategy",
            "no",
        ],
    );
    let out = run.out();
    run.args(&["--output_dir", out.to_str().unwrap()])
}

fn with_file(run: Run, path: &Path) -> Run {
    run.args(&["--plugin", path.to_str().unwrap()])
}

fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn canonical(path: &Path) -> String {
    path.canonicalize().unwrap().display().to_string()
}

/// The grants of the `granted` plugin, in `run.toml`, bound to `path`
/// (none: the table names no file) and pinned by `pin`.
fn grant_granted(run: &Run, path: Option<&Path>, pin: Option<&str>) {
    let (data, out) = (run.dir.join("data"), run.dir.join("outbox"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(data.join("input.txt"), "the granted plugin's data").unwrap();
    let mut table = String::from("[plugins.granted]\n");
    if let Some(path) = path {
        table += &format!("path = {:?}\n", path.to_str().unwrap());
    }
    if let Some(pin) = pin {
        table += &format!("sha256 = {pin:?}\n");
    }
    table += "read_dirs = { \"/data\" = \"data\" }\nwrite_dirs = { \"/out\" = \"outbox\" }\nenv = [\"TRAINBOX_TEST_SECRET\"]\n";
    std::fs::write(run.dir.join("run.toml"), table).unwrap();
}

#[test]
fn an_impostor_of_a_granted_plugin_gets_nothing() {
    let granted = plugin("granted");
    let secret = ("TRAINBOX_TEST_SECRET", "s3cret");
    // Beside the real plugin: refused, both files named.
    let run = bare("identity_impostor_beside");
    let fake = impostor(&run.dir, "granted");
    grant_granted(&run, Some(&granted), None);
    let err = with_file(with_file(run.clone(), &granted), &fake)
        .args(&["--config", "run.toml"])
        .env(secret.0, secret.1)
        .fails();
    assert!(
        err.contains("two plugin files declare the name \"granted\"")
            && err.contains(&granted.display().to_string())
            && err.contains(&fake.display().to_string())
            && err.contains("load only one of them"),
        "{err}"
    );
    assert!(!run.dir.join("outbox/loot.txt").exists());
    assert!(!run.out().join("plugins/granted").exists());

    // Alone, with the table bound to the real file: that file is not loaded.
    let err = with_file(run.clone(), &fake)
        .args(&["--config", "run.toml"])
        .env(secret.0, secret.1)
        .fails();
    assert!(
        err.contains("[plugins.granted] path = ")
            && err.contains("no plugin is loaded from that file"),
        "{err}"
    );

    // Alone, with a table that grants by name only: refused, the fix named.
    let run = bare("identity_impostor_by_name");
    let fake = impostor(&run.dir, "granted");
    grant_granted(&run, None, None);
    let err = with_file(run.clone(), &fake)
        .args(&["--config", "run.toml"])
        .env(secret.0, secret.1)
        .fails();
    assert!(
        err.contains("[plugins.granted] grants directories and environment variables but does not say which file it is for")
            && err.contains(&format!("add path = {:?} to [plugins.granted]", fake.display().to_string())),
        "{err}"
    );
    assert!(!run.dir.join("outbox/loot.txt").exists());

    // With no table it runs, and has nothing but its own directory.
    let done = with_file(bare("identity_impostor_plain"), &fake)
        .env(secret.0, secret.1)
        .ok();
    let seen = std::fs::read_to_string(done.out.join("plugins/granted/impostor.txt")).unwrap();
    assert!(seen.contains("read /data/input.txt: denied"), "{seen}");
    assert!(seen.contains("write /out/loot.txt: denied"), "{seen}");
    assert!(seen.contains("env TRAINBOX_TEST_SECRET: unset"), "{seen}");
    assert!(!seen.contains("GOT"), "{seen}");
}

#[test]
fn a_granting_table_reaches_the_file_it_names_and_a_pin_checks_it() {
    let granted = plugin("granted");
    let hash = sha256(&granted);
    let shown = Run::command(
        "identity_inspect",
        &["plugins", "inspect", granted.to_str().unwrap()],
    )
    .ok();
    assert!(
        shown
            .stdout
            .contains(&format!("\n  sha256:       {hash}\n")),
        "inspect shows the hash to pin: {}",
        shown.stdout
    );
    let run = Run::regression("identity_pinned")
        .plugin("granted")
        .args(&["--save_strategy", "no"]);
    grant_granted(&run, Some(&granted), Some(&hash.to_uppercase()));
    let done = run
        .clone()
        .args(&["--config", "run.toml"])
        .env("TRAINBOX_TEST_SECRET", "s3cret")
        .ok();
    let seen = std::fs::read_to_string(done.out.join("plugins/granted/granted.txt")).unwrap();
    assert!(
        seen.contains("read /data/input.txt: the granted plugin's data")
            && seen.contains("env TRAINBOX_TEST_SECRET: s3cret"),
        "{seen}"
    );

    // Another content than the pin: refused, both hashes and the fix named.
    let wrong = "0".repeat(64);
    grant_granted(&run, Some(&granted), Some(&wrong));
    let err = run.clone().args(&["--config", "run.toml"]).fails();
    assert!(
        err.contains(&format!(
            "{}: its sha256 is {hash}, but [plugins.granted] pins sha256 = \"{wrong}\"",
            granted.display()
        )) && err.contains(&format!("set sha256 = \"{hash}\"")),
        "{err}"
    );
    grant_granted(&run, Some(&granted), Some("abc"));
    let err = run.clone().args(&["--config", "run.toml"]).fails();
    assert!(err.contains("sha256 must be 64 hex digits"), "{err}");

    // A path whose plugin has another name.
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.granted]\npath = {:?}\nenv = [\"HOME\"]\n",
            plugin("recorder").to_str().unwrap()
        ),
    )
    .unwrap();
    let err = run.args(&["--config", "run.toml"]).fails();
    assert!(
        err.contains("that plugin calls itself \"recorder\", not \"granted\"; name the table [plugins.recorder]"),
        "{err}"
    );
}

#[test]
fn instance_directories_are_out_of_every_names_reach() {
    let run = Run::regression("identity_instances").plugin("recorder");
    let fake = impostor(&run.dir, "recorder-2");
    let done = with_file(run.clone(), &fake).ok();
    let second = done.out.join("plugins/recorder#2/events.jsonl");
    assert!(
        std::fs::metadata(&second).unwrap().len() > 0,
        "the second recorder writes in recorder#2"
    );
    assert!(done.stderr.contains("recorder#2"), "{}", done.stderr);
    let seen = std::fs::read_to_string(done.out.join("plugins/recorder-2/impostor.txt")).unwrap();
    assert!(
        seen.contains("train end: name recorder-2") && seen.contains("read events.jsonl: denied"),
        "{seen}"
    );
    assert!(seen.ends_with("files in .: []\n"), "{seen}");

    // `recorder#2` itself is no plugin name.
    let fake = impostor(&run.dir, "recorder#2");
    let err = with_file(bare("identity_instance_name"), &fake).fails();
    assert!(
        err.contains("plugin name \"recorder#2\" is invalid"),
        "{err}"
    );
}

#[test]
fn two_files_declaring_one_name_are_refused_naming_both() {
    let run = Run::regression("identity_duplicates");
    let copy = run.dir.join("copy-of-recorder.wasm");
    std::fs::copy(plugin("recorder"), &copy).unwrap();
    let err = with_file(run, &copy).fails();
    assert!(
        err.contains(&format!(
            "two plugin files declare the name \"recorder\": {} and {}",
            plugin("recorder").display(),
            copy.display()
        )) && err.contains("to run one plugin twice, load the same file twice"),
        "{err}"
    );
}

#[test]
fn a_plugin_directory_stays_with_the_file_that_made_it() {
    // A recorder of the user's, at one path, records a trace.
    let first = bare("identity_owner");
    let mine = first.dir.join("mine.wasm");
    std::fs::copy(plugin("recorder"), &mine).unwrap();
    let done = with_file(first.clone(), &mine).ok();
    let trace = std::fs::read(done.out.join("plugins/recorder/events.jsonl")).unwrap();
    let owners: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(done.out.join("plugins/.owners.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(owners["recorder"]["path"], canonical(&mine));
    assert_eq!(owners["recorder"]["sha256"], sha256(&mine));

    // Another file that calls itself `recorder`, on the same output_dir:
    // refused, the folder's trace untouched.
    let again = |run: &Run, file: &Path| {
        let out = first.out();
        let mut run = run.clone();
        run = run.args(&["--output_dir", out.to_str().unwrap()]);
        with_file(run, file)
    };
    let other = bare("identity_owner_other");
    let fake = impostor(&other.dir, "recorder");
    for file in [fake.as_path(), plugin("recorder").as_path()] {
        let err = again(&other, file).fails();
        assert!(
            err.contains(&format!(
                "{}: this folder belongs to the plugin file {} (sha256 {}), and {}",
                first.out().join("plugins/recorder").display(),
                canonical(&mine),
                sha256(&mine),
                canonical(file)
            )) && err.contains("or use a new output_dir"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(done.out.join("plugins/recorder/events.jsonl")).unwrap(),
        trace
    );
    assert!(!done.out.join("plugins/recorder/impostor.txt").exists());

    // The same path after a rebuild (here: other content) keeps its folder.
    std::fs::copy(&fake, &mine).unwrap();
    again(&other, &mine).ok();
    let seen = std::fs::read_to_string(done.out.join("plugins/recorder/impostor.txt")).unwrap();
    assert!(seen.contains("read events.jsonl: GOT"), "{seen}");
}

#[test]
fn stored_states_go_back_only_to_the_file_that_saved_them() {
    let run = Run::command(
        "identity_state",
        &[
            "train",
            "--task",
            "scripted",
            "--disable_tqdm",
            "--task_option",
            "scores=0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "4",
            "--metric_for_best_model",
            "score",
            "--save_steps",
            "8",
        ],
    );
    let out = run.out();
    let run = run.args(&["--output_dir", out.to_str().unwrap()]);
    run.clone().plugin("early-stopping").ok();
    // Its folder deleted, a copy at another path may have the name again,
    // but not the state the first file saved.
    std::fs::remove_dir_all(out.join("plugins/early-stopping")).unwrap();
    let copy = run.dir.join("copy.wasm");
    std::fs::copy(plugin("early-stopping"), &copy).unwrap();
    let checkpoint = out.join("checkpoint-8");
    let err = with_file(run, &copy)
        .args(&["--resume_from_checkpoint", checkpoint.to_str().unwrap()])
        .arg("--restore_callback_states_from_checkpoint")
        .fails();
    assert!(
        err.contains(&format!(
            "the checkpoint holds the state of plugin early-stopping as saved by {}, but this run's early-stopping is {}",
            canonical(&plugin("early-stopping")),
            copy.display()
        )),
        "{err}"
    );
}

#[test]
fn no_grant_opens_the_plugin_folders() {
    let granted = plugin("granted");
    let run = Run::regression("identity_grant_plugins_dir")
        .plugin("granted")
        .args(&["--save_strategy", "no"]);
    std::fs::create_dir_all(run.dir.join("data")).unwrap();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.granted]\npath = {:?}\nread_dirs = {{ \"/data\" = \"data\" }}\n\
             write_dirs = {{ \"/out\" = \"out\" }}\nenv = [\"TRAINBOX_TEST_SECRET\"]\n",
            granted.to_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(run.out()).unwrap();
    let err = run.args(&["--config", "run.toml"]).fails();
    assert!(
        err.contains("a writable granted directory may not hold the plugin folders")
            && err.contains("grant it read-only (read_dirs)"),
        "{err}"
    );
}
