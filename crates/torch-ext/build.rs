//! Compiles the C++ shim (csrc/) against the headers of the libtorch that
//! torch-sys links, with NCCL where the torch environment has its headers.

use std::path::{Path, PathBuf};

fn main() {
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports its libtorch_lib"),
    );
    // Its real place: LIBTORCH may be a link (build/libtorch), and the CUDA
    // headers sit beside the real torch package.
    let lib = lib.canonicalize().unwrap_or(lib);
    let torch = lib.parent().expect("libtorch's lib folder has a parent");
    let include = torch.join("include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include("csrc/gloo-decl")
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        // Nothing the shim compiles is exported from the binary: in
        // particular no code over the declared-only Gloo names (csrc/gloo-decl).
        .flag("-fvisibility=hidden")
        .flag("-fvisibility-inlines-hidden")
        .define("USE_C10D_GLOO", None)
        .define("USE_DISTRIBUTED", None)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .file("csrc/c10d.cpp")
        .file("csrc/amp.cpp")
        .file("csrc/runtime.cpp")
        .file("csrc/optim.cpp")
        .file("csrc/nccl.cpp");
    // The CUDA wheel's packages: site-packages/nvidia/{nccl,cu13|cuda_runtime}/include.
    let nvidia = torch.parent().map(|p| p.join("nvidia"));
    if let Some(cuda) = nvidia.as_deref().and_then(nccl_headers) {
        build
            .define("USE_C10D_NCCL", None)
            .define("TBX_WITH_NCCL", None);
        for dir in cuda {
            build.include(dir);
        }
        if lib.join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-lib=dylib=torch_cuda");
            println!("cargo:rustc-link-lib=dylib=c10_cuda");
        }
    }
    build.compile("trainbox_torch_ext");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=build.rs");
}

/// The include folders holding `nccl.h` and `cuda_runtime_api.h`, when both exist.
fn nccl_headers(nvidia: &Path) -> Option<Vec<PathBuf>> {
    let nccl = nvidia.join("nccl/include");
    let cuda = ["cu13/include", "cu12/include", "cuda_runtime/include"]
        .iter()
        .map(|d| nvidia.join(d))
        .find(|d| d.join("cuda_runtime_api.h").exists())?;
    nccl.join("nccl.h").exists().then(|| vec![nccl, cuda])
}
