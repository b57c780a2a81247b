//! Ctrl-C and SIGTERM during `trainbox train`: the first stops the run after
//! the current optimizer step (the trainer's [`StopRequest`]), so that every
//! plugin hears `finish(aborted)` and the user is told where the last
//! checkpoint is and the exact command that resumes from it; a second one
//! exits at once. The exit status is the shell's for the signal, as a
//! Python training script's: 130 for SIGINT, 143 for SIGTERM.

use crate::trainer::{Interrupted, StopRequest, StopSignal};
use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;
use std::path::Path;

/// Installs the SIGINT and SIGTERM handlers; returns the request they set.
pub fn install() -> Result<StopRequest> {
    let stop = StopRequest::default();
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("installing the SIGINT and SIGTERM handlers")?;
    let request = stop.clone();
    std::thread::Builder::new()
        .name("trainbox-signals".into())
        .spawn(move || {
            for number in signals.forever() {
                let signal = if number == SIGTERM {
                    StopSignal::Terminate
                } else {
                    StopSignal::Interrupt
                };
                let name = signal.name();
                if request.request(signal) {
                    write_now(&format!(
                        "\ntrainbox: {name}: stopping after the current step (send it again to exit at once)\n"
                    ));
                } else {
                    write_now(&format!(
                        "\ntrainbox: second {name}: exiting at once; nothing more is saved\n"
                    ));
                    signal_hook::low_level::exit(signal.exit_status());
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(stop)
}

/// Writes to stderr, waiting at most 200 ms (a main thread blocked while
/// holding the stderr lock must not delay an exit).
fn write_now(text: &str) {
    let (done, wait) = std::sync::mpsc::channel();
    let text = text.to_string();
    let _ = std::thread::Builder::new().spawn(move || {
        let _ = std::io::stderr().write_all(text.as_bytes());
        let _ = done.send(());
    });
    let _ = wait.recv_timeout(std::time::Duration::from_millis(200));
}

/// Tells the user how the run stopped, where its last checkpoint is and how
/// to resume; returns the exit status.
pub fn report(stop: &Interrupted) -> i32 {
    let ui = crate::ui::info;
    ui(&format!(
        "{stop}; the plugins were told the run was aborted"
    ));
    match &stop.checkpoint {
        Some(dir) => {
            let how = if stop.saved_on_stop {
                "saved on SIGTERM (enable_jit_checkpoint)"
            } else {
                "the newest of this run"
            };
            ui(&format!(
                "the last checkpoint is {} ({how}); to resume from it, run:",
                dir.display()
            ));
            crate::ui::eprintln(&format!("    {}", resume_command(&program_args(), dir)));
        }
        None => ui(&format!(
            "no checkpoint was saved before step {} (see --save_steps{}); the run starts over when run again",
            stop.step,
            if stop.signal == StopSignal::Terminate {
                ", or --enable_jit_checkpoint to save on SIGTERM"
            } else {
                ""
            }
        )),
    }
    stop.signal.exit_status()
}

/// The command line of this process, program name first.
pub(super) fn program_args() -> Vec<String> {
    std::env::args().collect()
}

/// `argv` with `--resume_from_checkpoint <dir>` in place of any it had,
/// quoted for a POSIX shell.
pub fn resume_command(argv: &[String], dir: &Path) -> String {
    const FLAG: &str = "--resume_from_checkpoint";
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let word = &argv[i];
        if word == FLAG {
            i += 2;
            continue;
        }
        if !word.starts_with(&format!("{FLAG}=")) {
            words.push(word.clone());
        }
        i += 1;
    }
    words.push(FLAG.into());
    words.push(dir.to_string_lossy().into_owned());
    shell_words(&words)
}

/// Words joined into one line that a POSIX shell splits back into them.
pub(super) fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as a POSIX shell reads it back: as is when it has only safe
/// characters, else in single quotes.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_resume_command_replaces_the_flag_and_quotes_words() {
        let dir = Path::new("runs/my run/checkpoint-8");
        let cmd = resume_command(
            &argv(&["trainbox", "train", "--run_name", "it's", "--seed", "7"]),
            dir,
        );
        assert_eq!(
            cmd,
            r"trainbox train --run_name 'it'\''s' --seed 7 --resume_from_checkpoint 'runs/my run/checkpoint-8'"
        );
        let cmd = resume_command(
            &argv(&[
                "trainbox",
                "train",
                "--resume_from_checkpoint",
                "true",
                "--resume_from_checkpoint=out/checkpoint-2",
                "--max_steps",
                "9",
            ]),
            Path::new("out/checkpoint-4"),
        );
        assert_eq!(
            cmd,
            "trainbox train --max_steps 9 --resume_from_checkpoint out/checkpoint-4"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a$b"), "'a$b'");
    }
}
