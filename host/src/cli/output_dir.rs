//! One run per `output_dir`, and no silent restart over another run's
//! checkpoints. Before training, `trainbox train` locks
//! `<output_dir>/.trainbox.lock` (an OS file lock, so it is released however
//! the process ends, `kill -9` included) and writes its pid and command line
//! into it, so that a second run on the same folder is refused with a
//! message naming the first. A run without `--resume_from_checkpoint` on a
//! folder that already holds `checkpoint-N` folders is refused too, with the
//! command that resumes and the other choices, as HF's example scripts
//! refuse a non-empty output directory (transformers 5 has no
//! `overwrite_output_dir` any more; delete the checkpoints to start over).

use crate::args::TrainingArguments;
use crate::trainer::get_last_checkpoint;
use anyhow::{bail, Context, Result};
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name inside `output_dir`.
pub const LOCK_FILE: &str = ".trainbox.lock";

/// The held lock on an `output_dir`; released when dropped or when the
/// process ends.
#[derive(Debug)]
pub struct OutputDirLock {
    _file: File,
}

/// Creates `output_dir` if needed and locks it for this run; fails, naming
/// the other process, when another run holds it.
pub fn lock(output_dir: &str, argv: &[String]) -> Result<OutputDirLock> {
    let dir = Path::new(output_dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating output_dir {output_dir}"))?;
    let path = dir.join(LOCK_FILE);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another process".to_string()
            } else {
                holder.to_string()
            };
            bail!(
                "output_dir {output_dir} is in use by another run ({holder}); two runs cannot write one output_dir: wait for it to end, or pass another --output_dir"
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
    let command = super::interrupt::shell_words(argv);
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "pid {}: {command}", std::process::id()));
    Ok(OutputDirLock { _file: file })
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
