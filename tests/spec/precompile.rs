//! `trainbox plugins precompile`: plugins compiled ahead into the compile
//! cache, which a following `trainbox train` loads from.

use crate::util::{fresh_dir, plugin, Run};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The compiled entries in `cache/compiled`, with their last-use times.
fn entries(cache: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut found: Vec<_> = std::fs::read_dir(cache.join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .map(|p| {
            let used = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, used)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn precompiled_plugins_are_loaded_from_the_cache_and_a_broken_file_is_named() {
    let cache = fresh_dir("precompile_cache");
    let folder = fresh_dir("precompile_plugins");
    // What the regression run loads: the recorder, and the printer (progress bars off).
    for name in ["recorder", "printer"] {
        std::fs::copy(plugin(name), folder.join(format!("{name}.wasm"))).unwrap();
    }
    // A component header, then nothing a compiler can read.
    let mut broken = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    broken.extend_from_slice(b"not code");
    std::fs::write(folder.join("broken.wasm"), broken).unwrap();

    let (ok, stdout, stderr) = Run::command(
        "precompile_run",
        &["plugins", "precompile", folder.to_str().unwrap()],
    )
    .env("TRAINBOX_CACHE", cache.to_str().unwrap())
    .outcome();
    assert!(!ok, "a broken file fails the command\n{stdout}\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(
        errors[0].contains("broken.wasm")
            && errors[0].contains("not a valid WebAssembly component"),
        "{stderr}"
    );
    for name in ["recorder", "printer"] {
        assert!(
            stdout.contains(&format!("{name}.wasm: compiled")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("precompiled 2, already cached 0, failed 1"),
        "{stdout}"
    );
    let stored = entries(&cache);
    assert_eq!(stored.len(), 2, "one entry per good file: {stored:?}");

    // Again: nothing to compile.
    let again = Run::command(
        "precompile_again",
        &[
            "plugins",
            "precompile",
            &plugin("recorder").to_string_lossy(),
        ],
    )
    .env("TRAINBOX_CACHE", cache.to_str().unwrap())
    .ok();
    assert!(
        again.stdout.contains("recorder.wasm: already in the cache"),
        "{}",
        again.stdout
    );

    // Mark both entries unused for ages; a hit marks an entry used now.
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    for (path, _) in &stored {
        std::fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    Run::regression("precompile_train")
        .env("TRAINBOX_CACHE", cache.to_str().unwrap())
        .ok();
    let after = entries(&cache);
    assert_eq!(
        after.iter().map(|e| &e.0).collect::<Vec<_>>(),
        stored.iter().map(|e| &e.0).collect::<Vec<_>>(),
        "the run compiled nothing new: it loaded both plugins from the cache"
    );
    for (path, used) in &after {
        assert!(
            *used > long_ago + Duration::from_secs(1_000_000),
            "{} was not loaded by the run",
            path.display()
        );
    }
}
