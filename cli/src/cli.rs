//! The command line: global options, then a noun, then a verb (`gantry project create …`).

use clap::{Args, Parser, Subcommand};

use crate::commands::{
    change::ChangeCommand, completion::CompletionArgs, dev::DevCommand,
    environment::EnvironmentCommand, event::EventCommand, login::LoginArgs,
    project::ProjectCommand, properties::PropertiesCommand, secret::SecretCommand,
    step::StepCommand, token::TokenCommand,
};
use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "gantry",
    version,
    about = "The Gantry command-line client",
    after_help = "Examples:\n  gantry login --url https://gantry.example.com < token.txt\n  gantry project create --project-code web --name 'Web shop'\n  gantry change create --project-code web --environment-code prod \\\n      --git-remote-name origin --git-rev main --action deploy --follow-logs\n\n\
Exit codes: 0 success; 1 the command failed; 2 usage error; a followed change that ended in\n\
`error` exits 3, one that was `cancelled` exits 4.\n\
Configuration: $XDG_CONFIG_HOME/gantry/config.toml (see `gantry login --help`)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The heading global options are listed under, after each command's own.
const GLOBAL: &str = "Global options";

/// Where the API is and who is calling: flags, then the environment, then the profile.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The API's base URL [default: the profile's, else http://127.0.0.1:3000].
    #[arg(long, env = "GANTRY_URL", global = true, help_heading = GLOBAL)]
    pub url: Option<String>,
    /// The API token [default: the profile's]. Prefer GANTRY_TOKEN or `gantry login`: a flag is
    /// visible to other users of this machine.
    #[arg(long, env = "GANTRY_TOKEN", hide_env_values = true, global = true, help_heading = GLOBAL)]
    pub token: Option<String>,
    /// The profile of the configuration file to use [default: the current profile].
    #[arg(long, env = "GANTRY_PROFILE", global = true, help_heading = GLOBAL)]
    pub profile: Option<String>,
    /// Output format: human tables, or the JSON:API `data` for scripts.
    #[arg(short, long, value_enum, default_value_t = Format::Table, global = true, help_heading = GLOBAL)]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store an API URL and token in a profile of the configuration file.
    Login(LoginArgs),
    /// Projects, their properties, settings and Git remotes.
    #[command(
        subcommand,
        after_help = "Example:\n  gantry project create --project-code web --name 'Web shop'"
    )]
    Project(ProjectCommand),
    /// Environments of a project, their properties and settings.
    #[command(
        subcommand,
        after_help = "Example:\n  gantry environment list --project-code web"
    )]
    Environment(EnvironmentCommand),
    /// Changes: run an action, follow it, cancel or retry it.
    #[command(
        subcommand,
        after_help = "Example:\n  gantry change create --project-code web --environment-code prod --git-remote-name origin --git-rev main"
    )]
    Change(ChangeCommand),
    /// Steps of a change.
    #[command(
        subcommand,
        after_help = "Example:\n  gantry step continue --step-id 0190c7e5-…"
    )]
    Step(StepCommand),
    /// The version history of properties.
    #[command(
        subcommand,
        after_help = "Example:\n  gantry properties versions --project-code web --environment-code prod"
    )]
    Properties(PropertiesCommand),
    /// Secrets: named key/value maps offered to steps (values are never shown).
    #[command(subcommand, after_help = "Example:\n  gantry secret list")]
    Secret(SecretCommand),
    /// API tokens with a role on one project or on every project.
    #[command(
        subcommand,
        after_help = "Example:\n  gantry token create --user-name ci --role operator --project-code web"
    )]
    Token(TokenCommand),
    /// The audit log.
    #[command(
        subcommand,
        after_help = "Example:\n  gantry event list --type api:changes:create"
    )]
    Event(EventCommand),
    /// Show the server's version and the calling user.
    #[command(after_help = "Example:\n  gantry info -o json")]
    Info,
    /// Tools for project developers.
    #[command(subcommand, after_help = "Example:\n  gantry dev create-dockerfile")]
    Dev(DevCommand),
    /// Print a shell completion script.
    Completion(CompletionArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_option_of_every_command_says_what_it_is() {
        fn undocumented(command: &clap::Command, path: &str, found: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = ["help", "version"].contains(&arg.get_id().as_str());
                if arg.get_help().is_none() && !builtin {
                    found.push(format!("{path} --{}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                undocumented(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = Vec::new();
        undocumented(&super::Cli::command(), "gantry", &mut found);
        assert!(found.is_empty(), "options without help: {found:?}");
    }
}
