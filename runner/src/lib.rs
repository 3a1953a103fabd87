//! `gantry-runner`, the static binary inside every runner image: it speaks the step protocol
//! (DESIGN §5) so that any base image can run steps.
//!
//! * `cli` — the command line; `paths` — where the protocol files are (from options or env).
//! * `run` — `run <action>`: properties, files and env for the action, its commands, the result.
//! * `park` — `park`: a started container waiting for its step (the worker's parked containers).
//! * `properties_cmd`, `store_file`, `child`, `exec` — the helpers an action calls.
//! * `pointer` — JSON pointer edits; `fsio` — JSON and atomic file I/O; `error` — exit codes.

mod child;
pub mod cli;
mod envvars;
mod error;
mod exec;
mod fsio;
mod owner_docs;
mod park;
mod paths;
mod pointer;
mod properties_cmd;
mod run;
mod store_file;

pub use error::RunnerError;

use cli::{Cli, Commands};
use paths::Paths;

/// Runs one command line; returns its exit code.
pub fn execute(cli: Cli) -> Result<std::process::ExitCode, RunnerError> {
    let paths = Paths::new(&cli.locations);
    let done = match cli.command {
        Commands::Park => return park::park(),
        Commands::Run { action } => run::run_action(&paths, &cli.locations.secret_names, &action),
        Commands::Properties(command) => properties_cmd::execute(&paths, command),
        Commands::StoreFile {
            owner,
            path,
            format,
        } => store_file::store(&paths, owner, &path, format.into()),
        Commands::RemoveFile { owner, path } => store_file::remove(&paths, owner, &path),
        Commands::Child(cli::ChildCommand::Add {
            actions,
            parallel,
            sequential,
        }) => child::add(&paths, &actions, cli::strategy(parallel, sequential)),
        Commands::Exec { command } => exec::exec(&paths, &cli.locations.secret_names, &command),
    };
    done.map(|()| std::process::ExitCode::SUCCESS)
}
