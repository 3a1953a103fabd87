use std::process::ExitCode;

use clap::Parser;
use gantry_cli::{Cli, exit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match gantry_cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gantry: error: {error:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
