//! `gantry`, the command-line client of the Gantry API: noun-then-verb commands
//! (`gantry project create`, `gantry change create`, …).
//!
//! * [`cli`] declares the command line (clap derive); each noun's arguments and behaviour live in
//!   [`commands`], one module per noun.
//! * [`config`] reads and writes `$XDG_CONFIG_HOME/gantry/config.toml` (profiles of API URL and
//!   token) and resolves the target API from flags, environment and file.
//! * [`client`] is the JSON:API client: one error type carrying the API's `detail`, and lists
//!   followed across pages (`links.next`).
//! * [`output`] prints tables (comfy-table) or the JSON:API `data` (`--output json`).
//! * [`follow`] follows a change's log over Server-Sent Events, resuming with `Last-Event-ID`.
//! * [`edit`] runs `$EDITOR` on a document, with errors shown as `//` comment lines on top.
//! * [`exit`] names the exit codes.

/// `println!` through [`output::emit`]: a reader that went away ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::emit(&format!($($arg)*))
    };
}

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod edit;
pub mod exit;
pub mod follow;
pub mod output;

use std::process::ExitCode;

pub use cli::Cli;

/// Runs one command; the exit code says how it went (see [`exit`]).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    commands::dispatch(cli).await
}
