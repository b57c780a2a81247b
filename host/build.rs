//! Bakes in where `make plugins` puts the built-in plugins, and gives the
//! binary an rpath to the libtorch it was linked against.

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest)
        .join("..")
        .join("build")
        .join("plugins");
    println!("cargo:rustc-env=TRAINBOX_BUILTIN_PLUGINS={}", dir.display());
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        // One build for the CPU and CUDA: with a CUDA libtorch (the torch
        // wheel), libtorch_cuda is linked even though no symbol of it is
        // named (Rust links --as-needed), so that its CUDA backend registers
        // at start-up and a GPU is used when present; without a GPU the
        // binary runs on the CPU (it costs ~0.2 s of start-up, docs/scale.md).
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    // The baked path is this checkout's: a checkout elsewhere that shares the
    // cached target directory (CI's fresh clone) must not keep another's.
    // Cargo does not rerun a build script when only the package's path
    // changed, so rerun it when the directory cargo is started from changes.
    println!("cargo:rerun-if-env-changed=PWD");
    println!("cargo:rerun-if-changed=../wit");
}
