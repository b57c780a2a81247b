//! Gives the binary an rpath to the libtorch it was linked against. Nothing
//! else about the checkout is baked in: the binary finds its built-in
//! plugins at run time (`session::builtin_plugin_dir`), and `plugin new`
//! writes the SDK it embeds.

fn main() {
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
    // The sandbox's bindings are generated from the WIT files.
    println!("cargo:rerun-if-changed=../wit");
}
