//! Power estimates for hardware without an energy counter, as codecarbon
//! 3.3.2 makes them: the CPU's TDP (its `cpu_power.csv`, matched as its `TDP`
//! class matches, else 4 W per thread), turned into power by the "cpu_load"
//! curve TDP × (0.1 + 0.9·load³); and the RAM's 5 W per estimated DIMM on
//! x86 (1.5 W on ARM).
//!
//! The sandbox cannot read the CPU load (codecarbon samples `psutil`), so
//! the load is a setting, `codecarbon.cpu_load` (percent, default 100: a
//! training run keeps the CPUs busy, so the estimate is TDP, an upper bound).

use crate::data;

/// codecarbon's `DEFAULT_POWER_PER_CORE`: W per thread of an unknown CPU.
const POWER_PER_THREAD: f64 = 4.0;

/// The TDP table: (name, W), in file order; rows without a number are skipped.
fn cpu_table() -> Vec<(String, f64)> {
    csv::Reader::from_reader(data::CPU_POWER.as_bytes())
        .into_records()
        .filter_map(|row| {
            let row = row.ok()?;
            Some((row.get(0)?.to_string(), row.get(1)?.trim().parse().ok()?))
        })
        .collect()
}

/// rapidfuzz's `default_process`: lower case, non-alphanumerics to spaces, trimmed.
fn default_process(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `fuzz.token_set_ratio(a, b) == 100`: the token sets share a token and
/// one holds the other.
fn token_set_match(a: &str, b: &str) -> bool {
    use std::collections::BTreeSet;
    let a: BTreeSet<&str> = a.split_whitespace().collect();
    let b: BTreeSet<&str> = b.split_whitespace().collect();
    !a.is_disjoint(&b) && (a.is_subset(&b) || b.is_subset(&a))
}

/// The `cpu_power.csv` row for a model name (`TDP._get_matching_cpu`,
/// non-greedy): an exact match ignoring case; then the same after dropping
/// "(R)", " CPU" and the "@ x.xxGHz" clock; then the one row whose token set
/// holds the model's, or is held by it (none when several are).
pub fn match_cpu(model: &str) -> Option<(String, f64)> {
    let table = cpu_table();
    let exact = |m: &str| {
        let m = m.to_lowercase();
        table.iter().find(|(n, _)| n.to_lowercase() == m).cloned()
    };
    if let Some(hit) = exact(model) {
        return Some(hit);
    }
    let mut m = model.replace("(R)", "");
    if let Some(at) = m.find(" CPU @ ").filter(|&at| at > 0) {
        m.truncate(at);
    }
    let m = drop_clock(&m.replace(" CPU", ""));
    if let Some(hit) = exact(&m) {
        return Some(hit);
    }
    let query = default_process(&m);
    let mut hits = table
        .iter()
        .filter(|(n, _)| token_set_match(&query, &default_process(n)));
    match (hits.next(), hits.next()) {
        (Some(hit), None) => Some(hit.clone()),
        _ => None,
    }
}

/// `re.sub(r" @\s*\d+\.\d+GHz", "", s)`.
fn drop_clock(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(" @") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let t = tail.trim_start();
        let int = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let after_int = &t[int..];
        let frac = after_int
            .strip_prefix('.')
            .map(|f| f.len() - f.trim_start_matches(|c: char| c.is_ascii_digit()).len());
        match frac {
            Some(n) if int > 0 && n > 0 && after_int[1 + n..].starts_with("GHz") => {
                rest = &after_int[1 + n + 3..];
            }
            _ => {
                out.push_str(" @");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The CPU's TDP in W and whether the table knew it: the table's TDP times
/// the sockets, else 4 W per thread (times the sockets, as codecarbon does).
pub fn cpu_tdp(model: &str, threads: u32, sockets: u32) -> (f64, bool) {
    match match_cpu(model) {
        Some((_, tdp)) => (tdp * sockets as f64, true),
        None => (threads as f64 * POWER_PER_THREAD * sockets as f64, false),
    }
}

/// Power at a CPU load, in W (machine tracking mode).
pub fn cpu_load_power(tdp: f64, load_percent: f64) -> f64 {
    tdp * (0.1 + 0.9 * (load_percent / 100.0).powf(3.0))
}

/// codecarbon's DIMM-count guess for a RAM size in GB.
fn dimm_count(total_gb: f64) -> u32 {
    if total_gb <= 2.0 {
        return 1;
    }
    if total_gb <= 32.0 {
        return if total_gb <= 16.0 { 2 } else { 4 };
    }
    if total_gb <= 128.0 {
        return if total_gb <= 64.0 { 4 } else { 8 };
    }
    for size in [128.0, 64.0, 32.0, 16.0, 8.0, 4.0] {
        if size <= total_gb / 8.0 {
            return ((total_gb / size).ceil() as u32).min(32);
        }
    }
    8
}

/// RAM power in W for a RAM size (`RAM._calculate_ram_power`).
pub fn ram_power(total_gb: f64, arm: bool) -> f64 {
    let (per_dimm, min_power) = if arm { (1.5, 3.0) } else { (5.0, 10.0) };
    let n = dimm_count(total_gb) as f64;
    let power = if n <= 4.0 {
        per_dimm * n
    } else if n <= 8.0 {
        per_dimm * 4.0 + per_dimm * 0.9 * (n - 4.0)
    } else if n <= 16.0 {
        per_dimm * 4.0 + per_dimm * 0.9 * 4.0 + per_dimm * 0.8 * (n - 8.0)
    } else {
        per_dimm * 4.0 + per_dimm * 0.9 * 4.0 + per_dimm * 0.8 * 8.0 + per_dimm * 0.7 * (n - 16.0)
    };
    power.max(min_power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_models_match_as_codecarbon_matches_them() {
        // Expected: codecarbon 3.3.2's TDP()._get_matching_cpu and its TDP.
        let cases = [
            (
                "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
                Some(("Intel Xeon Gold 6148", 150.0)),
            ),
            (
                "AMD EPYC 7763 64-Core Processor",
                Some(("AMD EPYC 7763", 280.0)),
            ),
            ("amd epyc 7763", Some(("AMD EPYC 7763", 280.0))),
            (
                "AMD Ryzen 9 5950X 16-Core Processor",
                Some(("AMD Ryzen 9 5950X", 105.0)),
            ),
            (
                "Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz",
                Some(("Intel Core i7-8550U", 15.0)),
            ),
            (
                "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz",
                Some(("Intel Xeon E5-2686 v4", 145.0)),
            ),
            ("Apple M1", Some(("Apple M1", 10.0))),
            ("AMD EPYC", None),
            ("", None),
        ];
        for (model, want) in cases {
            let got = match_cpu(model);
            assert_eq!(
                got.as_ref().map(|(n, w)| (n.as_str(), *w)),
                want,
                "{model:?}"
            );
        }
    }

    #[test]
    fn clock_suffixes_are_dropped() {
        assert_eq!(drop_clock("Xeon Gold 6148 @ 2.40GHz"), "Xeon Gold 6148");
        assert_eq!(drop_clock("X @2.4GHz Y"), "X Y");
        assert_eq!(drop_clock("X @ 2GHz"), "X @ 2GHz");
        assert_eq!(drop_clock("X @ fast"), "X @ fast");
    }

    #[test]
    fn unknown_cpus_get_4_w_per_thread() {
        assert_eq!(cpu_tdp("AMD EPYC", 2, 1), (8.0, false));
        assert_eq!(cpu_tdp("Intel Xeon Gold 6148", 80, 2), (300.0, true));
    }

    #[test]
    fn load_curve_is_cubic_with_a_10_percent_floor() {
        assert_eq!(cpu_load_power(100.0, 100.0), 100.0);
        assert_eq!(cpu_load_power(100.0, 0.0), 10.0);
        assert!((cpu_load_power(8.0, 50.0) - 8.0 * (0.1 + 0.9 * 0.125)).abs() < 1e-15);
    }

    #[test]
    fn ram_power_follows_the_dimm_model() {
        assert_eq!(
            ram_power(23.54, false),
            20.0,
            "4 DIMMs, as codecarbon said here"
        );
        assert_eq!(ram_power(8.0, false), 10.0);
        assert_eq!(
            ram_power(1.0, false),
            10.0,
            "at least 2 DIMMs' worth on x86"
        );
        // codecarbon's RAM._calculate_ram_power for 96, 200, 1024 and 4096 GB.
        assert_eq!(ram_power(96.0, false), 38.0);
        assert_eq!(ram_power(200.0, false), 58.0);
        assert_eq!(ram_power(1024.0, false), 38.0);
        assert_eq!(ram_power(4096.0, false), 126.0);
        assert_eq!(ram_power(16.0, true), 3.0);
    }
}
