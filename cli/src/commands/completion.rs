//! `gantry completion <shell>`: a completion script generated from the command line itself.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  gantry completion bash > ~/.local/share/bash-completion/completions/gantry\n  gantry completion zsh > \"${fpath[1]}/_gantry\""
)]
pub struct CompletionArgs {
    /// The shell to complete in.
    pub shell: Shell,
}

pub fn run(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "gantry", &mut script);
    out!("{}", String::from_utf8_lossy(&script).trim_end());
    Ok(ExitCode::SUCCESS)
}
