//! How a plugin call can fail ([`PluginFault`], classified by type, never by
//! message) and what the user chose to do about it ([`OnError`]).

use super::fs::Exceeded;
use super::limits::MemoryExceeded;
use super::wait::DeadlinePassed;
use std::fmt;
use std::time::Duration;
use wasmtime::Trap;

/// What to do when a plugin faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnError {
    /// Re-instantiate it with its last saved state (at most
    /// [`MAX_RESTARTS`](super::MAX_RESTARTS) times), then disable it.
    #[default]
    Restart,
    /// Stop calling it; training goes on.
    Disable,
    /// Stop the run.
    Abort,
}

/// `on_error` was given a value that is not a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOnError(pub String);

impl fmt::Display for BadOnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "on_error must be restart, disable or abort, got {:?}",
            self.0
        )
    }
}

impl std::error::Error for BadOnError {}

impl std::str::FromStr for OnError {
    type Err = BadOnError;
    fn from_str(s: &str) -> Result<Self, BadOnError> {
        match s {
            "restart" => Ok(OnError::Restart),
            "disable" => Ok(OnError::Disable),
            "abort" => Ok(OnError::Abort),
            _ => Err(BadOnError(s.to_string())),
        }
    }
}

/// How a plugin call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginFault {
    /// The call ran past its deadline and was interrupted.
    Deadline(Duration),
    /// The plugin outgrew its memory cap.
    Memory(MemoryExceeded),
    /// The plugin went past a file limit: open files or its disk quota.
    Files(Exceeded),
    /// The plugin called `exit`.
    Exit(i32),
    /// Any other trap: a panic, `unreachable`, an out-of-bounds access, a bad host call.
    Trap(String),
    /// The call returned, but what it returned is refused (a state too
    /// large or not in HF's shape).
    BadOutput(String),
}

/// The trap of a panic or abort, before the lines that explain it.
const UNREACHABLE: &str = "wasm `unreachable` executed";

impl PluginFault {
    /// A panic's fault line with what the call wrote on stderr before it
    /// (a Rust panic's message, a Python traceback), so that the report
    /// shows why; other faults are left as they are.
    pub fn quoting(self, stderr: impl FnOnce() -> Vec<String>) -> PluginFault {
        match self {
            PluginFault::Trap(msg) if msg.starts_with(UNREACHABLE) => {
                // One line, as every fault line: the lines joined by " | ".
                let lines: Vec<String> = stderr()
                    .iter()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect();
                if lines.is_empty() {
                    return PluginFault::Trap(msg);
                }
                PluginFault::Trap(format!(
                    "{UNREACHABLE} (a panic or abort) after it wrote: {}",
                    lines.join(" | ")
                ))
            }
            other => other,
        }
    }

    /// Classifies a call error by type, never by message; `deadline` is the
    /// one the call ran under.
    pub fn classify(err: &wasmtime::Error, deadline: Duration) -> PluginFault {
        if let Some(m) = err.downcast_ref::<MemoryExceeded>() {
            return PluginFault::Memory(*m);
        }
        if let Some(e) = err.downcast_ref::<Exceeded>() {
            return PluginFault::Files(*e);
        }
        // A wait in a host call that the deadline ended: the same fault as
        // the epoch trap that ends the plugin's own code.
        if err.downcast_ref::<DeadlinePassed>().is_some() {
            return PluginFault::Deadline(deadline);
        }
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return PluginFault::Exit(exit.0);
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginFault::Deadline(deadline),
            Some(Trap::UnreachableCodeReached) => {
                // Its message (a Rust panic's, a Python traceback) is
                // what the plugin wrote on stderr just before.
                PluginFault::Trap(
                    "wasm `unreachable` executed (a panic or abort: its message is in the plugin's stderr above)"
                        .into(),
                )
            }
            Some(trap) => PluginFault::Trap(trap.to_string()),
            // A host call that refused (a bad handle, too many handles, …).
            None => PluginFault::Trap(err.root_cause().to_string().replace('\n', " ")),
        }
    }
}

impl fmt::Display for PluginFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginFault::Deadline(d) => write!(f, "ran past its deadline of {} ms", d.as_millis()),
            PluginFault::Memory(m) => write!(f, "{m}"),
            PluginFault::Files(e) => write!(f, "{e}"),
            PluginFault::Exit(code) => write!(f, "called exit({code})"),
            PluginFault::Trap(msg) => write!(f, "trapped: {msg}"),
            PluginFault::BadOutput(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for PluginFault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_error_parses_the_three_policies_only() {
        assert_eq!("restart".parse(), Ok(OnError::Restart));
        assert_eq!("disable".parse(), Ok(OnError::Disable));
        assert_eq!("abort".parse(), Ok(OnError::Abort));
        let err = "ignore".parse::<OnError>().unwrap_err();
        assert_eq!(err, BadOnError("ignore".into()));
    }

    #[test]
    fn faults_are_classified_by_type() {
        let deadline = Duration::from_millis(100);
        let memory = MemoryExceeded { desired: 2, cap: 1 };
        let err = wasmtime::Error::from(memory);
        assert_eq!(
            PluginFault::classify(&err, deadline),
            PluginFault::Memory(memory)
        );
        let err = wasmtime::Error::from(Trap::Interrupt);
        assert_eq!(
            PluginFault::classify(&err, deadline),
            PluginFault::Deadline(deadline)
        );
        // A wait that a host call cut at the deadline is a deadline fault.
        let err = wasmtime::Error::from(DeadlinePassed);
        assert_eq!(
            PluginFault::classify(&err, deadline),
            PluginFault::Deadline(deadline)
        );
        let err = wasmtime::Error::from(wasmtime_wasi::I32Exit(3));
        assert_eq!(PluginFault::classify(&err, deadline), PluginFault::Exit(3));
        // A message that merely looks like a deadline is not one.
        let err = wasmtime::format_err!("ran past its deadline");
        assert!(matches!(
            PluginFault::classify(&err, deadline),
            PluginFault::Trap(_)
        ));
    }
}
