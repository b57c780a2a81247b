//! codecarbon: HF's `CodeCarbonCallback` (`--report_to codecarbon`): an
//! emissions tracker started at train begin and stopped at train end (or
//! when the run is aborted), which appends one row to `emissions.csv` in the
//! plugin's own folder, `<output_dir>/plugins/codecarbon/`, in codecarbon
//! 3.3.2's format (38 columns; `FileOutput` appends to it).
//!
//! Energy, as codecarbon estimates it in "machine" mode:
//! - CPU: RAPL counters when the powercap tree is granted at `/powercap`
//!   (module `rapl`), else the TDP estimate at an assumed load (`hardware`);
//! - RAM: codecarbon's DIMM model; GPU: not measured (no NVML in the sandbox);
//! - carbon intensity: `CODECARBON_COUNTRY_ISO_CODE` (and `CODECARBON_REGION`)
//!   as `OfflineEmissionsTracker` uses them, else codecarbon's offline default,
//!   Quebec, Canada (`intensity`).
//!
//! Facts the sandbox hides come in the config from `--report_to codecarbon`:
//! `cpu_model`, `cpu_count`, `cpu_sockets`, `ram_total_gb`, `os`, `hostname`,
//! `pid`. Settings: `codecarbon.project_name` (default `codecarbon`),
//! `codecarbon.measure_power_secs` (15: the interval of measurements, taken
//! at the first step end past it), `codecarbon.cpu_load` (percent, default
//! 100, for the TDP estimate: the sandbox cannot read the CPU load).
//! The row says `codecarbon_version` 3.3.2 (whose method and tables these
//! are) and leaves `python_version` empty; `tracking_mode` is `machine`.
//!
//! Modules: `tracker` (accounting), `rapl`, `hardware`, `intensity`,
//! `emissions_csv`, `ids` (run id, timestamp), `data`
//! (codecarbon's tables, embedded at build).

mod data;
mod emissions_csv;
mod hardware;
mod ids;
mod intensity;
mod rapl;
mod tracker;

use emissions_csv::Cell;
use intensity::{Location, Rate};
use std::path::Path;
use std::time::Instant;
use tracker::{CpuMeter, Totals, Tracker};
use trainbox_sdk::{
    export_plugin, format, Callback, Capability, Config, Context, Event, RunOutcome, TrainingArgs,
};

/// Where `--report_to codecarbon` mounts the powercap tree, when the machine has one.
const POWERCAP: &str = "/powercap";
const FILE: &str = "emissions.csv";
/// codecarbon's default `experiment_id`.
const EXPERIMENT_ID: &str = "5b0fa12a-3dd7-45bb-9766-cc326314d9f1";
const ENV: [&str; 2] = ["CODECARBON_COUNTRY_ISO_CODE", "CODECARBON_REGION"];

/// What the row says of the machine and the run.
struct Facts {
    project_name: String,
    cpu_model: String,
    cpu_count: u32,
    ram_total_gb: f64,
    os: String,
    location: Location,
    rate: Rate,
}

#[derive(Default)]
struct CodeCarbon {
    facts: Option<Facts>,
    tracker: Option<Tracker>,
    measure_every: f64,
    clock: Option<Instant>,
}

impl CodeCarbon {
    fn now(&self) -> f64 {
        self.clock.map_or(0.0, |c| c.elapsed().as_secs_f64())
    }

    /// `stop()`: measures, writes the row and says what it wrote.
    fn stop(&mut self) {
        let now = self.now();
        let (Some(tracker), Some(facts)) = (self.tracker.as_mut(), self.facts.as_ref()) else {
            return;
        };
        let Some(totals) = tracker.stop(now) else {
            return;
        };
        let emissions = if totals.energy_kwh > 0.0 {
            facts.rate.emissions(totals.energy_kwh)
        } else {
            0.0
        };
        match emissions_csv::append(FILE, &row(facts, &totals, emissions)) {
            Ok(written) => {
                if let emissions_csv::Written::BackedUp(old) = written {
                    println!("{FILE} had other columns: kept as {old}");
                }
                println!(
                    "{} kg CO2eq, {} kWh in {} s ({}): {FILE}",
                    format::g4(emissions),
                    format::g4(totals.energy_kwh),
                    format::g4(totals.duration_s),
                    facts.location.label()
                );
            }
            Err(e) => eprintln!("{e}: no emissions row written"),
        }
    }
}

/// The `EmissionsData` row.
fn row(f: &Facts, t: &Totals, emissions: f64) -> [Cell; 38] {
    let text = |s: &str| Cell::Text(s.to_string());
    let opt = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Float);
    let rate = if t.duration_s > 0.0 {
        emissions / t.duration_s
    } else {
        0.0
    };
    let loc = &f.location;
    [
        Cell::Text(ids::now()),
        text(&f.project_name),
        Cell::Text(ids::uuid4()),
        text(EXPERIMENT_ID),
        Cell::Float(t.duration_s),
        Cell::Float(emissions),
        Cell::Float(rate),
        Cell::Float(t.cpu_w),
        Cell::Float(0.0),
        Cell::Float(t.ram_w),
        Cell::Float(t.cpu_kwh),
        Cell::Float(0.0),
        Cell::Float(t.ram_kwh),
        Cell::Float(t.energy_kwh),
        Cell::Float(0.0),
        loc.country_name.as_deref().map_or(Cell::Empty, text),
        text(&loc.country_iso_code),
        loc.region.as_deref().map_or(Cell::Empty, text),
        text(""),
        text(""),
        text(&f.os),
        text(""),
        text("3.3.2"),
        Cell::Int(f.cpu_count as i64),
        text(&f.cpu_model),
        Cell::Int(0),
        text(""),
        opt(loc.longitude),
        opt(loc.latitude),
        Cell::Float(f.ram_total_gb),
        text("machine"),
        Cell::Int(0),
        Cell::Int(0),
        Cell::Int(0),
        Cell::Int(0),
        text("N"),
        Cell::Float(1.0),
        Cell::Float(0.0),
    ]
}

fn parse<T: std::str::FromStr>(config: &Config, key: &str, default: T) -> Result<T, String> {
    Ok(config.parse(key)?.unwrap_or(default))
}

impl Callback for CodeCarbon {
    const NAME: &'static str = "codecarbon";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::StepEnd, Event::TrainEnd];

    /// The location variables; `/powercap` is used when granted, not required.
    fn capabilities() -> Vec<Capability> {
        ENV.iter().map(|v| Capability::Env(v.to_string())).collect()
    }

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&[
            "hostname",
            "pid",
            "cpu_model",
            "cpu_count",
            "cpu_sockets",
            "ram_total_gb",
            "os",
            "project_name",
            "measure_power_secs",
            "cpu_load",
        ])?;
        if config.get("cpu_model").is_none() {
            eprintln!("warning: no machine facts in the config (they come with --report_to codecarbon); estimating for an unknown 1-thread CPU");
        }
        let cpu_model = config.get("cpu_model").unwrap_or("").to_string();
        let cpu_count = parse(config, "cpu_count", 1u32)?;
        let sockets = parse(config, "cpu_sockets", 1u32)?;
        let ram_total_gb = parse(config, "ram_total_gb", 0.0f64)?;
        let os = config.get("os").unwrap_or("").to_string();
        let load = parse(config, "cpu_load", 100.0f64)?;
        if !(0.0..=100.0).contains(&load) {
            return Err(format!("cpu_load={load}: a percentage, from 0 to 100"));
        }
        self.measure_every = parse(config, "measure_power_secs", 15.0f64)?;

        let location = match std::env::var(ENV[0]).ok().filter(|v| !v.trim().is_empty()) {
            Some(iso) => Location::offline(&iso, std::env::var(ENV[1]).ok().as_deref()),
            None => Location::codecarbon_default(),
        };
        let rate = intensity::rate(&location);
        let arm = os.contains("aarch64") || os.contains("arm");
        let ram_w = hardware::ram_power(ram_total_gb, arm);
        let cpu = match rapl::Rapl::discover(Path::new(POWERCAP)) {
            Some(r) => {
                println!("CPU energy from RAPL ({} counters)", r.counters());
                CpuMeter::Rapl(r)
            }
            None => {
                if Path::new(POWERCAP).exists() {
                    println!(
                        "no readable RAPL package counter in the powercap tree (energy_uj is root-only on \
                         recent kernels: sudo chmod -R a+r /sys/class/powercap/* lets codecarbon and trainbox read it)"
                    );
                }
                let (tdp, known) = hardware::cpu_tdp(&cpu_model, cpu_count, sockets);
                let watts = hardware::cpu_load_power(tdp, load);
                let whence = if known {
                    "from codecarbon's table"
                } else {
                    "4 W per thread, a model not in codecarbon's table"
                };
                println!(
                    "CPU {cpu_model:?} estimated at {} W (TDP {} W {whence}, at {load}% load)",
                    format::g4(watts),
                    format::g4(tdp)
                );
                CpuMeter::Estimate(watts)
            }
        };
        self.tracker = Some(Tracker::new(cpu, ram_w));
        self.facts = Some(Facts {
            project_name: config
                .get("project_name")
                .unwrap_or("codecarbon")
                .to_string(),
            cpu_model,
            cpu_count,
            ram_total_gb,
            os,
            location,
            rate,
        });
        self.clock = Some(Instant::now());
        Ok(())
    }

    fn on_train_begin(&mut self, _cx: &mut Context) {
        let now = self.now();
        if let Some(t) = self.tracker.as_mut() {
            t.start(now);
        }
    }

    fn on_step_end(&mut self, _cx: &mut Context) {
        let now = self.now();
        let every = self.measure_every;
        if let Some(t) = self.tracker.as_mut() {
            if t.since_last(now).is_some_and(|s| s >= every) {
                t.measure(now);
            }
        }
    }

    fn on_train_end(&mut self, _cx: &mut Context) {
        self.stop();
    }

    fn finish(&mut self, outcome: &RunOutcome) {
        if matches!(outcome, RunOutcome::Aborted(_)) {
            self.stop();
        }
    }
}

export_plugin!(CodeCarbon);
