//! `trainbox plugins precompile DIR|FILE...`: compiles plugin files into
//! the compile cache ahead of a run, so that `trainbox train` loads them at
//! once (an 18 MB Python plugin: ~5 s to compile, ~0.3 s from the cache).
//! Files compile on all cores: several files at once, and Cranelift
//! splits each one's functions over its own thread pool.

use crate::sandbox::{default_cache_dir, Sandbox};
use crate::view::RunView;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What became of one file.
enum Outcome {
    Compiled(f64),
    Cached,
    Failed(anyhow::Error),
}

/// The `.wasm` files of folders and the files named on their own, each once.
fn files_of(args: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            files.extend(crate::session::wasm_files(path)?);
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else {
            bail!("{arg}: no such file or folder; give plugin folders or .wasm files");
        }
    }
    files.dedup();
    Ok(files)
}

/// Compiles every file; returns the exit status (1 if any file failed: each
/// failure is one line naming the file, the others are still compiled).
pub fn run(args: &[String]) -> Result<i32> {
    if args.is_empty() {
        bail!("usage: trainbox plugins precompile DIR|FILE...");
    }
    let Some(cache_dir) = default_cache_dir() else {
        bail!("the compile cache has no directory: set TRAINBOX_CACHE (or HOME)");
    };
    let files = files_of(args)?;
    let sandbox = Sandbox::new(RunView::default(), Some(cache_dir.clone()))?;
    // Largest first, so that a big file does not start last and run alone.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(std::fs::metadata(&files[i]).map_or(0, |m| m.len())));
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let t = Instant::now();
                    let outcome = match sandbox.precompile(&files[i]) {
                        Ok(true) => Outcome::Compiled(t.elapsed().as_secs_f64()),
                        Ok(false) => Outcome::Cached,
                        Err(e) => Outcome::Failed(e),
                    };
                    outcomes.lock().unwrap()[i] = Some(outcome);
                }
            });
        }
    });
    let (mut compiled, mut cached, mut failed) = (0, 0, 0);
    for (file, outcome) in files.iter().zip(outcomes.into_inner().unwrap()) {
        match outcome.expect("every file was taken by a worker") {
            Outcome::Compiled(s) => {
                compiled += 1;
                println!("{}: compiled ({s:.1} s)", file.display());
            }
            Outcome::Cached => {
                cached += 1;
                println!("{}: already in the cache", file.display());
            }
            Outcome::Failed(e) => {
                failed += 1;
                eprintln!("trainbox: {e:#}");
            }
        }
    }
    println!(
        "precompiled {compiled}, already cached {cached}, failed {failed}, in {:.1} s ({workers} at once) into {}",
        start.elapsed().as_secs_f64(),
        cache_dir.display()
    );
    Ok(if failed > 0 { 1 } else { 0 })
}
