//! `trainbox cache [show]` and `trainbox cache clear`: the compile cache's
//! directory, entries and size, and emptying it. The cache itself (its
//! bound, its eviction) is `sandbox/cache.rs`.

use crate::sandbox::{cache_usage, clear_cache, default_cache_dir, CACHE_MAX_BYTES};
use anyhow::{bail, Result};

const USAGE: &str = "usage: trainbox cache [show] | trainbox cache clear";

pub fn run(argv: &[String]) -> Result<i32> {
    let Some(dir) = default_cache_dir() else {
        bail!("the compile cache has no directory: set TRAINBOX_CACHE (or HOME)");
    };
    match argv.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["show"] => {
            let usage = cache_usage(&dir)?;
            println!("directory: {}", dir.display());
            println!("entries:   {}", usage.entries);
            println!(
                "size:      {} (bound: {}; the least recently used go first)",
                size(usage.bytes),
                size(CACHE_MAX_BYTES)
            );
            Ok(0)
        }
        ["clear"] => {
            let removed = clear_cache(&dir)?;
            let s = if removed.entries == 1 { "y" } else { "ies" };
            println!(
                "removed {} entr{s} ({}) from {}",
                removed.entries,
                size(removed.bytes),
                dir.display()
            );
            Ok(0)
        }
        _ => bail!("unknown cache command {:?}; {USAGE}", argv.join(" ")),
    }
}

/// A byte count in the largest binary unit that keeps it at least 1.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(0), "0 bytes");
        assert_eq!(size(1023), "1023 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(1 << 30), "1.0 GiB");
    }
}
