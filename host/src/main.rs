//! The `trainbox` binary: parse, run, report errors once.

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match trainbox::cli::run(argv) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            trainbox::ui::eprintln(&format!("trainbox: {err:#}"));
            ExitCode::from(2)
        }
    }
}
