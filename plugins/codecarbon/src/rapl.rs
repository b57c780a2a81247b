//! CPU energy from Intel RAPL counters in a powercap tree, as codecarbon
//! 3.3.2's `IntelRAPL` reads them (`rapl_dir` = `<root>/intel-rapl`): find
//! the domains (`intel-rapl*/<name>:<n>/energy_uj`), keep the package
//! domains (else `psys`, else all), read `energy_uj` deltas with
//! `max_energy_range_uj` wrap-around, and leave out counters that mirror
//! another (multi-die CPUs show one package counter per die). Only package
//! and psys domains count as CPU energy, as in codecarbon.
//!
//! Energies are kWh computed as codecarbon does (`uJ × 1e-6 × 2.77778e-7`),
//! so that the two agree to the bit.

use std::path::{Path, PathBuf};

/// codecarbon's `Energy.from_ujoules`.
pub fn kwh_from_uj(uj: f64) -> f64 {
    uj * 1e-6 * 2.77778e-7
}

/// Two counters closer than this (1 J) at start look like one counter.
fn tolerance_kwh() -> f64 {
    kwh_from_uj(1_000_000.0)
}

/// codecarbon's `counters_match`.
fn counters_match(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= (1e-6 * a.max(b)).max(tolerance)
}

/// One counter (`RAPLFile`).
#[derive(Debug)]
struct Counter {
    /// `Processor Energy Delta_<i>(kWh)` for a package or psys domain, else the domain's name.
    name: String,
    energy_uj: PathBuf,
    /// `max_energy_range_uj` in kWh; 0 when unreadable (no wrap correction).
    max_kwh: f64,
    last_kwh: Option<f64>,
    delta_kwh: f64,
    power_w: f64,
    skipped: bool,
}

fn read_kwh(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse::<f64>().ok().map(kwh_from_uj)
}

impl Counter {
    fn is_cpu(&self) -> bool {
        self.name.starts_with("Processor Energy Delta_")
    }

    /// `RAPLFile.delta`: the energy since the last reading, over `seconds`.
    fn delta(&mut self, seconds: f64) {
        let new = read_kwh(&self.energy_uj);
        let (Some(now), Some(last)) = (new, self.last_kwh) else {
            self.skip(new);
            return;
        };
        let mut energy = now;
        if last > energy {
            energy += self.max_kwh;
        }
        if last > energy {
            self.skip(new);
            return;
        }
        let hours = seconds * (1.0 / 3600.0);
        let kw = if hours != 0.0 {
            (last - energy).abs() / hours
        } else {
            0.0
        };
        self.power_w = kw * 1000.0;
        self.delta_kwh = energy - last;
        self.last_kwh = new;
        self.skipped = false;
    }

    fn skip(&mut self, new: Option<f64>) {
        (self.delta_kwh, self.power_w, self.last_kwh, self.skipped) = (0.0, 0.0, new, true);
    }
}

/// The CPU energy meter of a powercap tree.
#[derive(Debug)]
pub struct Rapl {
    counters: Vec<Counter>,
    /// Counters that looked like a mirror of another at start: (index, of index).
    pending: Vec<(usize, usize)>,
}

/// One domain folder: (folder, name, energy file readable, is mmio).
struct Domain {
    dir: PathBuf,
    name: String,
    mmio: bool,
}

fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries
}

/// `<name>:<n>` folders holding an `energy_uj`.
fn domain_dirs_in(dir: &Path) -> impl Iterator<Item = PathBuf> {
    sorted_entries(dir)
        .into_iter()
        .filter(|(name, path)| {
            name.contains(':') && path.is_dir() && path.join("energy_uj").exists()
        })
        .map(|(_, path)| path)
}

/// `_fetch_rapl_files`'s search: the domains under each `intel-rapl*` entry
/// of `rapl_dir` and of its parent; else the domains directly in `rapl_dir`.
fn find_domain_dirs(rapl_dir: &Path) -> Vec<PathBuf> {
    let mut bases = vec![rapl_dir.to_path_buf()];
    if let Some(parent) = rapl_dir.parent() {
        bases.push(parent.to_path_buf());
    }
    let mut dirs = Vec::new();
    for base in bases.iter().filter(|b| b.exists()) {
        for (name, entry) in sorted_entries(base) {
            if name.starts_with("intel-rapl") && entry.is_dir() {
                dirs.extend(domain_dirs_in(&entry));
            }
        }
    }
    if dirs.is_empty() {
        dirs.extend(domain_dirs_in(rapl_dir));
    }
    dirs
}

impl Rapl {
    /// The meter of the tree at `root` (codecarbon's `/sys/class/powercap`),
    /// or none when no package (or `:0`) domain is readable, where
    /// codecarbon falls back on the TDP estimate.
    pub fn discover(root: &Path) -> Option<Rapl> {
        let rapl_dir = root.join("intel-rapl");
        let mut readable = Vec::new();
        let mut main_found = false;
        for dir in find_domain_dirs(&rapl_dir) {
            let name = std::fs::read_to_string(dir.join("name"))
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| file_name(&dir));
            if read_kwh(&dir.join("energy_uj")).is_none() {
                continue;
            }
            main_found |=
                name.to_lowercase().contains("package") || file_name(&dir).ends_with(":0");
            let mmio = dir.to_string_lossy().contains("intel-rapl-mmio");
            readable.push(Domain { dir, name, mmio });
        }
        if !main_found {
            return None;
        }
        let is = |d: &Domain, what: &str| d.name.to_lowercase().contains(what);
        let packages: Vec<&Domain> = readable.iter().filter(|d| is(d, "package")).collect();
        let psys: Vec<&Domain> = readable
            .iter()
            .filter(|d| d.name.to_lowercase() == "psys")
            .collect();
        let chosen = if !packages.is_empty() {
            packages
        } else if !psys.is_empty() {
            psys
        } else {
            readable.iter().collect()
        };
        // One counter per domain name, an MMIO one replacing an MSR one in place.
        let mut unique: Vec<&Domain> = Vec::new();
        for d in chosen {
            match unique.iter_mut().find(|u| u.name == d.name) {
                Some(u) if d.mmio && !u.mmio => *u = d,
                Some(_) => {}
                None => unique.push(d),
            }
        }
        let mut index = 0;
        let counters = unique
            .into_iter()
            .map(|d| {
                let lower = d.name.to_lowercase();
                let name = if lower.contains("package") || lower.contains("psys") {
                    index += 1;
                    format!("Processor Energy Delta_{}(kWh)", index - 1)
                } else {
                    d.name.clone()
                };
                let energy_uj = d.dir.join("energy_uj");
                Counter {
                    name,
                    last_kwh: read_kwh(&energy_uj),
                    max_kwh: read_kwh(&d.dir.join("max_energy_range_uj")).unwrap_or(0.0),
                    energy_uj,
                    delta_kwh: 0.0,
                    power_w: 0.0,
                    skipped: false,
                }
            })
            .collect();
        Some(Rapl {
            counters,
            pending: Vec::new(),
        })
    }

    /// `IntelRAPL.start`: reads every counter and sets aside those that
    /// equal an earlier one (DRAM counters excepted).
    pub fn start(&mut self) {
        for c in &mut self.counters {
            c.last_kwh = read_kwh(&c.energy_uj);
        }
        let tolerance = tolerance_kwh();
        let mut references: Vec<(usize, f64)> = Vec::new();
        self.pending.clear();
        for (i, c) in self.counters.iter().enumerate() {
            let Some(energy) = c
                .last_kwh
                .filter(|_| !c.name.to_lowercase().contains("dram"))
            else {
                continue;
            };
            if energy <= 0.0 {
                continue;
            }
            match references
                .iter()
                .find(|(_, r)| counters_match(energy, *r, tolerance))
            {
                Some(&(of, _)) => self.pending.push((i, of)),
                None => references.push((i, energy)),
            }
        }
    }

    /// `get_cpu_details` then codecarbon's sums: the CPU energy (kWh) and
    /// power (W) of the interval of `seconds` since the last reading.
    pub fn measure(&mut self, seconds: f64) -> (f64, f64) {
        for c in &mut self.counters {
            c.delta(seconds);
        }
        self.confirm_mirrors();
        let (mut kwh, mut watts) = (0.0, 0.0);
        for (i, c) in self.counters.iter().enumerate() {
            if c.is_cpu() && !self.pending.iter().any(|&(p, _)| p == i) {
                kwh += c.delta_kwh;
                watts += c.power_w;
            }
        }
        (kwh, watts)
    }

    /// `_confirm_mirrored_files`: a pending counter that accrued the same
    /// energy as its reference is dropped, one that accrued a different
    /// energy is measured again, and one with nothing conclusive stays pending.
    fn confirm_mirrors(&mut self) {
        let tolerance = tolerance_kwh();
        let mut dropped = Vec::new();
        let mut still = Vec::new();
        for &(i, of) in &self.pending {
            let (c, r) = (&self.counters[i], &self.counters[of]);
            if c.skipped || r.skipped || (c.delta_kwh <= 0.0 && r.delta_kwh <= 0.0) {
                still.push((i, of));
            } else if counters_match(c.delta_kwh, r.delta_kwh, tolerance) {
                dropped.push(i);
            }
        }
        // Drop confirmed mirrors, renumbering what still points past them.
        let shift = |k: usize| k - dropped.iter().filter(|&&d| d < k).count();
        self.pending = still
            .into_iter()
            .filter(|(i, of)| !dropped.contains(i) && !dropped.contains(of))
            .map(|(i, of)| (shift(i), shift(of)))
            .collect();
        let mut k = 0;
        self.counters.retain(|_| {
            k += 1;
            !dropped.contains(&(k - 1))
        });
    }

    /// How many counters are measured (mirrors left out).
    pub fn counters(&self) -> usize {
        self.counters.len() - self.pending.len()
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake powercap tree shaped like `/sys/devices/virtual/powercap`.
    struct Tree(PathBuf);

    impl Tree {
        fn new(test: &str) -> Tree {
            let root =
                std::env::temp_dir().join(format!("trainbox-rapl-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            Tree(root)
        }

        fn domain(&self, rel: &str, name: &str, uj: u64, max: u64) -> &Tree {
            let d = self.0.join("intel-rapl").join(rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(d.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
            self.set(rel, uj)
        }

        fn set(&self, rel: &str, uj: u64) -> &Tree {
            std::fs::write(
                self.0.join("intel-rapl").join(rel).join("energy_uj"),
                format!("{uj}\n"),
            )
            .unwrap();
            self
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const MAX: u64 = 262_143_328_850;

    #[test]
    fn packages_count_with_wrap_and_subdomains_do_not() {
        let t = Tree::new("wrap");
        t.domain("intel-rapl:0", "package-0", MAX - 5_000_000, MAX)
            .domain("intel-rapl:0/intel-rapl:0:0", "core", 1_000, MAX)
            .domain("intel-rapl:1", "package-1", 7_000_000_000, MAX);
        let mut rapl = Rapl::discover(&t.0).expect("rapl");
        rapl.start();
        t.set("intel-rapl:0", 25_000_000)
            .set("intel-rapl:0/intel-rapl:0:0", 9_000_000)
            .set("intel-rapl:1", 7_010_000_000);
        let (kwh, w) = rapl.measure(2.0);
        // Package 0 wrapped: 5 J + 25 J; package 1: 10 J; the core subdomain is ignored.
        let p0 = kwh_from_uj(25_000_000.0) + kwh_from_uj(MAX as f64)
            - kwh_from_uj((MAX - 5_000_000) as f64);
        let p1 = kwh_from_uj(7_010_000_000.0) - kwh_from_uj(7_000_000_000.0);
        assert_eq!(kwh, p0 + p1);
        assert!((w - 20.0).abs() < 1e-3, "40 J over 2 s: {w}");
    }

    #[test]
    fn without_a_readable_package_there_is_no_rapl() {
        let t = Tree::new("none");
        // A DRAM domain is not a main one, and a package without energy_uj is no domain.
        t.domain("intel-rapl:1", "dram", 1, MAX);
        std::fs::create_dir_all(t.0.join("intel-rapl/intel-rapl:0")).unwrap();
        std::fs::write(t.0.join("intel-rapl/intel-rapl:0/name"), "package-0\n").unwrap();
        assert!(Rapl::discover(&t.0).is_none());
        assert!(Rapl::discover(Path::new("/no/such/powercap")).is_none());
    }

    #[test]
    fn a_mirrored_package_counter_is_dropped() {
        let t = Tree::new("mirror");
        t.domain("intel-rapl:0", "package-0", 5_000_000_000, MAX)
            .domain("intel-rapl:1", "package-1", 5_000_000_100, MAX);
        let mut rapl = Rapl::discover(&t.0).unwrap();
        rapl.start();
        assert_eq!(rapl.counters(), 1, "the second looks like a mirror");
        t.set("intel-rapl:0", 5_030_000_000)
            .set("intel-rapl:1", 5_030_000_100);
        let (kwh, _) = rapl.measure(1.0);
        assert_eq!(
            kwh,
            kwh_from_uj(5_030_000_000.0) - kwh_from_uj(5_000_000_000.0)
        );
        assert_eq!(
            (rapl.counters.len(), rapl.counters()),
            (1, 1),
            "confirmed and dropped"
        );
    }

    #[test]
    fn an_independent_counter_is_measured_again() {
        let t = Tree::new("independent");
        t.domain("intel-rapl:0", "package-0", 5_000_000_000, MAX)
            .domain("intel-rapl:1", "package-1", 5_000_000_100, MAX);
        let mut rapl = Rapl::discover(&t.0).unwrap();
        rapl.start();
        t.set("intel-rapl:0", 5_030_000_000)
            .set("intel-rapl:1", 5_090_000_100);
        let (kwh, _) = rapl.measure(1.0);
        let want = (kwh_from_uj(5_030_000_000.0) - kwh_from_uj(5_000_000_000.0))
            + (kwh_from_uj(5_090_000_100.0) - kwh_from_uj(5_000_000_100.0));
        assert_eq!(kwh, want);
        assert_eq!(rapl.counters(), 2);
    }
}
