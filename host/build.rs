//! Gives the binaries an rpath to the libtorch they were linked against,
//! and exports its folder to crates built on this one (`links =
//! "trainbox"`: their build.rs calls `trainbox_build::link_libtorch()`).
//! Nothing else about the checkout is baked in: the binary finds its
//! built-in plugins at run time (`session::builtin_plugin_dir`), and `plugin
//! new` writes the SDK it embeds.

fn main() {
    // One build for the CPU and CUDA: with a CUDA libtorch (the torch
    // wheel), libtorch_cuda is linked so that its CUDA backend registers at
    // start-up and a GPU is used when present; without a GPU the binary
    // runs on the CPU (it costs ~0.2 s of start-up, docs/scale.md).
    let lib = trainbox_build::link_libtorch();
    println!("cargo:libtorch_lib={}", lib.display());
    println!("cargo:rerun-if-changed=build.rs");
    // The sandbox's bindings are generated from the WIT files.
    println!("cargo:rerun-if-changed=../wit");
}
