//! Clocks for plugins, truncated to the millisecond: enough to time and
//! timestamp what a logger does.
//!
//! What this does and does not promise. The truncation keeps the host's
//! nanosecond clock out of plugins' hands, which limits casual
//! fingerprinting (of the machine, or of exactly when the host calls in).
//! It is not a defence against timing side channels: a plugin builds a
//! much finer timer of its own by counting loop iterations between two
//! ticks, about 0.1 µs with a loop that reads the clock (76 ns and 139 ns
//! measured on two machines; the sleeper test plugin's `how=count` prints
//! it), finer still with a calibrated loop that does not. The sandbox keeps
//! a plugin from reading or writing what it was not granted (memory,
//! files, the network, the environment); it does not make host calls
//! constant-time, nor protect the host or other plugins from cache or
//! speculative-execution timing attacks. Secrets that must not leak by
//! timing do not belong in a process that runs a plugin you do not trust.

use std::time::{Duration, Instant, SystemTime};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// The resolution of every plugin clock.
pub const RESOLUTION: Duration = Duration::from_millis(1);

fn coarse(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Wall-clock time, truncated to the millisecond.
pub struct CoarseWallClock;

impl HostWallClock for CoarseWallClock {
    fn resolution(&self) -> Duration {
        RESOLUTION
    }

    fn now(&self) -> Duration {
        coarse(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }
}

/// Monotonic time since the plugin's store was made, truncated to the millisecond.
pub struct CoarseMonotonicClock(Instant);

impl CoarseMonotonicClock {
    pub fn new() -> Self {
        CoarseMonotonicClock(Instant::now())
    }
}

impl HostMonotonicClock for CoarseMonotonicClock {
    fn resolution(&self) -> u64 {
        RESOLUTION.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        coarse(self.0.elapsed()).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_tick_in_whole_milliseconds() {
        let m = CoarseMonotonicClock::new();
        assert_eq!(m.now() % 1_000_000, 0);
        assert_eq!(CoarseWallClock.now().subsec_nanos() % 1_000_000, 0);
        assert_eq!(m.resolution(), 1_000_000);
    }
}
