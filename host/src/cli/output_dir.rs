//! One run per `output_dir`, and no silent restart over another run's
//! checkpoints. Before training, `trainbox train` takes an OS lock
//! (`flock`) on the `output_dir` folder itself, released however the
//! process ends, `kill -9` included, and leaving no file behind; a second
//! run on the same folder is refused with a message naming the first (its
//! pid and command line, found in `/proc/locks`). A run without
//! `--resume_from_checkpoint` on a folder that already holds `checkpoint-N`
//! folders is refused too, with the command that resumes and the other
//! choices, as HF's example scripts refuse a non-empty output directory
//! (transformers 5 has no `overwrite_output_dir` any more; delete the
//! checkpoints to start over).

use crate::args::TrainingArguments;
use crate::trainer::get_last_checkpoint;
use anyhow::{bail, Context, Result};
use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The held lock on an `output_dir`; released when dropped or when the
/// process ends.
#[derive(Debug)]
pub struct OutputDirLock {
    _dir: File,
}

/// Creates `output_dir` if needed and locks it for this run; fails, naming
/// the other process, when another run holds it.
pub fn lock(output_dir: &str) -> Result<OutputDirLock> {
    let dir = Path::new(output_dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating output_dir {output_dir}"))?;
    let file = File::open(dir).with_context(|| format!("opening output_dir {output_dir}"))?;
    match file.try_lock() {
        Ok(()) => Ok(OutputDirLock { _dir: file }),
        Err(TryLockError::WouldBlock) => {
            let holder = file
                .metadata()
                .ok()
                .and_then(|m| holder(m.ino()))
                .unwrap_or_else(|| "another process".into());
            bail!(
                "output_dir {output_dir} is in use by another run ({holder}); two runs cannot write one output_dir: wait for it to end, or pass another --output_dir"
            )
        }
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking output_dir {output_dir}"))
        }
    }
}

/// `pid N: its command line` of the process holding a `flock` on inode
/// `ino`, from `/proc/locks` (Linux).
fn holder(ino: u64) -> Option<String> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, id) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
        let lock_ino: u64 = id.rsplit(':').next()?.parse().ok()?;
        (*kind == "FLOCK" && lock_ino == ino).then(|| pid.to_string())
    })?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    Some(if words.is_empty() {
        format!("pid {pid}")
    } else {
        format!("pid {pid}: {}", super::interrupt::shell_words(&words))
    })
}

/// Refuses to train from scratch into an `output_dir` that holds
/// checkpoints, unless `--resume_from_checkpoint` says what to do with them.
pub fn refuse_foreign_checkpoints(args: &TrainingArguments, argv: &[String]) -> Result<()> {
    let resuming = args
        .resume_from_checkpoint
        .as_deref()
        .is_some_and(|v| !v.is_empty() && !v.eq_ignore_ascii_case("false"));
    if resuming {
        return Ok(());
    }
    let Some(last) = get_last_checkpoint(Path::new(&args.output_dir))? else {
        return Ok(());
    };
    bail!(
        "output_dir {dir} already holds checkpoints of an earlier run (the newest: {last}); training from scratch would mix this run's checkpoints with them.\n\
         To continue that run, add --resume_from_checkpoint:\n    {cmd}\n\
         To start a new run, pass another --output_dir, or delete the checkpoint-* folders in {dir}.",
        dir = args.output_dir,
        last = last.display(),
        cmd = super::interrupt::resume_command(argv, &last)
    )
}
