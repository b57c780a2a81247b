//! Finds codecarbon's data tables for `src/data.rs` to embed: the carbon
//! intensities and CPU TDPs of codecarbon 3.3.2 (MIT), taken from its wheel
//! on PyPI at build time and never committed here. The folder is
//! `$CODECARBON_DATA_DIR` (set by the Makefile), else
//! `$TRAINBOX_CACHE/codecarbon-data-3.3.2/codecarbon/data`, else the same
//! under `~/.cache/trainbox`; the files keep their paths in the wheel.

use std::path::PathBuf;

/// The tables the plugin embeds, relative to the wheel's `codecarbon/data`.
const FILES: &[&str] = &[
    "private_infra/global_energy_mix.json",
    "private_infra/carbon_intensity_per_source.json",
    "private_infra/nordic_emissions.json",
    "private_infra/2023/usa_emissions.json",
    "private_infra/2023/canada_energy_mix.json",
    "private_infra/2023/china_provincial_emissions.json",
    "hardware/cpu_power.csv",
];

fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CODECARBON_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("TRAINBOX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/trainbox")
        });
    cache.join("codecarbon-data-3.3.2/codecarbon/data")
}

fn main() {
    println!("cargo:rerun-if-env-changed=CODECARBON_DATA_DIR");
    println!("cargo:rerun-if-env-changed=TRAINBOX_CACHE");
    let dir = data_dir();
    for file in FILES {
        let path = dir.join(file);
        if !path.is_file() {
            eprintln!(
                "error: codecarbon's data table {} is missing.\n\
                 The codecarbon plugin embeds codecarbon 3.3.2's data tables, fetched from PyPI at build time:\n\
                 run `make codecarbon-data`, or by hand:\n  \
                 python3 -m pip download --no-deps --only-binary=:all: codecarbon==3.3.2 -d /tmp/cc &&\n  \
                 python3 -m zipfile -e /tmp/cc/codecarbon-3.3.2-py3-none-any.whl /tmp/cc/x &&\n  \
                 export CODECARBON_DATA_DIR=/tmp/cc/x/codecarbon/data",
                path.display()
            );
            std::process::exit(1);
        }
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rustc-env=CODECARBON_DATA={}", dir.display());
}
