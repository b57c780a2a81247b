//! The libtorch link of a binary built on the `trainbox` crate, for its
//! `build.rs`. A library's build script cannot give its dependents' binaries
//! an rpath, so a binary that depends on `trainbox` (or on `tch`) calls
//! [`link_libtorch`] from its own:
//!
//! ```text
//! // build.rs
//! fn main() {
//!     trainbox_build::link_libtorch();
//! }
//! ```
//!
//! with `trainbox-build` under `[build-dependencies]`. The binary then runs
//! without `LD_LIBRARY_PATH`, and on a machine with a GPU uses it.

use std::path::{Path, PathBuf};

/// The variables naming libtorch's `lib` folder, in the order they are read:
/// the `trainbox` crate's (`links = "trainbox"`) for its dependents, then
/// torch-sys's (`links = "tch"`) for crates that depend on it directly.
pub const LIB_VARS: [&str; 2] = ["DEP_TRAINBOX_LIBTORCH_LIB", "DEP_TCH_LIBTORCH_LIB"];

/// Gives the crate's binaries, examples and tests an rpath to libtorch's
/// `lib` folder (its real path, so that the binary keeps working when a
/// link to it moves) and, with a CUDA libtorch, links `libtorch_cuda` even
/// though no symbol of it is named, so that its CUDA backend registers at
/// start-up. Returns the folder.
///
/// # Panics
///
/// When no dependency exported the folder: the crate depends on neither
/// `trainbox` nor `tch` directly.
pub fn link_libtorch() -> PathBuf {
    let lib = libtorch_lib().unwrap_or_else(|| {
        panic!(
            "trainbox_build::link_libtorch: none of {} is set; call it from the build.rs of a \
             crate that depends on `trainbox` (or `tch`) directly",
            LIB_VARS.join(", ")
        )
    });
    for line in link_args(&lib) {
        println!("{line}");
    }
    lib
}

/// libtorch's `lib` folder, as exported by a dependency, canonicalized.
pub fn libtorch_lib() -> Option<PathBuf> {
    let lib = LIB_VARS.iter().find_map(std::env::var_os)?;
    let lib = PathBuf::from(lib);
    Some(lib.canonicalize().unwrap_or(lib))
}

/// The cargo instructions that link a binary to libtorch in `lib`.
pub fn link_args(lib: &Path) -> Vec<String> {
    let mut args = vec![format!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display())];
    // Rust links with --as-needed: without these, libtorch_cuda would be
    // dropped, and a GPU never seen.
    if lib.join("libtorch_cuda.so").exists() {
        args.push("cargo:rustc-link-arg=-Wl,--no-as-needed".to_string());
        args.push("cargo:rustc-link-arg=-ltorch_cuda".to_string());
        args.push("cargo:rustc-link-arg=-Wl,--as-needed".to_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_libtorch_gets_only_the_rpath() {
        let dir = std::env::temp_dir().join(format!("trainbox-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            link_args(&dir),
            vec![format!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display())]
        );
        std::fs::write(dir.join("libtorch_cuda.so"), b"").unwrap();
        let args = link_args(&dir);
        assert_eq!(args.len(), 4);
        assert_eq!(args[2], "cargo:rustc-link-arg=-ltorch_cuda");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
