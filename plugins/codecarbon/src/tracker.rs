//! The accounting of codecarbon's `EmissionsTracker` between `start()` and
//! `stop()`: at each measurement, the energy of the interval since the last
//! one, RAM first then CPU, with the power of each; the totals at stop.
//! Times are seconds on a monotonic clock the caller reads.
//!
//! Differences from codecarbon, where the sandbox or the event model makes
//! them: measurements happen on events (the plugin's `on_step_end`, at
//! least `measure_power_secs` apart, and at stop) rather than on a
//! background thread; the stop always measures (codecarbon skips an
//! interval under 50 ms, losing it); and the powers written are the means
//! over the intervals (codecarbon also counts a zero-length sample taken at
//! `start()`, which halves the power of runs shorter than one interval).

use crate::rapl::Rapl;

/// Where CPU energy comes from.
#[derive(Debug)]
pub enum CpuMeter {
    /// RAPL counters.
    Rapl(Rapl),
    /// A constant power in W (codecarbon's TDP-based estimate).
    Estimate(f64),
}

/// What was measured between start and stop.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub duration_s: f64,
    pub cpu_kwh: f64,
    pub ram_kwh: f64,
    pub energy_kwh: f64,
    /// Mean CPU power over the intervals, W.
    pub cpu_w: f64,
    /// Mean RAM power over the intervals, W.
    pub ram_w: f64,
}

#[derive(Debug)]
pub struct Tracker {
    cpu: CpuMeter,
    ram_w: f64,
    started: Option<f64>,
    last: f64,
    sums: Totals,
    intervals: u32,
}

/// `Power.from_watts(w).W`: codecarbon keeps kW, so W go through ×0.001×1000.
fn watts(w: f64) -> f64 {
    w * 0.001 * 1000.0
}

/// `Energy.from_power_and_time`: kW × hours.
fn kwh(w: f64, seconds: f64) -> f64 {
    (w * 0.001) * (seconds * (1.0 / 3600.0))
}

impl Tracker {
    pub fn new(cpu: CpuMeter, ram_w: f64) -> Tracker {
        Tracker {
            cpu,
            ram_w,
            started: None,
            last: 0.0,
            sums: Totals::default(),
            intervals: 0,
        }
    }

    /// `start()`: reads the counters' baselines.
    pub fn start(&mut self, now: f64) {
        if let CpuMeter::Rapl(r) = &mut self.cpu {
            r.start();
        }
        self.started = Some(now);
        self.last = now;
        self.sums = Totals::default();
        self.intervals = 0;
    }

    /// Seconds since the last measurement (none when stopped).
    pub fn since_last(&self, now: f64) -> Option<f64> {
        self.started.map(|_| now - self.last)
    }

    /// One measurement: the interval since the last one.
    pub fn measure(&mut self, now: f64) {
        let seconds = now - self.last;
        let s = &mut self.sums;
        let ram = kwh(self.ram_w, seconds);
        s.ram_kwh += ram;
        s.energy_kwh += ram;
        s.ram_w += watts(self.ram_w);
        let (cpu, cpu_w) = match &mut self.cpu {
            CpuMeter::Rapl(r) => r.measure(seconds),
            CpuMeter::Estimate(w) => (kwh(*w, seconds), *w),
        };
        s.cpu_kwh += cpu;
        s.energy_kwh += cpu;
        s.cpu_w += watts(cpu_w);
        self.intervals += 1;
        self.last = now;
    }

    /// `stop()`: a last measurement, then the totals; none if not started.
    pub fn stop(&mut self, now: f64) -> Option<Totals> {
        let start = self.started.take()?;
        self.measure(now);
        let n = self.intervals as f64;
        Some(Totals {
            duration_s: now - start,
            cpu_w: self.sums.cpu_w / n,
            ram_w: self.sums.ram_w / n,
            ..self.sums.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimated_power_integrates_over_intervals() {
        let mut t = Tracker::new(CpuMeter::Estimate(8.0), 20.0);
        assert!(t.stop(1.0).is_none(), "not started");
        t.start(10.0);
        t.measure(25.0);
        let totals = t.stop(40.0).unwrap();
        assert_eq!(totals.duration_s, 30.0);
        assert_eq!((totals.cpu_w, totals.ram_w), (8.0, 20.0));
        let cpu = kwh(8.0, 15.0) + kwh(8.0, 15.0);
        let ram = kwh(20.0, 15.0) + kwh(20.0, 15.0);
        assert_eq!((totals.cpu_kwh, totals.ram_kwh), (cpu, ram));
        assert!((totals.energy_kwh - 28.0 * 30.0 / 3.6e6).abs() < 1e-15);
        assert_eq!(t.since_last(50.0), None, "stopped");
    }

    #[test]
    fn energy_is_ram_then_cpu_as_codecarbon_adds_it() {
        let mut t = Tracker::new(CpuMeter::Estimate(3.0), 7.0);
        t.start(0.0);
        let totals = t.stop(2.5).unwrap();
        assert_eq!(totals.energy_kwh, 0.0 + kwh(7.0, 2.5) + kwh(3.0, 2.5));
    }
}
