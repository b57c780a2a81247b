//! Clocks for plugins, no finer than a millisecond: enough to time and
//! timestamp what a logger does, too coarse to time side channels.

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
