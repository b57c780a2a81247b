//! Per-plugin limits: a memory cap enforced by a `ResourceLimiter`, and a
//! per-call deadline enforced by epoch interruption, driven by one shared
//! ticker thread for the whole engine.

use std::fmt;
use std::time::Duration;

/// How often the ticker advances the engine's epoch.
pub const TICK: Duration = Duration::from_millis(2);

/// The memory and time a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory, all memories together (default 64 MiB).
    pub memory_bytes: usize,
    /// Wall time of one event call (default 100 ms).
    pub deadline: Duration,
    /// Wall time of `describe`, `configure` and `load-state` (default 10 s),
    /// which may have to start an interpreter.
    pub init_deadline: Duration,
    /// Longest an outgoing HTTP request may take to connect, to answer, and
    /// between two bytes (default 5 s; never past the call's deadline).
    pub http_timeout: Duration,
    /// Files and directories it may hold open at once (default 256; see
    /// `fs/fds.rs` for the budget all plugins share).
    pub max_open_files: usize,
    /// Bytes it may keep in its own directory and its writable granted
    /// directories (default 1 GiB; see `fs/disk.rs`).
    pub disk_bytes: u64,
    /// Files, directories and links it may keep there (default 10,000).
    pub disk_files: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: 64 << 20,
            deadline: Duration::from_millis(100),
            init_deadline: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
            max_open_files: 256,
            disk_bytes: 1 << 30,
            disk_files: 10_000,
        }
    }
}

/// The epoch ticks that make up `d` (at least one).
pub fn ticks(d: Duration) -> u64 {
    (d.as_micros() / TICK.as_micros()).max(1) as u64 + 1
}

/// The error a plugin's call fails with when it outgrows its memory cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryExceeded {
    pub desired: usize,
    pub cap: usize,
}

impl fmt::Display for MemoryExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory limit exceeded: tried to grow to {} bytes, the cap is {} bytes",
            self.desired, self.cap
        )
    }
}

impl std::error::Error for MemoryExceeded {}

/// Host bytes one table element is counted at: wasmtime keeps a funcref
/// table as one pointer per element.
pub const TABLE_ELEMENT_BYTES: usize = 8;
/// Most tables one plugin store may have (a Python plugin has about 30).
pub const MAX_TABLES: usize = 64;
/// Most linear memories one plugin store may have.
pub const MAX_MEMORIES: usize = 100;
/// Most core instances one plugin store may have.
pub const MAX_INSTANCES: usize = 1000;

/// A `ResourceLimiter` that caps what a plugin's memories and tables take
/// from the host together, and fails with [`MemoryExceeded`], a type the
/// fault classification can match.
///
/// Its limits, as wasmtime's `StoreLimitsBuilder` lists its own:
/// - memory: all linear memories and all tables together (tables at
///   [`TABLE_ELEMENT_BYTES`] an element) may not pass the cap
///   ([`PluginLimits::memory_bytes`], 64 MiB by default), whether they are
///   declared that large or grown; growing past it traps the call with
///   [`MemoryExceeded`] instead of returning -1, so the fault is reported
///   and the policy applies;
/// - at most [`MAX_INSTANCES`] instances, [`MAX_TABLES`] tables and
///   [`MAX_MEMORIES`] memories per store; a component that needs more fails
///   to instantiate.
pub struct Limiter {
    cap: usize,
    /// Bytes of all its memories and tables together (a component has several).
    used: usize,
}

impl Limiter {
    pub fn new(cap: usize) -> Self {
        Limiter { cap, used: 0 }
    }
}

impl Limiter {
    /// Moves one memory or table from `current` to `desired` bytes, or fails
    /// when all of them together would pass the cap.
    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let total = (self.used - current.min(self.used)).saturating_add(desired);
        if total > self.cap {
            return Err(MemoryExceeded {
                desired: total,
                cap: self.cap,
            }
            .into());
        }
        self.used = total;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow(bytes(current), bytes(desired))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Starts the thread that advances the engine's epoch every [`TICK`], for
/// as long as the engine lives (any store of a plugin holds it): a deadline
/// must end a call whichever owner of the plugin outlives the sandbox that
/// made it (a trainer handed back by the library, say).
pub fn start_ticker(engine: &wasmtime::Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("trainbox-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .expect("spawning the epoch ticker thread");
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memories_and_tables_share_one_cap() {
        let mut l = Limiter::new(1 << 20);
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        // 65,536 elements are 512 KiB: the cap is reached, not passed.
        assert!(l.table_growing(0, 65_536, None).unwrap());
        let err = l.table_growing(65_536, 65_537, None).unwrap_err();
        let m = err
            .downcast_ref::<MemoryExceeded>()
            .expect("a MemoryExceeded");
        assert_eq!((m.desired, m.cap), ((1 << 20) + 8, 1 << 20));
        // The failed growth took nothing: a smaller one still fits.
        assert!(l.memory_growing(512 << 10, 512 << 10, None).unwrap());
        // A table declared absurdly large does not overflow the count.
        assert!(l.table_growing(0, usize::MAX, None).is_err());
    }
}
