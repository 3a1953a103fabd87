//! One module per noun of the command line; [`dispatch`] runs the parsed command.

pub mod change;
pub mod completion;
pub mod dev;
pub mod documents;
pub mod edit_properties;
pub mod environment;
pub mod event;
pub mod git_remote;
pub mod info;
pub mod login;
pub mod project;
pub mod properties;
pub mod secret;
pub mod settings;
pub mod step;
pub mod token;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::config::{self, ConfigFile};
use crate::output::Output;

/// What a command talking to the API needs.
pub struct Context {
    pub client: Client,
    pub output: Output,
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let output = Output {
        format: cli.global.output,
    };
    // Completion needs no configuration, which may not exist yet.
    if let Command::Completion(args) = &cli.command {
        return completion::run(args);
    }
    let path = config::path()?;
    let file = ConfigFile::load(&path)?;
    let context = || -> anyhow::Result<Context> {
        let target = file.target(&cli.global);
        Ok(Context {
            client: Client::new(&target.url, target.token()?)?,
            output,
        })
    };
    match cli.command {
        Command::Completion(args) => completion::run(&args),
        Command::Login(args) => login::run(&args, &cli.global, file, &path, output).await,
        Command::Project(command) => project::run(&context()?, command).await,
        Command::Environment(command) => environment::run(&context()?, command).await,
        Command::Change(command) => change::run(&context()?, command).await,
        Command::Step(command) => step::run(&context()?, command).await,
        Command::Properties(command) => properties::run(&context()?, command).await,
        Command::Secret(command) => secret::run(&context()?, command).await,
        Command::Event(command) => event::run(&context()?, command).await,
        Command::Token(command) => token::run(&context()?, command).await,
        Command::Info => info::run(&context()?).await,
        Command::Dev(command) => dev::run(&context()?, command).await,
    }
}
