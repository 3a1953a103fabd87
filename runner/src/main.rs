//! `gantry-runner`: the entrypoint of every step container (DESIGN §5.4).

use clap::Parser;
use gantry_runner::cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match gantry_runner::execute(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gantry-runner: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
