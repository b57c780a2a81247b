//! The `trainbox` binary: parse, run, report errors once.

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Plugins share half of the open-file limit; the host keeps the rest.
    trainbox::sandbox::raise_open_file_limit();
    // A step's freed memory is kept for the next (trainer/runtime.rs).
    trainbox::trainer::keep_freed_memory();
    match trainbox::cli::run(argv) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            trainbox::ui::eprintln(&format!("trainbox: {err:#}"));
            ExitCode::from(2)
        }
    }
}
